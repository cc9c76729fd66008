using System.Security.Cryptography;
using Coracle.Core.Snapshots;
using Coracle.Core.Supervision;
using Coracle.Plugins.Datastore.Etcd.Tests.Support;

namespace Coracle.Plugins.Datastore.Etcd.Tests;

/// <summary>The etcd plugin alone: Configure, the host's real supervisor running Debian's etcd, etcdctl as an independent client.</summary>
[Trait("Category", "Integration")]
public sealed class EmbeddedEtcdTests : IAsyncDisposable
{
    private readonly TempDir _temp = new("etcdh");
    private readonly ListLoggerFactory _logs = new();
    private Supervisor? _supervisor;

    public async ValueTask DisposeAsync()
    {
        if (_supervisor is not null)
        {
            await _supervisor.StopAsync();
        }

        _temp.Dispose();
    }

    private async Task<(NodeSettings Node, Dictionary<string, string> Options, DatastoreEndpoint Endpoint)> StartAsync(Dictionary<string, string>? options = null)
    {
        var node = EtcdTest.Node(_temp.Path, "etcd-a");
        options ??= EtcdTest.Ports(FreePorts.Next());
        var certificates = EtcdTest.Certificates(node);
        _supervisor = new Supervisor(_logs, logDir: _temp.Combine("logs"));
        var endpoint = new EtcdPlugin().Configure(EtcdTest.Context(node, options, certificates, _supervisor, _logs));
        _supervisor.Start(CancellationToken.None);
        await _supervisor.WaitReadyAsync(endpoint.ComponentName, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(60));
        return (node, options, endpoint);
    }

    private async Task StopAsync()
    {
        await _supervisor!.StopAsync();
        _supervisor = null;
    }

