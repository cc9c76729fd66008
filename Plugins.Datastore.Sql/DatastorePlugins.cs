using System.Globalization;
using Coracle.Plugins.Datastore.Sql.Storage;

namespace Coracle.Plugins.Datastore.Sql;

/// <summary>
/// What the three SQL datastore plugins share (options, the server component, snapshots); they differ only in the
/// database kind, and SQLite also exports its data for a migration.
/// </summary>
public abstract class SqlDatastorePlugin : IDatastore, IValidatesOptions, IDatastoreSnapshots
{
    private readonly string _kind;

    /// <param name="kind">The database kind: <c>sqlite</c>, <c>postgres</c> or <c>mysql</c>.</param>
    protected SqlDatastorePlugin(string kind) => _kind = kind;

    /// <inheritdoc/>
    public void ValidateOptions(NodeSettings node, IReadOnlyDictionary<string, string> options, string pluginDataDir) =>
        _ = SqlDatastoreConfigurator.BuildOptions(node, options, null, _kind);

    /// <inheritdoc/>
    public DatastoreEndpoint Configure(IPluginContext context) => SqlDatastoreConfigurator.Configure(context, _kind);

    /// <inheritdoc/>
    public DatastoreEndpoint SnapshotEndpoint(NodeSettings node, IReadOnlyDictionary<string, string> options) => Snapshots.SqlSnapshots.Endpoint(node, options, _kind);

    /// <inheritdoc/>
    public void VerifySnapshot(NodeSettings node, IReadOnlyDictionary<string, string> options, string file) => _ = Snapshots.SqlSnapshots.Verify(node, options, _kind, file);

    /// <inheritdoc/>
    public DatastoreRestore Restore(NodeSettings node, IReadOnlyDictionary<string, string> options, string file, DateTimeOffset now) =>
        Snapshots.SqlSnapshots.Restore(node, options, _kind, file, now);

    /// <inheritdoc/>
    public string Reset(NodeSettings node, IReadOnlyDictionary<string, string> options) => Snapshots.SqlSnapshots.Reset(_kind);
}

/// <summary>The default datastore: etcd v3 over an embedded SQLite file.</summary>
[CoraclePlugin("sqlite", ExtensionPoints.Datastore, typeof(IDatastore), Description = "etcd v3 API over an embedded SQLite database (default)", EndpointSchemes = ["", "sqlite"])]
[PluginSetting("compact-interval", SqlDatastoreConfigurator.CompactIntervalHelp, Type = PluginSettingType.Duration, Default = "5m")]
[PluginSetting("compact-min-retain", SqlDatastoreConfigurator.CompactMinRetainHelp, Type = PluginSettingType.Integer, Default = "1000")]
[PluginSetting("max-request-bytes", SqlDatastoreConfigurator.MaxRequestBytesHelp)]
[PluginSetting("socket", SqlDatastoreConfigurator.SocketHelp)]
[PluginSetting("listen-address", SqlDatastoreConfigurator.ListenAddressHelp)]
[PluginSetting("metrics-address", SqlDatastoreConfigurator.MetricsAddressHelp)]
[PluginSetting("write-economy", SqlDatastoreConfigurator.WriteEconomyHelp, Type = PluginSettingType.Boolean, Default = "true")]
[PluginSetting("volatile-prefixes", SqlDatastoreConfigurator.VolatilePrefixesHelp, Type = PluginSettingType.StringList, Default = SqlDatastoreConfigurator.DefaultVolatilePrefixes)]
[PluginSetting("volatile-flush-interval", SqlDatastoreConfigurator.VolatileFlushIntervalHelp, Type = PluginSettingType.Duration, Default = "30s")]
[PluginFolder("db", "server/db")]
public sealed class SqliteDatastorePlugin() : SqlDatastorePlugin("sqlite"), IDatastoreExport
{
    /// <inheritdoc/>
    public string? ExportSource(NodeSettings node, IReadOnlyDictionary<string, string> options) => Export.SqliteExport.Source(node);

    /// <inheritdoc/>
    public DatastoreExportInfo VerifyExport(NodeSettings node, IReadOnlyDictionary<string, string> options) => Export.SqliteExport.Verify(node);

    /// <inheritdoc/>
    public IAsyncEnumerable<DatastoreKeyValue> ExportAsync(NodeSettings node, IReadOnlyDictionary<string, string> options, CancellationToken cancellationToken) =>
        Export.SqliteExport.ExportAsync(node, cancellationToken);

    /// <inheritdoc/>
    public string RetireExported(NodeSettings node, IReadOnlyDictionary<string, string> options, DateTimeOffset now) => Export.SqliteExport.Retire(node, now);
}

