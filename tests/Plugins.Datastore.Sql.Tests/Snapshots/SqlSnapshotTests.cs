using System.Globalization;
using System.Security.Cryptography;
using Coracle.Plugins.Datastore.Sql.Protos;
using Coracle.Plugins.Datastore.Sql.Snapshots;
using Coracle.Plugins.Datastore.Sql.Storage;
using Coracle.Plugins.Datastore.Sql.Tests.Support;
using static Coracle.Plugins.Datastore.Sql.Tests.Support.E;

namespace Coracle.Plugins.Datastore.Sql.Tests.Snapshots;

/// <summary>
/// Snapshots of the SQLite datastore saved by Debian's real etcdctl 3.4 (etcd's trailing SHA-256 framing) and restored by
/// the plugin (<see cref="IDatastoreSnapshots"/>): later writes gone, earlier ones there, the old data moved aside; corrupt,
/// truncated and foreign files (random bytes, a real etcd bbolt snapshot) refused with the data untouched.
/// </summary>
[Trait("Category", "Integration")]
public sealed class SqlSnapshotTests : IAsyncLifetime
{
    private static readonly DateTimeOffset Now = DateTimeOffset.FromUnixTimeSeconds(1_800_000_000);
    private readonly string _dataDir = TempDir("snapshots");
    private readonly SqliteDatastorePlugin _plugin = new();
    private string _etcdctl = "";

    private string DbDir => Path.Combine(_dataDir, "server", "db");

    private string Database => Path.Combine(DbDir, "state.db");

    private NodeSettings Node => new()
    {
        Role = "server",
        NodeName = "n1",
        DataDir = _dataDir,
        RunDir = Path.Combine(_dataDir, "run"),
        ComponentsDir = "/nonexistent",
        Architecture = "x64",
        ClusterCidr = "10.42.0.0/16",
        ServiceCidr = "10.43.0.0/16",
        ClusterDns = "10.43.0.10",
        ClusterDomain = "cluster.local",
        PauseImage = "pause",
    };

    private static readonly Dictionary<string, string> Options = [];

    public Task InitializeAsync()
    {
        _etcdctl = Tools.Require("etcdctl", "etcd-client");
        return Task.CompletedTask;
    }

    public Task DisposeAsync()
    {
        Directory.Delete(_dataDir, recursive: true);
        return Task.CompletedTask;
    }

    private Task<TestServer> StartAsync() =>
        TestServer.StartAsync(SqlDialects.Sqlite(Database), DbDir, o => o with { UnixSocket = Path.Combine(DbDir, "etcd.sock") });

    private async Task EtcdctlSaveAsync(TestServer server, string file)
    {
        var (code, stdout, stderr) = await Tools.RunAsync(_etcdctl, ["--endpoints", "unix://" + server.Options.UnixSocket, "snapshot", "save", file],
            env: new Dictionary<string, string> { ["ETCDCTL_API"] = "3" });
        Assert.True(code == 0, $"etcdctl snapshot save exited {code}: {stdout}{stderr}");
    }

    private static async Task<string?> GetAsync(TestServer server, string key)
    {
        var response = await server.Kv.RangeAsync(new RangeRequest { Key = B(key) });
        return response.Kvs.Count == 0 ? null : S(response.Kvs[0].Value);
    }

    /// <summary>A server with /a=1 and /b=2, snapshotted by etcdctl to the returned file, then /c=3 and /a=changed written.</summary>
    private async Task<string> SnapshotThenMoreWritesAsync()
    {
        var file = Path.Combine(_dataDir, "snap.db");
        await using var server = await StartAsync();
        await server.Kv.PutAsync(new PutRequest { Key = B("/a"), Value = B("1") });
        await server.Kv.PutAsync(new PutRequest { Key = B("/b"), Value = B("2") });
        await EtcdctlSaveAsync(server, file);
        await server.Kv.PutAsync(new PutRequest { Key = B("/c"), Value = B("3") });
        await server.Kv.PutAsync(new PutRequest { Key = B("/a"), Value = B("changed") });
        return file;
    }

    [Fact]
    public async Task EtcdctlSnapshotSave_SqliteDatastore_SavesDatabaseWithTrailingSha256()
    {
        var file = await SnapshotThenMoreWritesAsync();
        var bytes = await File.ReadAllBytesAsync(file);
        Assert.Equal(32, bytes.Length % 512);
        Assert.Equal(SHA256.HashData(bytes.AsSpan(0, bytes.Length - 32)), bytes[^32..]);
        Assert.Equal("SQLite format 3\0"u8.ToArray(), bytes[..16]);
        _plugin.VerifySnapshot(Node, Options, file);
    }

