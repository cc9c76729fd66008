using System.Collections.Concurrent;
using System.Globalization;
using Coracle.Core.Configuration;
using Coracle.Core.Identity;
using Coracle.Core.Join;
using Coracle.Core.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace Coracle.Core.Tests.Join;

/// <summary>
/// Three real join APIs (<see cref="JoinServerHost"/>), one per kind of first server: on a shared SQL database
/// (<c>postgres</c>), on an embedded one (<c>sqlite</c>), and on a clustered datastore whose <c>AddMemberAsync</c> is a
/// recording stand-in (no clustered datastore plugin runs in this test project). Each host has a valid join token.
/// </summary>
public sealed class ServerJoinFixture : IAsyncLifetime, IDisposable
{
    private readonly TempDir _temp = new("crt-sjoin");
    private readonly List<JoinServerHost> _hosts = [];

    internal JoinServerHost Shared { get; private set; } = null!;

    internal JoinServerHost Embedded { get; private set; } = null!;

    internal JoinServerHost Clustered { get; private set; } = null!;

    public string AgentJoinToken { get; private set; } = "";

    public string AgentJoinTokenId { get; private set; } = "";

    /// <summary>The members the clustered stand-in was asked to add: name → peer URLs.</summary>
    public ConcurrentDictionary<string, IReadOnlyList<string>> AddedMembers { get; } = new();

    public async Task InitializeAsync()
    {
        Shared = await StartAsync("shared", new ServerJoinDatastore("postgres", Embedded: false, AddMember: null), host =>
        {
            var (record, credential) = host.JoinTokens.Create(TimeSpan.FromDays(1), "an agent's token");
            (AgentJoinTokenId, AgentJoinToken) = (record.Id, credential);
        });
        Embedded = await StartAsync("embedded", new ServerJoinDatastore("sqlite", Embedded: true, AddMember: null));
        Clustered = await StartAsync("clustered", new ServerJoinDatastore("etcd", Embedded: false, AddMember: (name, urls, _) =>
        {
            AddedMembers[name] = urls;
            return Task.FromResult<IReadOnlyDictionary<string, string>>(new Dictionary<string, string> { ["initial-cluster"] = $"srv=https://127.0.0.1:2380,{name}={urls[0]}" });
        }));
    }

    private async Task<JoinServerHost> StartAsync(string name, ServerJoinDatastore datastore, Action<JoinServerHost>? prepare = null)
    {
        var host = await JoinServerHost.StartAsync(Directory.CreateDirectory(_temp.Combine(name)).FullName, FreePorts.Next(),
            (config, time) => NodePasswords.ForServer(config, () => false, NullLogger.Instance, time), prepare, datastore);
        _hosts.Add(host);
        return host;
    }

    public async Task DisposeAsync()
    {
        foreach (var host in _hosts)
        {
            await host.DisposeAsync();
        }
    }

    public void Dispose() => _temp.Dispose();
}

/// <summary>
/// <c>coracle server --server URL --token T</c> against real join APIs: what a joining server writes, and every refusal
/// as the one-line configuration error (exit 2) naming the flag, with nothing written to the data dir.
/// </summary>
public sealed class ServerJoinTests(ServerJoinFixture fixture) : IClassFixture<ServerJoinFixture>, IDisposable
{
    private readonly TempDir _temp = new("crt-sjoin-node");

    public void Dispose() => _temp.Dispose();

    private string DataDir => _temp.Combine("data");

    private CoracleConfig Joining(JoinServerHost first, string token, params (Setting Setting, string Value)[] more) =>
        TestConfig.Load("server", DataDir, [(Settings.NodeName, "srv-2"), (Settings.NodeIp, "127.0.0.2"), (Settings.Server, first.Url), (Settings.Token, token), .. more]);

    private Task<JoinedCluster?> JoinAsync(CoracleConfig config, string datastore, params string[] peerUrls) =>
        ServerJoin.EnsureAsync(config, datastore, peerUrls, NullLogger.Instance, CancellationToken.None);

    private async Task<string> RefusedAsync(CoracleConfig config, string datastore)
    {
        var refused = await Assert.ThrowsAsync<ConfigException>(() => JoinAsync(config, datastore));
        Assert.False(Directory.Exists(Path.Combine(DataDir, "server")), "a refused join wrote into the data dir");
        return string.Join("\n", refused.Errors.Select(e => e.ToString()));
    }

