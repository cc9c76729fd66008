using Coracle.Plugins.Datastore.Sql.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Coracle.Plugins.Datastore.Sql.Tests.Plugin;

public sealed class DatastorePluginTests
{
    private static NodeSettings Node(string endpoint = "") => new()
    {
        Role = "server",
        NodeName = "node1",
        DataDir = "/var/lib/coracle",
        RunDir = "/run/coracle",
        ComponentsDir = "/opt/coracle",
        Architecture = "x64",
        ClusterCidr = "10.42.0.0/16",
        ServiceCidr = "10.43.0.0/16",
        ClusterDns = "10.43.0.10",
        ClusterDomain = "cluster.local",
        PauseImage = "pause",
        DatastoreEndpoint = endpoint,
    };

    [Fact]
    public void Configure_DefaultEndpoint_RegistersDatastoreComponentWithoutStartingIt()
    {
        var context = new FakeContext(Node());
        var endpoint = new SqliteDatastorePlugin().Configure(context);
        Assert.Equal(["unix:///var/lib/coracle/server/db/etcd.sock"], endpoint.Servers);
        Assert.Equal("datastore", endpoint.ComponentName);
        var component = Assert.IsType<InProcessComponent>(Assert.Single(context.Supervisor.Components));
        Assert.Equal("datastore", component.Name);
        // Its probe is a field read, made every 20 ms so kube-apiserver starts as soon as the datastore serves.
        Assert.Equal(TimeSpan.FromMilliseconds(20), Assert.IsType<CustomProbe>(component.Readiness).Interval);
        Assert.False(File.Exists("/var/lib/coracle/server/db/state.db"));
    }