/// <summary>etcd v3 over PostgreSQL (several servers may share one database).</summary>
[CoraclePlugin("postgres", ExtensionPoints.Datastore, typeof(IDatastore), Description = "etcd v3 API over PostgreSQL (--datastore-endpoint postgres://...)", EndpointSchemes = ["postgres", "postgresql"])]
[PluginSetting("compact-interval", SqlDatastoreConfigurator.CompactIntervalHelp, Type = PluginSettingType.Duration, Default = "5m")]
[PluginSetting("compact-min-retain", SqlDatastoreConfigurator.CompactMinRetainHelp, Type = PluginSettingType.Integer, Default = "1000")]
[PluginSetting("max-request-bytes", SqlDatastoreConfigurator.MaxRequestBytesHelp)]
[PluginSetting("socket", SqlDatastoreConfigurator.SocketHelp)]
[PluginSetting("listen-address", SqlDatastoreConfigurator.ListenAddressHelp)]
[PluginSetting("metrics-address", SqlDatastoreConfigurator.MetricsAddressHelp)]
[PluginFolder("db", "server/db")]
public sealed class PostgresDatastorePlugin() : SqlDatastorePlugin("postgres");

/// <summary>etcd v3 over MySQL or MariaDB (several servers may share one database).</summary>
[CoraclePlugin("mysql", ExtensionPoints.Datastore, typeof(IDatastore), Description = "etcd v3 API over MySQL/MariaDB (--datastore-endpoint mysql://...)", EndpointSchemes = ["mysql"])]
[PluginSetting("compact-interval", SqlDatastoreConfigurator.CompactIntervalHelp, Type = PluginSettingType.Duration, Default = "5m")]
[PluginSetting("compact-min-retain", SqlDatastoreConfigurator.CompactMinRetainHelp, Type = PluginSettingType.Integer, Default = "1000")]
[PluginSetting("max-request-bytes", SqlDatastoreConfigurator.MaxRequestBytesHelp)]
[PluginSetting("socket", SqlDatastoreConfigurator.SocketHelp)]
[PluginSetting("listen-address", SqlDatastoreConfigurator.ListenAddressHelp)]
[PluginSetting("metrics-address", SqlDatastoreConfigurator.MetricsAddressHelp)]
[PluginFolder("db", "server/db")]
public sealed class MySqlDatastorePlugin() : SqlDatastorePlugin("mysql");

/// <summary>Turns the node settings and <c>[plugins.NAME]</c> options into an <see cref="EtcdServer"/> component.</summary>
public static class SqlDatastoreConfigurator
{
    /// <summary>The options the plugins read from <c>[plugins.sqlite]</c>, <c>[plugins.postgres]</c> or <c>[plugins.mysql]</c>: their declared settings.</summary>
    public static readonly IReadOnlyList<string> KnownOptions =
        PluginSettingAttribute.KeysOf(typeof(SqliteDatastorePlugin));

    internal const string CompactIntervalHelp = "How often old revisions are compacted (etcd's auto-compaction); 0 turns it off";
    internal const string CompactMinRetainHelp = "Revisions always kept by compaction";
    internal const string MaxRequestBytesHelp = "Largest request accepted, in bytes (default etcd's, 1.5 MiB)";
    internal const string SocketHelp = "The etcd API's unix socket kube-apiserver uses (default: DATA/server/db/etcd.sock)";
    internal const string ListenAddressHelp = "Also serve the etcd API over TCP with mutual TLS on HOST:PORT (e.g. 0.0.0.0:2379); off by default";
    internal const string WriteEconomyHelp = "Serve the volatile-prefixes keys (leases, events) from memory and write them to disk every volatile-flush-interval; false fsyncs every write";
    internal const string VolatilePrefixesHelp = "Key prefixes write economy keeps in memory; everything else is durable on every write";
    internal const string VolatileFlushIntervalHelp = "How often volatile keys reach the disk: at most this much of their changes is lost in a power cut";

    /// <summary>The key classes write economy keeps in memory by default: Kubernetes leases, events and the apiserver endpoint leases.</summary>
    public const string DefaultVolatilePrefixes = "/registry/leases/,/registry/events/,/registry/masterleases/";

    internal const string MetricsAddressHelp = "Serve /metrics and /health on HOST:PORT or unix:///PATH (e.g. 127.0.0.1:2381); off by default";

    /// <summary>The component the supervisor runs.</summary>
    public const string ComponentName = "datastore";

