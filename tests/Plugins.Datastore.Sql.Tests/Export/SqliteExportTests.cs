using System.Security.Cryptography;
using Coracle.Plugins.Datastore.Sql.Protos;
using Coracle.Plugins.Datastore.Sql.Storage;
using Coracle.Plugins.Datastore.Sql.Tests.Support;
using Microsoft.Data.Sqlite;
using static Coracle.Plugins.Datastore.Sql.Tests.Support.E;

namespace Coracle.Plugins.Datastore.Sql.Tests.Export;

/// <summary>
/// The SQLite datastore's export (<see cref="IDatastoreExport"/>) from a real <c>DATA/server/db/state.db</c> written by the
/// datastore's own server: live keys only, newest values, in mod-revision order, write economy's volatile keys merged in,
/// lease TTLs; a corrupt or foreign file refused in one line naming it and left byte for byte as it was; the file moved
/// aside to <c>state.db.migrated</c> afterwards.
/// </summary>
[Trait("Category", "Integration")]
public sealed class SqliteExportTests : IDisposable
{
    private static readonly Dictionary<string, string> Options = [];
    private readonly string _dataDir = TempDir("export");
    private readonly SqliteDatastorePlugin _plugin = new();

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

    public void Dispose() => Directory.Delete(_dataDir, recursive: true);

    private Task<TestServer> StartAsync(IReadOnlyList<string>? volatilePrefixes = null) =>
        TestServer.StartAsync(SqlDialects.Sqlite(Database), DbDir, o => o with
        {
            UnixSocket = Path.Combine(DbDir, "etcd.sock"),
            Log = o.Log with { VolatilePrefixes = volatilePrefixes ?? [], VolatileFlushInterval = TimeSpan.FromHours(1) },
        });

    private async Task<List<DatastoreKeyValue>> ExportAsync()
    {
        var keys = new List<DatastoreKeyValue>();
        await foreach (var kv in _plugin.ExportAsync(Node, Options, CancellationToken.None))
        {
            keys.Add(kv);
        }

        return keys;
    }

    private static string Text(byte[] bytes) => System.Text.Encoding.UTF8.GetString(bytes);

    [Fact]
    public async Task ExportAsync_PutsUpdatesDeletesAndATxn_LiveKeysNewestValuesInModRevisionOrder()
    {
        long revision;
        await using (var server = await StartAsync())
        {
            await server.Kv.PutAsync(new PutRequest { Key = B("/a"), Value = B("1") });   // 2
            await server.Kv.PutAsync(new PutRequest { Key = B("/b"), Value = B("1") });   // 3
            await server.Kv.PutAsync(new PutRequest { Key = B("/c"), Value = B("1") });   // 4
            await server.Kv.PutAsync(new PutRequest { Key = B("/a"), Value = B("2") });   // 5
            await server.Kv.DeleteRangeAsync(new DeleteRangeRequest { Key = B("/b") });   // 6
            revision = (await server.Kv.TxnAsync(new TxnRequest { Success = { Put("/e", "txn"), Put("/d", "txn") } })).Header.Revision; // 7
        }

        Assert.Equal(Database, _plugin.ExportSource(Node, Options));
        var info = _plugin.VerifyExport(Node, Options);
        Assert.Equal((Database, "SQLite", revision, 4L), (info.Source, info.Kind, info.Revision, info.Keys));

        var keys = await ExportAsync();

        Assert.Equal(["/c", "/a", "/e", "/d"], keys.Select(k => Text(k.Key)));
        Assert.Equal([4L, 5, 7, 7], keys.Select(k => k.ModRevision));
        Assert.Equal(["1", "2", "txn", "txn"], keys.Select(k => Text(k.Value)));
        var a = keys[1];
        Assert.Equal((2L, 2L, 0L, 0L), (a.CreateRevision, a.Version, a.Lease, a.LeaseTtlSeconds));
    }