    [Fact]
    public async Task Readiness_ServerRunsAndStops_TrueOnlyWhileItServesOnTheSocket()
    {
        var dir = Directory.CreateTempSubdirectory("coracle-ds-ready-").FullName;
        try
        {
            var node = Node() with { DataDir = dir };
            Directory.CreateDirectory(Path.Combine(dir, "server", "db"));
            var context = new FakeContext(node);
            new SqliteDatastorePlugin().Configure(context);
            var component = Assert.IsType<InProcessComponent>(Assert.Single(context.Supervisor.Components));
            var probe = Assert.IsType<CustomProbe>(component.Readiness);
            Assert.False(await probe.Check(CancellationToken.None));

            using var stop = new CancellationTokenSource();
            var run = component.Run(stop.Token);
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            while (!await probe.Check(CancellationToken.None))
            {
                Assert.False(run.IsCompleted, "the datastore stopped before it was ready");
                Assert.True(DateTime.UtcNow < deadline, "the datastore was not ready within 60 s");
                await Task.Delay(20);
            }

            // Ready means a client on the socket is answered at once.
            using (var channel = Support.TestServer.CreateChannel(Path.Combine(dir, "server", "db", "etcd.sock")))
            {
                var health = new Grpc.Health.V1.Health.HealthClient(channel);
                Assert.Equal(Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus.Serving, (await health.CheckAsync(new Grpc.Health.V1.HealthCheckRequest())).Status);
            }

            await stop.CancelAsync();
            await run.WaitAsync(TimeSpan.FromSeconds(30));
            Assert.False(await probe.Check(CancellationToken.None));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void BuildOptions_SqliteEndpoint_UsesThePathAndOptions()
    {
        var values = new Dictionary<string, string> { ["compact-interval"] = "1m30s", ["compact-min-retain"] = "500", ["metrics-address"] = "127.0.0.1:2381" };
        var (options, socket) = SqlDatastoreConfigurator.BuildOptions(Node("sqlite:///data/k.db"), values, null, "sqlite");
        Assert.Equal("/data/k.db", options.Dialect.Location);
        Assert.Equal(TimeSpan.FromSeconds(90), options.CompactInterval);
        Assert.Equal(500, options.CompactMinRetain);
        Assert.Equal("127.0.0.1:2381", options.MetricsAddress);
        Assert.Equal("/var/lib/coracle/server/db/etcd.sock", socket);
        Assert.Equal("node1", options.MemberName);
    }

    [Theory]
    [InlineData("postgres://u:secret@db.example:5433/k3s?sslmode=disable", "postgres", "db.example:5433/k3s")]
    [InlineData("postgresql://u:secret@db/k3s", "postgres", "db:5432/k3s")]
    [InlineData("mysql://u:secret@tcp(10.0.0.5:3307)/k3s", "mysql", "10.0.0.5:3307/k3s")]
    [InlineData("mysql://u:secret@db:3306/k3s", "mysql", "db:3306/k3s")]
    [InlineData("mysql://u:secret@unix(/run/mysqld/mysqld.sock)/k3s", "mysql", "/run/mysqld/mysqld.sock/k3s")]
    public void Parse_ServerEndpoints_PicksDialectAndHidesPassword(string endpoint, string kind, string location)
    {
        var parsed = DatastoreLocation.Parse(endpoint, "/x/state.db");
        Assert.Equal(kind, parsed.Kind);
        Assert.Equal(location, parsed.Location);
        Assert.DoesNotContain("secret", parsed.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("redis://u:secret@host/0", "unsupported datastore endpoint scheme 'redis'")]
    [InlineData("postgres://u:secret@host:99999/db", "bad port '99999'")]
    [InlineData("postgres://u:secret@host/db?sslmode=maybe", "unknown sslmode 'maybe'")]
    [InlineData("u:secret@host/db", "unsupported datastore endpoint scheme '***@host/db'")]
    public void Configure_BadEndpoint_ThrowsConfigErrorWithoutPassword(string endpoint, string expected)
    {
        var e = Assert.Throws<PluginConfigException>(() => new PostgresDatastorePlugin().Configure(new FakeContext(Node(endpoint))));
        Assert.Equal("datastore-endpoint", e.Key);
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("secret", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Configure_EndpointOfAnotherDialect_ThrowsConfigError()
    {
        var e = Assert.Throws<PluginConfigException>(() => new MySqlDatastorePlugin().Configure(new FakeContext(Node("postgres://u:p@h/db"))));
        Assert.Equal("the endpoint is for the postgres datastore but the mysql plugin was selected; select postgres or change --datastore-endpoint", e.Message);
    }

    [Fact]
    public void Configure_BadOptions_ReportsEveryProblem()
    {
        var context = new FakeContext(Node(), new Dictionary<string, string>
        {
            ["compact-interval"] = "soon",
            ["compact-min-retain"] = "-1",
            ["listen-address"] = "0.0.0.0:2379",
            ["colour"] = "blue",
        });
        var e = Assert.Throws<PluginConfigException>(() => new SqliteDatastorePlugin().Configure(context));
        Assert.Contains("unknown option 'colour'", e.Message, StringComparison.Ordinal);
        Assert.Contains("compact-interval 'soon' is not a duration", e.Message, StringComparison.Ordinal);
        Assert.Contains("compact-min-retain '-1'", e.Message, StringComparison.Ordinal);
        Assert.Contains("listen-address needs the node's 'datastore' TLS certificate", e.Message, StringComparison.Ordinal);
        Assert.Empty(context.Supervisor.Components);
    }

    [Fact]
    public void BuildOptions_Defaults_WriteEconomyOnForLeasesAndEvents()
    {
        var (options, _) = SqlDatastoreConfigurator.BuildOptions(Node(), new Dictionary<string, string>(), null, "sqlite");
        Assert.Equal(["/registry/leases/", "/registry/events/", "/registry/masterleases/"], options.Log.VolatilePrefixes);
        Assert.Equal(TimeSpan.FromSeconds(30), options.Log.VolatileFlushInterval);
    }

    [Fact]
    public void BuildOptions_WriteEconomyFalse_EveryWriteDurable()
    {
        var (options, _) = SqlDatastoreConfigurator.BuildOptions(Node(), new Dictionary<string, string> { ["write-economy"] = "false" }, null, "sqlite");
        Assert.Empty(options.Log.VolatilePrefixes);
    }

    [Fact]
    public void BuildOptions_OwnPrefixesAndInterval_Used()
    {
        var (options, _) = SqlDatastoreConfigurator.BuildOptions(Node(), new Dictionary<string, string>
        {
            ["volatile-prefixes"] = "/registry/leases/, /registry/masterleases/",
            ["volatile-flush-interval"] = "1m",
        }, null, "sqlite");
        Assert.Equal(["/registry/leases/", "/registry/masterleases/"], options.Log.VolatilePrefixes);
        Assert.Equal(TimeSpan.FromMinutes(1), options.Log.VolatileFlushInterval);
    }

    [Theory]
    [InlineData("write-economy", "yes", "write-economy 'yes' is not a boolean; write true or false")]
    [InlineData("volatile-flush-interval", "0", "volatile-flush-interval '0' must be a duration between 1ms and 1h; write for example 30s (write-economy = false writes every change at once)")]
    [InlineData("volatile-flush-interval", "2h", "volatile-flush-interval '2h' must be a duration between 1ms and 1h; write for example 30s (write-economy = false writes every change at once)")]
    [InlineData("volatile-flush-interval", "soon", "volatile-flush-interval 'soon' must be a duration between 1ms and 1h; write for example 30s (write-economy = false writes every change at once)")]
    [InlineData("volatile-prefixes", "/registry/leases/,", "volatile-prefixes '/registry/leases/,' has an empty prefix, which would make every key volatile; list prefixes like \"/registry/leases/\" or set write-economy = false")]
    public void BuildOptions_BadWriteEconomySetting_OneLineErrorNamingTheKey(string key, string value, string expected)
    {
        var e = Assert.Throws<PluginConfigException>(() => SqlDatastoreConfigurator.BuildOptions(Node(), new Dictionary<string, string> { [key] = value }, null, "sqlite"));
        Assert.Equal(key, e.Key);
        Assert.Equal(expected, e.Message);
    }

    [Fact]
    public void BuildOptions_WriteEconomyOnPostgres_Rejected()
    {
        var e = Assert.Throws<PluginConfigException>(() => SqlDatastoreConfigurator.BuildOptions(Node("postgres://u:p@h/db"), new Dictionary<string, string> { ["write-economy"] = "true" }, null, "postgres"));
        Assert.Equal("write-economy", e.Key);
        Assert.Equal("write-economy is a setting of the sqlite datastore only; postgres commits every write (remove it from [plugins.postgres])", e.Message);
    }

    [Theory]
    [InlineData("5m", 300)]
    [InlineData("30s", 30)]
    [InlineData("1h30m", 5400)]
    [InlineData("0", 0)]
    [InlineData("1500ms", 1.5)]
    public void TryParseDuration_GoStyle_Parses(string text, double seconds)
    {
        Assert.True(SqlDatastoreConfigurator.TryParseDuration(text, out var d));
        Assert.Equal(seconds, d.TotalSeconds);
    }

    [Fact]
    public void PluginAttributes_ExportThreeDatastores()
    {
        var names = typeof(SqliteDatastorePlugin).Assembly.GetTypes()
            .Select(t => t.GetCustomAttributes(typeof(CoraclePluginAttribute), false).Cast<CoraclePluginAttribute>().SingleOrDefault())
            .OfType<CoraclePluginAttribute>()
            .Where(a => a.ExtensionPoint == ExtensionPoints.Datastore)
            .Select(a => a.Name)
            .Order()
            .ToList();
        Assert.Equal(["mysql", "postgres", "sqlite"], names);
        Assert.Equal("sqlite", SqlDialects.Sqlite("/x").Name);
    }

    /// <summary>A hand-written stand-in for the host.</summary>
    private sealed class FakeContext(NodeSettings node, IReadOnlyDictionary<string, string>? options = null) : IPluginContext
    {
        public NodeSettings Node { get; } = node;

        public IReadOnlyDictionary<string, string> Options { get; } = options ?? new Dictionary<string, string>();

        public string PluginDataDir => "/tmp";

        public IReadOnlyDictionary<string, string> Folders => PluginFolderAttribute.Resolve(typeof(SqliteDatastorePlugin), Node.DataDir);

        public ILogger Logger => NullLogger.Instance;

        public ILoggerFactory LoggerFactory => NullLoggerFactory.Instance;

        public RecordingSupervisor Supervisor { get; } = new();

        ISupervisor IPluginContext.Supervisor => Supervisor;

        public IManifestSink Manifests => throw new NotSupportedException();

        public INodeCertificates Certificates { get; } = new NoCertificates();
    }

    private sealed class RecordingSupervisor : ISupervisor
    {
        public List<ComponentSpec> Components { get; } = [];

        public void Add(ComponentSpec component) => Components.Add(component);

        public Task WaitReadyAsync(string name, CancellationToken cancellationToken) => Task.CompletedTask;

        public void ReportUnavailable(string name, string reason)
        {
        }

        public void ReportDetail(string name, string detail)
        {
        }
    }

    private sealed class NoCertificates : INodeCertificates
    {
        public string Directory => "/tmp";

        public TlsFiles? Get(string identity) => null;
    }
}