    [Fact]
    public async Task Configure_ClusterInit_EtcdServesClientsWithTheDatastoreClientCertificateOnly()
    {
        var (node, options, endpoint) = await StartAsync();
        Assert.Equal("etcd", endpoint.ComponentName);
        Assert.Equal([$"https://127.0.0.1:{options["client-port"]}"], endpoint.Servers);
        Assert.EndsWith("/server/tls/datastore-client.crt", endpoint.Tls!.CertFile, StringComparison.Ordinal);
        Assert.True(Directory.Exists(Path.Combine(node.DataDir, "server", "db", "etcd", "member")));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Path.Combine(node.DataDir, "server", "db", "etcd")));

        string[] client = ["--endpoints=" + endpoint.Servers[0], .. EtcdTest.Tls(endpoint.Tls)];
        var put = EtcdTest.Etcdctl([.. client, "put", "/registry/x", "hello"]);
        Assert.True(put.Exit == 0, put.Output);
        var get = EtcdTest.Etcdctl([.. client, "get", "/registry/x", "--print-value-only"]);
        Assert.Equal("hello", get.Output.Trim());

        // No client certificate: the TLS handshake is refused (client-cert-auth).
        var anonymous = EtcdTest.Etcdctl("--endpoints=" + endpoint.Servers[0], "--cacert=" + endpoint.Tls.CaFile, "--command-timeout=5s", "--dial-timeout=3s", "get", "/registry/x");
        Assert.NotEqual(0, anonymous.Exit);
        Assert.DoesNotContain("hello", anonymous.Output, StringComparison.Ordinal);

        // Metrics and /health on loopback, plain HTTP.
        using var http = new HttpClient();
        var health = await http.GetStringAsync(new Uri($"http://127.0.0.1:{options["metrics-port"]}/health"));
        Assert.Contains("\"health\":\"true\"", health, StringComparison.Ordinal);

        var members = await new EtcdPlugin().MembersAsync(node, options, CancellationToken.None);
        var member = Assert.Single(members.Members);
        Assert.True(members.HasQuorum);
        Assert.Equal(("etcd-a", false, true), (member.Name, member.IsLearner, member.Healthy));
        Assert.Equal(["https://127.0.0.1:" + options["peer-port"]], member.PeerUrls);
        Assert.Contains(_logs.Lines, l => l.Contains("embedded etcd member etcd-a", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Restore_SnapshotSavedThroughMaintenance_LaterWritesGoneOldDataMovedAside()
    {
        var (node, options, endpoint) = await StartAsync();
        string[] client = ["--endpoints=" + endpoint.Servers[0], .. EtcdTest.Tls(endpoint.Tls!)];
        Assert.Equal(0, EtcdTest.Etcdctl([.. client, "put", "/before", "1"]).Exit);

        // The host's path: Maintenance.Snapshot on the plugin's snapshot endpoint, with the datastore-client certificate.
        var plugin = new EtcdPlugin();
        var file = _temp.Combine("snap.db");
        var saved = await SnapshotClient.SaveAsync(plugin.SnapshotEndpoint(node, options), file, CancellationToken.None);
        Assert.Equal(32, saved.Size % 512);
        plugin.VerifySnapshot(node, options, file);
        Assert.Equal(0, EtcdTest.Etcdctl([.. client, "put", "/after", "2"]).Exit);
        await StopAsync();

        var restored = plugin.Restore(node, options, file, DateTimeOffset.FromUnixTimeSeconds(1_800_000_000));
        Assert.False(restored.AlreadyRestored);
        Assert.Equal(saved.Sha256, restored.Sha256);
        Assert.Equal(Path.Combine(node.DataDir, "server", "db", "etcd-old-1800000000"), restored.MovedAside);
        Assert.True(Directory.Exists(Path.Combine(restored.MovedAside, "member", "snap")));

        // The same snapshot again (flags left in the unit file): nothing changes.
        Assert.True(plugin.Restore(node, options, file, DateTimeOffset.FromUnixTimeSeconds(1_800_000_100)).AlreadyRestored);

        (_, _, endpoint) = await StartAsync(options);
        Assert.Equal("1", EtcdTest.Etcdctl([.. client, "get", "/before", "--print-value-only"]).Output.Trim());
        Assert.Equal("", EtcdTest.Etcdctl([.. client, "get", "/after", "--print-value-only"]).Output.Trim());
        var members = await plugin.MembersAsync(node, options, CancellationToken.None);
        Assert.Equal("etcd-a", Assert.Single(members.Members).Name);
    }

    [Fact]
    public async Task Restore_CorruptOrSqliteSnapshot_RefusedAndDataUntouched()
    {
        var (node, options, endpoint) = await StartAsync();
        var plugin = new EtcdPlugin();
        var good = _temp.Combine("good.db");
        _ = await SnapshotClient.SaveAsync(plugin.SnapshotEndpoint(node, options), good, CancellationToken.None);
        await StopAsync();

        var corrupt = _temp.Combine("corrupt.db");
        var bytes = await File.ReadAllBytesAsync(good);
        bytes[5000] ^= 0xff;
        await File.WriteAllBytesAsync(corrupt, bytes);

        // A framed SQLite file, as the sqlite datastore's snapshots are.
        var sqlite = new byte[4096];
        "SQLite format 3\0"u8.CopyTo(sqlite);
        var foreign = _temp.Combine("sqlite.snap");
        await File.WriteAllBytesAsync(foreign, [.. sqlite, .. SHA256.HashData(sqlite)]);

        var truncated = _temp.Combine("truncated.db");
        await File.WriteAllBytesAsync(truncated, bytes.AsSpan(0, 4000).ToArray());

        var etcdDir = Path.Combine(node.DataDir, "server", "db", "etcd");
        var before = Directory.GetFiles(etcdDir, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();
        var now = DateTimeOffset.UtcNow;
        Assert.StartsWith("checksum mismatch: the data hashes to sha256 ",
            Assert.Throws<InvalidDataException>(() => plugin.Restore(node, options, corrupt, now)).Message, StringComparison.Ordinal);
        Assert.Equal("not an etcd snapshot: it is a SQLite snapshot of the SQL datastore, which only the sqlite datastore restores",
            Assert.Throws<InvalidDataException>(() => plugin.Restore(node, options, foreign, now)).Message);
        Assert.Equal("not a snapshot: its 4000 bytes are not whole 512-byte sectors plus a 32-byte SHA-256 (truncated, or not written by 'coracle etcd-snapshot save' or 'etcdctl snapshot save')",
            Assert.Throws<InvalidDataException>(() => plugin.VerifySnapshot(node, options, truncated)).Message);

        Assert.Equal(before, Directory.GetFiles(etcdDir, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList());
        Assert.Empty(Directory.GetDirectories(Path.GetDirectoryName(etcdDir)!, "etcd-old-*"));
        Assert.Empty(Directory.GetDirectories(Path.GetDirectoryName(etcdDir)!, ".etcd-restore-*"));
    }

    [Fact]
    public async Task Reset_ExistingData_NextStartIsForceNewClusterOnce()
    {
        var (node, options, _) = await StartAsync();
        await StopAsync();
        var plugin = new EtcdPlugin();
        Assert.StartsWith("the embedded etcd starts once with --force-new-cluster", plugin.Reset(node, options), StringComparison.Ordinal);

        (_, _, var endpoint) = await StartAsync(options);
        Assert.Contains(_logs.Lines, l => l.Contains("--cluster-reset: starting etcd once with --force-new-cluster", StringComparison.Ordinal));
        Assert.False(File.Exists(Path.Combine(node.DataDir, "server", "db", "etcd.force-new-cluster")));
        Assert.True((await plugin.MembersAsync(node, options, CancellationToken.None)).HasQuorum);
        Assert.Single(endpoint.Servers);
    }
}