    [Fact]
    public async Task ExportAsync_WriteEconomyOnWithLeases_VolatileKeysMergedInOrderWithTheirLeaseTtl()
    {
        string[] prefixes = ["/registry/leases/", "/registry/events/"];
        long lease;
        await using (var server = await StartAsync(prefixes))
        {
            lease = (await server.Lease.LeaseGrantAsync(new LeaseGrantRequest { TTL = 3600 })).ID;
            await server.Kv.PutAsync(new PutRequest { Key = B("/registry/events/default/e1"), Value = B("event"), Lease = lease });
            await server.Kv.PutAsync(new PutRequest { Key = B("/registry/pods/default/p1"), Value = B("pod") });
            await server.Kv.PutAsync(new PutRequest { Key = B("/registry/leases/kube-node-lease/n1"), Value = B("renew-1") });
            await server.Kv.PutAsync(new PutRequest { Key = B("/registry/pods/default/p2"), Value = B("pod") });
            await server.Kv.PutAsync(new PutRequest { Key = B("/registry/leases/kube-node-lease/n1"), Value = B("renew-2") });
            await server.Kv.PutAsync(new PutRequest { Key = B("/registry/leases/kube-node-lease/gone"), Value = B("x") });
            await server.Kv.DeleteRangeAsync(new DeleteRangeRequest { Key = B("/registry/leases/kube-node-lease/gone") });
            await server.Kv.PutAsync(new PutRequest { Key = B("/registry/pods/default/p3"), Value = B("pod") });
        }

        // The clean stop flushed the volatile keys into their own table, not into the log.
        using (var c = new SqliteConnection($"Data Source={Database};Mode=ReadOnly;Pooling=False"))
        {
            c.Open();
            using var cmd = c.CreateCommand();
            cmd.CommandText = "SELECT COUNT(*) FROM coracle_volatile";
            Assert.True(Convert.ToInt64(cmd.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture) > 0);
        }

        var keys = await ExportAsync();

        Assert.Equal(
            ["/registry/events/default/e1", "/registry/pods/default/p1", "/registry/pods/default/p2", "/registry/leases/kube-node-lease/n1", "/registry/pods/default/p3"],
            keys.Select(k => Text(k.Key)));
        Assert.Equal(keys.Select(k => k.ModRevision).Order(), keys.Select(k => k.ModRevision));
        Assert.Equal("renew-2", Text(keys[3].Value));
        Assert.Equal((lease, 3600L), (keys[0].Lease, keys[0].LeaseTtlSeconds));
        Assert.Equal(5, _plugin.VerifyExport(Node, Options).Keys);
    }

    [Fact]
    public async Task RetireExported_AfterExport_FileKeptAsStateDbMigratedAndNoSourceLeft()
    {
        await using (var server = await StartAsync())
        {
            await server.Kv.PutAsync(new PutRequest { Key = B("/a"), Value = B("1") });
        }

        var before = SHA256.HashData(await File.ReadAllBytesAsync(Database));
        _ = await ExportAsync();
        Assert.Equal(before, SHA256.HashData(await File.ReadAllBytesAsync(Database)));

        var aside = _plugin.RetireExported(Node, Options, DateTimeOffset.FromUnixTimeSeconds(1_800_000_000));

        Assert.Equal(Database + ".migrated", aside);
        Assert.False(File.Exists(Database));
        Assert.Null(_plugin.ExportSource(Node, Options));
        await using var reopened = await TestServer.StartAsync(SqlDialects.Sqlite(aside), DbDir, o => o with { UnixSocket = Path.Combine(DbDir, "again.sock") });
        Assert.Equal("1", S(Assert.Single((await reopened.Kv.RangeAsync(new RangeRequest { Key = B("/a") })).Kvs).Value));
    }

    [Fact]
    public void ExportSource_NoFileOrAnotherEndpoint_Null()
    {
        Assert.Null(_plugin.ExportSource(Node, Options));
        Directory.CreateDirectory(DbDir);
        File.WriteAllBytes(Database, []);
        Assert.Equal(Database, _plugin.ExportSource(Node, Options));
        Assert.Null(_plugin.ExportSource(Node with { DatastoreEndpoint = "postgres://coracle@db:5432/k" }, Options));
        Assert.Null(_plugin.ExportSource(Node with { DatastoreEndpoint = "https://10.0.0.1:2379" }, Options));
    }

    public static TheoryData<string, string> BadFiles => new()
    {
        { "random", "the SQLite database {0} cannot be read: SQLite Error 26: 'file is not a database'" },
        { "foreign", "{0} is not a database of the SQL datastore: it lacks Coracle's tables (coracle_log, coracle_current, coracle_meta)" },
    };

    [Theory]
    [MemberData(nameof(BadFiles))]
    public async Task VerifyExportAndExportAsync_BadFile_OneLineNamingTheFileAndFileUntouched(string kind, string expected)
    {
        Directory.CreateDirectory(DbDir);
        if (kind == "random")
        {
            await File.WriteAllBytesAsync(Database, RandomNumberGenerator.GetBytes(16384));
        }
        else
        {
            using var c = new SqliteConnection($"Data Source={Database};Pooling=False");
            c.Open();
            using var cmd = c.CreateCommand();
            cmd.CommandText = "CREATE TABLE photos(id INTEGER PRIMARY KEY, data BLOB); INSERT INTO photos(data) VALUES (x'00')";
            cmd.ExecuteNonQuery();
        }

        var before = await File.ReadAllBytesAsync(Database);

        var verify = Assert.Throws<InvalidDataException>(() => _plugin.VerifyExport(Node, Options));
        var export = await Assert.ThrowsAsync<InvalidDataException>(ExportAsync);

        Assert.Equal(string.Format(System.Globalization.CultureInfo.InvariantCulture, expected, Database), verify.Message);
        Assert.Equal(verify.Message, export.Message);
        Assert.DoesNotContain('\n', verify.Message);
        Assert.Equal(before, await File.ReadAllBytesAsync(Database));
        Assert.Equal([Database], Directory.GetFiles(DbDir));
    }
}