    /// <summary>Validates and registers; starts nothing.</summary>
    public static DatastoreEndpoint Configure(IPluginContext context, string kind)
    {
        var (options, socket) = BuildOptions(context.Node, context.Options, context.Certificates, kind, context.Folders);
        var loggerFactory = context.LoggerFactory;
        EtcdServer? current = null;
        context.Supervisor.Add(new InProcessComponent
        {
            Name = ComponentName,
            Run = async ct =>
            {
                var server = new EtcdServer(options, loggerFactory);
                Volatile.Write(ref current, server);
                try
                {
                    await server.RunAsync(ct);
                }
                finally
                {
                    // A restart's probe must wait for the next server, not see this one's completed Ready.
                    Interlocked.CompareExchange(ref current, null, server);
                }
            },

            // The server runs in this process and says itself when its listeners accept clients (after Kestrel started and
            // the health service turned SERVING); asking it over the socket with a gRPC client cost about a second at
            // every start (the client's first channel and HTTP/2 connection) on a 2-core board. See docs/benchmarks.md.
            // That check is a field read, so it is made every 20 ms (not the default 250 ms, which left the datastore up to
            // a quarter of a second "serving" but not yet "ready" to kube-apiserver at every start).
            Readiness = new CustomProbe(_ => Task.FromResult(Volatile.Read(ref current)?.Ready.IsCompletedSuccessfully == true)) { Interval = TimeSpan.FromMilliseconds(20) },
            StopTimeout = options.ShutdownTimeout + TimeSpan.FromSeconds(5),

            // Its TLS listener (listen-address) loads the datastore certificate at start.
            RestartOnCertificateRenewal = options.Tls is not null,
        });
        return new DatastoreEndpoint(["unix://" + socket], ComponentName);
    }

    /// <summary>
    /// Builds the server options; throws <see cref="PluginConfigException"/> listing every problem. Without
    /// <paramref name="certificates"/> (planning, before they exist) only the options themselves are checked.
    /// </summary>
    public static (EtcdServerOptions Options, string Socket) BuildOptions(
        NodeSettings node, IReadOnlyDictionary<string, string> values, INodeCertificates? certificates, string kind, IReadOnlyDictionary<string, string>? folders = null)
    {
        folders ??= PluginFolderAttribute.Resolve(typeof(SqliteDatastorePlugin), node.DataDir);
        var dbDir = folders["db"];
        DatastoreLocation location;
        try
        {
            location = DatastoreLocation.Parse(node.DatastoreEndpoint, Path.Combine(dbDir, "state.db"));
        }
        catch (FormatException e)
        {
            throw new PluginConfigException("datastore-endpoint", e.Message);
        }

        if (!string.Equals(location.Kind, kind, StringComparison.Ordinal))
        {
            throw new PluginConfigException("datastore-endpoint", $"the endpoint is for the {location.Kind} datastore but the {kind} plugin was selected; select {location.Kind} or change --datastore-endpoint");
        }

        // Declared settings arrive with their defaults; an empty value means "not set".
        values = values.Where(kv => kv.Value.Length > 0).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
        var errors = new List<(string Key, string Message)>();
        foreach (var key in values.Keys.Where(k => !KnownOptions.Contains(k, StringComparer.Ordinal)))
        {
            errors.Add((key, $"unknown option '{key}' in [plugins.{kind}]; known options: {string.Join(", ", KnownOptions)}"));
        }

        var socket = values.TryGetValue("socket", out var s) && s.Length > 0 ? Path.GetFullPath(s) : Path.Combine(dbDir, "etcd.sock");
        var options = new EtcdServerOptions
        {
            Dialect = location.CreateDialect(),
            UnixSocket = socket,
            MemberName = node.NodeName,
        };
        if (values.TryGetValue("compact-interval", out var interval))
        {
            if (TryParseDuration(interval, out var d))
            {
                options = options with { CompactInterval = d };
            }
            else
            {
                errors.Add(("compact-interval", $"compact-interval '{interval}' is not a duration; write for example 5m, 30s or 0 to disable"));
            }
        }

        if (values.TryGetValue("compact-min-retain", out var retain))
        {
            if (long.TryParse(retain, NumberStyles.None, CultureInfo.InvariantCulture, out var n))
            {
                options = options with { CompactMinRetain = n };
            }
            else
            {
                errors.Add(("compact-min-retain", $"compact-min-retain '{retain}' is not a whole number of revisions; write for example 1000"));
            }
        }

        if (values.TryGetValue("max-request-bytes", out var max))
        {
            if (int.TryParse(max, NumberStyles.None, CultureInfo.InvariantCulture, out var bytes) && bytes >= 1024)
            {
                options = options with { MaxRequestBytes = bytes };
            }
            else
            {
                errors.Add(("max-request-bytes", $"max-request-bytes '{max}' must be a number of bytes of at least 1024; etcd's default is {EtcdServerOptions.DefaultMaxRequestBytes}"));
            }
        }

        if (values.TryGetValue("metrics-address", out var metrics) && metrics.Length > 0)
        {
            if (metrics.StartsWith("unix://", StringComparison.Ordinal) || System.Net.IPEndPoint.TryParse(metrics, out _))
            {
                options = options with { MetricsAddress = metrics };
            }
            else
            {
                errors.Add(("metrics-address", $"metrics-address '{metrics}' is neither unix:///path nor host:port; write for example 127.0.0.1:2381"));
            }
        }

        if (values.TryGetValue("listen-address", out var listen) && listen.Length > 0)
        {
            var tls = certificates?.Get("datastore");
            if (!System.Net.IPEndPoint.TryParse(listen, out _))
            {
                errors.Add(("listen-address", $"listen-address '{listen}' is not host:port; write for example 0.0.0.0:2379"));
            }
            else if (tls is null && certificates is not null)
            {
                errors.Add(("listen-address", "listen-address needs the node's 'datastore' TLS certificate, which is missing; run the server once to create certificates or remove listen-address"));
            }
            else if (tls is not null)
            {
                options = options with { ListenAddress = listen, Tls = new TlsSettings(tls.CertFile, tls.KeyFile, tls.CaFile) };
            }
        }

        options = WriteEconomy(options, values, kind, errors);
        if (errors.Count > 0)
        {
            throw new PluginConfigException(errors[0].Key, string.Join("; ", errors.Select(e => e.Message)));
        }

        return (options, socket);
    }