    [Fact]
    public async Task EnsureAsync_SharedDatastore_WritesTheClusterCasKeysTokenAndRecordAndLeavesAreMadeLocally()
    {
        var first = fixture.Shared;
        var config = Joining(first, first.ServerToken.ToString());

        var joined = await JoinAsync(config, "postgres");

        Assert.NotNull(joined);
        Assert.Equal(first.Url, joined.Server);
        Assert.Equal("srv", joined.ServerNodeName);
        Assert.Equal("postgres", joined.Datastore);
        Assert.Empty(joined.DatastoreJoin);
        var tls = ClusterCertificates.TlsDir(DataDir);
        foreach (var ca in ClusterCertificates.CaNames)
        {
            Assert.Equal(File.ReadAllText(first.Certificates.CertFile(ca)), File.ReadAllText(Path.Combine(tls, ca + ".crt")));
            Assert.Equal(File.ReadAllText(first.Certificates.KeyFile(ca)), File.ReadAllText(Path.Combine(tls, ca + ".key")));
            Assert.Equal(ClusterCertificates.KeyMode, File.GetUnixFileMode(Path.Combine(tls, ca + ".key")));
        }

        Assert.Equal(File.ReadAllText(first.Certificates.ServiceAccountKeyFile), File.ReadAllText(Path.Combine(tls, "service.key")));
        Assert.Equal(ClusterCertificates.KeyMode, File.GetUnixFileMode(ServerJoin.StateFile(DataDir)));

        // Its own leaves, made here as on a first server: issued by the cluster's CA, naming this server.
        var identity = ServerIdentity.Prepare(config, NullLogger.Instance);
        Assert.Equal(first.ServerToken, identity.Token);
        using var serving = CertificateFactory.LoadCertificate(Path.Combine(tls, "serving-kube-apiserver.crt"));
        using var serverCa = CertificateFactory.LoadCertificate(first.Certificates.CertFile(ClusterCertificates.ServerCa));
        Assert.True(CertificateFactory.IsSignedBy(serving, serverCa));
        Assert.Contains(System.Net.IPAddress.Parse("127.0.0.2"), CertificateFactory.AlternativeNames(serving).Ips);

        // A restart needs no other server: the stored join is used even when --server no longer answers.
        var dead = Joining(first, first.ServerToken.ToString(), (Settings.Server, $"https://127.0.0.1:{FreePorts.Next().ToString(CultureInfo.InvariantCulture)}"));
        var again = await JoinAsync(dead, "postgres");
        Assert.NotNull(again);
        Assert.Equal((joined.Server, joined.JoinedAt, joined.Datastore), (again.Server, again.JoinedAt, again.Datastore));
    }

    [Fact]
    public async Task EnsureAsync_ClusteredDatastore_AddsTheMemberWithItsPeerUrlsAndStoresTheValues_StandInDatastore()
    {
        var first = fixture.Clustered;

        var joined = await JoinAsync(Joining(first, first.ServerToken.ToString()), "etcd", "https://127.0.0.2:2380");

        Assert.Equal(["https://127.0.0.2:2380"], fixture.AddedMembers["srv-2"]);
        Assert.Equal("srv=https://127.0.0.1:2380,srv-2=https://127.0.0.2:2380", joined!.DatastoreJoin["initial-cluster"]);
        Assert.Equal("srv=https://127.0.0.1:2380,srv-2=https://127.0.0.2:2380", ServerJoin.Read(DataDir)!.DatastoreJoin["initial-cluster"]);
    }