    [Fact]
    public async Task Restore_SnapshotThenMoreWrites_LaterWritesGoneEarlierThereOldDataAside()
    {
        var file = await SnapshotThenMoreWritesAsync();
        var oldBytes = await File.ReadAllBytesAsync(Database);

        var restored = _plugin.Restore(Node, Options, file, Now);

        Assert.False(restored.AlreadyRestored);
        Assert.Equal(Path.Combine(_dataDir, "server", "db-old-1800000000"), restored.MovedAside);
        Assert.Equal(oldBytes, await File.ReadAllBytesAsync(Path.Combine(restored.MovedAside, "state.db")));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Database));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(restored.MovedAside));
        await using var server = await StartAsync();
        Assert.Equal("1", await GetAsync(server, "/a"));
        Assert.Equal("2", await GetAsync(server, "/b"));
        Assert.Null(await GetAsync(server, "/c"));
        var revision = (await server.Kv.RangeAsync(new RangeRequest { Key = B("/a") })).Header.Revision;
        Assert.Equal(restored.Revision, revision);
        await server.Kv.PutAsync(new PutRequest { Key = B("/d"), Value = B("after") });
        Assert.Equal("after", await GetAsync(server, "/d"));
    }

    [Fact]
    public async Task Restore_WriteEconomyOn_SnapshotHoldsVolatileKeysNotYetFlushed()
    {
        // Volatile keys are flushed at most every hour here: only the snapshot's own flush can put them in the copy.
        Task<TestServer> StartEconomyAsync() => TestServer.StartAsync(SqlDialects.Sqlite(Database), DbDir, o => o with
        {
            UnixSocket = Path.Combine(DbDir, "etcd.sock"),
            Log = o.Log with { VolatilePrefixes = ["/registry/leases/"], VolatileFlushInterval = TimeSpan.FromHours(1) },
        });
        var file = Path.Combine(_dataDir, "economy.db");
        long saved;
        await using (var server = await StartEconomyAsync())
        {
            await server.Kv.PutAsync(new PutRequest { Key = B("/registry/leases/kube-node-lease/n1"), Value = B("renewed") });
            saved = (await server.Kv.PutAsync(new PutRequest { Key = B("/a"), Value = B("1") })).Header.Revision;
            await EtcdctlSaveAsync(server, file);
            await server.Kv.PutAsync(new PutRequest { Key = B("/registry/leases/kube-node-lease/n1"), Value = B("later") });
        }

        _ = _plugin.Restore(Node, Options, file, Now);

        await using var restored = await StartEconomyAsync();
        Assert.Equal("renewed", await GetAsync(restored, "/registry/leases/kube-node-lease/n1"));
        Assert.Equal("1", await GetAsync(restored, "/a"));
        var next = await restored.Kv.PutAsync(new PutRequest { Key = B("/b"), Value = B("after") });
        Assert.True(next.Header.Revision > saved, $"revision {next.Header.Revision} after the restore is above the snapshot's {saved}");
    }

    [Fact]
    public async Task Restore_SameSnapshotAgain_ChangesNothingAndSaysAlreadyRestored()
    {
        var file = await SnapshotThenMoreWritesAsync();
        _ = _plugin.Restore(Node, Options, file, Now);
        await using (var server = await StartAsync())
        {
            await server.Kv.PutAsync(new PutRequest { Key = B("/e"), Value = B("kept") });
        }

        var again = _plugin.Restore(Node, Options, file, Now.AddMinutes(5));

        Assert.True(again.AlreadyRestored);
        Assert.Equal("", again.MovedAside);
        Assert.False(Directory.Exists(Path.Combine(_dataDir, "server", "db-old-1800000300")));
        await using var restarted = await StartAsync();
        Assert.Equal("kept", await GetAsync(restarted, "/e"));
    }

    public static TheoryData<string, string> BadFiles => new()
    {
        { "truncated", "not a snapshot: its {0} bytes are not whole 512-byte sectors plus a 32-byte SHA-256 (truncated, or not written by 'coracle etcd-snapshot save' or 'etcdctl snapshot save')" },
        { "corrupt", "checksum mismatch: the data hashes to sha256 {1} but the trailer says {2} (the file is corrupt or truncated)" },
        { "random", "not a snapshot: its {0} bytes are not whole 512-byte sectors plus a 32-byte SHA-256 (truncated, or not written by 'coracle etcd-snapshot save' or 'etcdctl snapshot save')" },
        { "framed-random", "not a snapshot of the SQL datastore: the data is not a SQLite database" },
        { "foreign-sqlite", "not a snapshot of the SQL datastore: the SQLite database lacks Coracle's tables (coracle_log, coracle_current, coracle_meta, coracle_lease)" },
    };

    [Theory]
    [MemberData(nameof(BadFiles))]
    public async Task Restore_BadFile_RefusedWithExactReasonAndDataUntouched(string kind, string expected)
    {
        var good = await SnapshotThenMoreWritesAsync();
        var bad = Path.Combine(_dataDir, kind + ".db");
        var bytes = await File.ReadAllBytesAsync(good);
        switch (kind)
        {
            case "truncated":
                bytes = bytes[..(bytes.Length - 1000)];
                break;
            case "corrupt":
                bytes[5000] ^= 0xff;
                break;
            case "random":
                bytes = RandomNumberGenerator.GetBytes(100_000);
                break;
            case "framed-random":
                bytes = Framed(RandomNumberGenerator.GetBytes(8192));
                break;
            default:
                bytes = Framed(await ForeignSqliteAsync());
                break;
        }

        await File.WriteAllBytesAsync(bad, bytes);
        var before = await File.ReadAllBytesAsync(Database);

        var e = Assert.Throws<InvalidDataException>(() => _plugin.Restore(Node, Options, bad, Now));

        var data = bytes.AsSpan(0, Math.Max(bytes.Length - 32, 0));
        Assert.Equal(string.Format(CultureInfo.InvariantCulture, expected, bytes.Length,
            Convert.ToHexStringLower(SHA256.HashData(data)), Convert.ToHexStringLower(bytes[^32..])), e.Message);
        Assert.Equal(before, await File.ReadAllBytesAsync(Database));
        Assert.Equal(["db"], Directory.GetDirectories(Path.Combine(_dataDir, "server")).Select(Path.GetFileName));
        Assert.DoesNotContain(Directory.GetFiles(DbDir), f => Path.GetFileName(f).StartsWith(".restore", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Restore_RealEtcdBoltSnapshot_RefusedAsForeignAndDataUntouched()
    {
        var etcd = Tools.Require("etcd", "etcd-server");
        var etcdDir = Path.Combine(_dataDir, "etcd");
        var client = Coracle.TestSupport.FreePorts.Next();
        using var process = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo(etcd)
        {
            ArgumentList =
            {
                "--data-dir", etcdDir, "--listen-client-urls", $"http://127.0.0.1:{client}", "--advertise-client-urls", $"http://127.0.0.1:{client}",
                "--listen-peer-urls", $"http://127.0.0.1:{Coracle.TestSupport.FreePorts.Next()}",
            },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        var bolt = Path.Combine(_dataDir, "bolt.db");
        try
        {
            _ = process.StandardError.ReadToEndAsync();
            _ = process.StandardOutput.ReadToEndAsync();
            var env = new Dictionary<string, string> { ["ETCDCTL_API"] = "3" };
            var deadline = DateTime.UtcNow.AddSeconds(60);
            (int Code, string Out, string Err) put;
            do
            {
                put = await Tools.RunAsync(_etcdctl, ["--endpoints", $"http://127.0.0.1:{client}", "--dial-timeout", "2s", "put", "k", "v"], env: env);
            }
            while (put.Code != 0 && DateTime.UtcNow < deadline && !process.HasExited);
            Assert.True(put.Code == 0, $"etcd did not answer: {put.Err}");
            var save = await Tools.RunAsync(_etcdctl, ["--endpoints", $"http://127.0.0.1:{client}", "snapshot", "save", bolt], env: env);
            Assert.True(save.ExitCode == 0, save.Stderr);
        }
        finally
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }

        await using (var server = await StartAsync())
        {
            await server.Kv.PutAsync(new PutRequest { Key = B("/mine"), Value = B("1") });
        }

        var before = await File.ReadAllBytesAsync(Database);

        var e = Assert.Throws<InvalidDataException>(() => _plugin.Restore(Node, Options, bolt, Now));

        Assert.Equal("not a snapshot of the SQL datastore: it is an etcd (bbolt) snapshot, which only the etcd datastore restores", e.Message);
        Assert.Equal(before, await File.ReadAllBytesAsync(Database));
        Assert.False(Directory.Exists(Path.Combine(_dataDir, "server", "db-old-1800000000")));
    }

    [Fact]
    public void Restore_PostgresDatastore_RefusedAsNotSupported()
    {
        var e = Assert.Throws<NotSupportedException>(() => new PostgresDatastorePlugin().Restore(
            Node with { DatastoreEndpoint = "postgres://u:p@127.0.0.1:5432/k" }, Options, "/nonexistent", Now));
        Assert.Equal("the postgres datastore has no snapshots in this version; back up and restore the database with its own tools (pg_dump and pg_restore)", e.Message);
    }

    [Fact]
    public void Reset_Sqlite_NothingToReset()
    {
        Assert.Equal("the sqlite datastore is one member by construction: nothing to reset; the server starts on its current data", _plugin.Reset(Node, Options));
        Assert.False(Directory.Exists(DbDir));
    }

    private static byte[] Framed(byte[] data) => [.. data, .. SHA256.HashData(data)];

    private async Task<byte[]> ForeignSqliteAsync()
    {
        var path = Path.Combine(_dataDir, "foreign.sqlite");
        await using (var c = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={path};Pooling=False"))
        {
            await c.OpenAsync();
            await using var cmd = c.CreateCommand();
            cmd.CommandText = "CREATE TABLE people(name TEXT); INSERT INTO people VALUES ('x');";
            await cmd.ExecuteNonQueryAsync();
        }

        return await File.ReadAllBytesAsync(path);
    }
}