    /// <summary>write-economy, volatile-prefixes, volatile-flush-interval: on by default for SQLite, not offered for the others.</summary>
    private static EtcdServerOptions WriteEconomy(EtcdServerOptions options, IReadOnlyDictionary<string, string> values, string kind, List<(string Key, string Message)> errors)
    {
        string[] keys = ["write-economy", "volatile-prefixes", "volatile-flush-interval"];
        if (!string.Equals(kind, "sqlite", StringComparison.Ordinal))
        {
            foreach (var key in keys.Where(values.ContainsKey))
            {
                errors.Add((key, $"{key} is a setting of the sqlite datastore only; {kind} commits every write (remove it from [plugins.{kind}])"));
            }

            return options;
        }

        var on = true;
        if (values.TryGetValue("write-economy", out var economy))
        {
            if (!bool.TryParse(economy, out on))
            {
                errors.Add(("write-economy", $"write-economy '{economy}' is not a boolean; write true or false"));
            }
        }

        var prefixes = (values.TryGetValue("volatile-prefixes", out var list) ? list : DefaultVolatilePrefixes)
            .Split(',', StringSplitOptions.TrimEntries);
        if (prefixes.Any(p => p.Length == 0))
        {
            errors.Add(("volatile-prefixes", $"volatile-prefixes '{list}' has an empty prefix, which would make every key volatile; list prefixes like \"/registry/leases/\" or set write-economy = false"));
        }

        var interval = TimeSpan.FromSeconds(30);
        if (values.TryGetValue("volatile-flush-interval", out var text) && (!TryParseDuration(text, out interval) || interval <= TimeSpan.Zero || interval > TimeSpan.FromHours(1)))
        {
            errors.Add(("volatile-flush-interval", $"volatile-flush-interval '{text}' must be a duration between 1ms and 1h; write for example 30s (write-economy = false writes every change at once)"));
        }

        return on ? options with { Log = options.Log with { VolatilePrefixes = prefixes, VolatileFlushInterval = interval } } : options;
    }

    /// <summary>Parses Go-style durations: 500ms, 30s, 5m, 1h, 1h30m, or 0.</summary>
    public static bool TryParseDuration(string text, out TimeSpan duration)
    {
        duration = TimeSpan.Zero;
        text = text.Trim();
        if (text == "0")
        {
            return true;
        }

        var i = 0;
        var any = false;
        while (i < text.Length)
        {
            var start = i;
            while (i < text.Length && (char.IsAsciiDigit(text[i]) || text[i] == '.'))
            {
                i++;
            }

            if (start == i || !double.TryParse(text[start..i], NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var value))
            {
                return false;
            }

            var unitStart = i;
            while (i < text.Length && char.IsAsciiLetter(text[i]))
            {
                i++;
            }

            var unit = text[unitStart..i];
            TimeSpan part;
            switch (unit)
            {
                case "ms":
                    part = TimeSpan.FromMilliseconds(value);
                    break;
                case "s":
                    part = TimeSpan.FromSeconds(value);
                    break;
                case "m":
                    part = TimeSpan.FromMinutes(value);
                    break;
                case "h":
                    part = TimeSpan.FromHours(value);
                    break;
                default:
                    return false;
            }

            duration += part;
            any = true;
        }

        return any;
    }
}