    [Fact]
    public async Task EnsureAsync_AgentJoinToken_RefusedWith403AsTokenErrorNothingWritten()
    {
        var first = fixture.Shared;
        var token = new ClusterToken(first.ServerToken.CaHash, fixture.AgentJoinToken).ToString();

        var error = await RefusedAsync(Joining(first, token), "postgres");

        Assert.Equal($"--token: the server refused this server: join token {fixture.AgentJoinTokenId} joins agents only; a server joins with the server token (K10...::server:SECRET, 'coracle token show' on a server of the cluster); nothing was written", error);
        using var client = JoinServerHost.TrustingClient(first.Certificates.CertFile(ClusterCertificates.ServerCa), new Uri(first.Url));
        client.DefaultRequestHeaders.Authorization = new("Bearer", fixture.AgentJoinToken);
        using var answer = await client.PostAsync("/v1/server-join", new StringContent("{\"nodeName\":\"x\"}", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(System.Net.HttpStatusCode.Forbidden, answer.StatusCode);
    }

    [Fact]
    public async Task EnsureAsync_WrongServerSecret_RefusedAsTokenErrorNothingWritten()
    {
        var first = fixture.Shared;
        var token = new ClusterToken(first.ServerToken.CaHash, "server:not-the-secret").ToString();

        var error = await RefusedAsync(Joining(first, token), "postgres");

        Assert.Equal("--token: the server rejected the token: invalid token; a server joins with the server token ('coracle token show' on a server of the cluster); nothing was written", error);
    }

    [Fact]
    public async Task EnsureAsync_TokenPinsAnotherCa_RefusedBeforeAskingNothingWritten()
    {
        var first = fixture.Shared;
        var otherHash = new string('a', 64);
        var token = new ClusterToken(otherHash, first.ServerToken.Credential).ToString();

        var error = await RefusedAsync(Joining(first, token), "postgres");

        Assert.Equal($"--token: the server's CA does not match the token: {first.Url}/cacerts hashes to {first.ServerToken.CaHash}, the token expects {otherHash}; check --server and --token (nothing was written)", error);
    }

    [Fact]
    public async Task EnsureAsync_ClusterCidrDiffers_RefusedNamingTheFlagNothingWritten()
    {
        var first = fixture.Shared;

        var error = await RefusedAsync(Joining(first, first.ServerToken.ToString(), (Settings.ClusterCidr, "10.50.0.0/16")), "postgres");

        Assert.Equal("--cluster-cidr: this server has 10.50.0.0/16, the cluster (server srv) has 10.42.0.0/16; every server of a cluster needs the same value: give --cluster-cidr 10.42.0.0/16 (nothing was written)", error);
    }

    [Fact]
    public async Task EnsureAsync_FirstServerOnEmbeddedSqlite_RefusedSayingExternalDatastoreOrClusterInit()
    {
        var first = fixture.Embedded;

        var error = await RefusedAsync(Joining(first, first.ServerToken.ToString()), "sqlite");

        Assert.Equal("--datastore-endpoint: server srv keeps the cluster in its embedded sqlite datastore, which another server cannot share; run every server on one external datastore (the same --datastore-endpoint postgres://... or mysql://... on each) or on embedded etcd (--cluster-init on the first server) (nothing was written)", error);
    }

    [Fact]
    public async Task EnsureAsync_OtherDatastoreThanTheCluster_RefusedNamingDatastoreEndpoint()
    {
        var first = fixture.Shared;

        var error = await RefusedAsync(Joining(first, first.ServerToken.ToString()), "sqlite");

        Assert.Equal("--datastore-endpoint: this server's datastore is sqlite, the cluster's (server srv) is postgres; give the --datastore-endpoint the cluster's servers use (nothing was written)", error);
    }

    [Fact]
    public async Task EnsureAsync_NoServerFlagAndNoStoredJoin_NullAsOnAFirstServer()
    {
        var config = TestConfig.Load("server", DataDir);

        Assert.Null(await JoinAsync(config, "sqlite"));
        Assert.False(Directory.Exists(DataDir));
    }

    [Fact]
    public void Load_ServerWithServerFlagButNoToken_ConfigErrorNamingToken()
    {
        var error = Assert.Throws<ConfigException>(() => TestConfig.Load("server", DataDir, (Settings.Server, "https://10.0.0.1:9345")));

        Assert.Equal("--token: a server that joins another needs the cluster's server token; give --token (see 'coracle token show' on a server of the cluster)", Assert.Single(error.Errors).ToString());
    }

    [Fact]
    public void CoracleServer_JoinWithAnAgentToken_Exit2WithOneErrorLineAndNoServerFolder()
    {
        var first = fixture.Shared;
        var token = new ClusterToken(first.ServerToken.CaHash, fixture.AgentJoinToken).ToString();

        var (code, _, stderr) = Run.Tool(Executable, "server", "--data-dir", DataDir, "--node-name", "srv-2", "--node-ip", "127.0.0.2",
            "--server", first.Url, "--token", token, "--datastore-endpoint", "postgres://coracle@127.0.0.1:1/coracle");

        Assert.True(code == 2, $"exit {code}: {stderr}");
        Assert.Equal(
            [$"coracle: error: --token: the server refused this server: join token {fixture.AgentJoinTokenId} joins agents only; a server joins with the server token (K10...::server:SECRET, 'coracle token show' on a server of the cluster); nothing was written"],
            stderr.Split('\n').Where(l => l.StartsWith("coracle: error:", StringComparison.Ordinal)));
        Assert.False(Directory.Exists(Path.Combine(DataDir, "server")));
    }

    private static string Executable
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Directory.Packages.props")))
            {
                dir = dir.Parent;
            }

            return Path.Combine(dir!.FullName, "Core", "bin", new DirectoryInfo(AppContext.BaseDirectory).Parent!.Name, "net10.0", "coracle");
        }
    }
}
