using System.Net.Sockets;
using Coracle.Plugins.Datastore.Sql.Protos;
using Coracle.Plugins.Datastore.Sql.Storage;
using Coracle.Plugins.Datastore.Sql.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;
using static Coracle.Plugins.Datastore.Sql.Tests.Support.E;

namespace Coracle.Plugins.Datastore.Sql.Tests.Sqlite;

public sealed class SqliteStoreTests
{
    [Fact]
    public async Task RunAsync_GarbageDatabaseFile_FailsNamingTheFileAndKeepsIt()
    {
        var dir = TempDir("corrupt");
        var db = Path.Combine(dir, "state.db");
        var garbage = new byte[64 * 1024];
        new Random(1).NextBytes(garbage);
        await File.WriteAllBytesAsync(db, garbage);
        var server = new EtcdServer(new EtcdServerOptions { Dialect = SqlDialects.Sqlite(db), UnixSocket = Path.Combine(dir, "etcd.sock") }, NullLoggerFactory.Instance);
        var e = await Assert.ThrowsAsync<DatastoreOpenException>(() => server.RunAsync(CancellationToken.None));
        Assert.Contains(db, e.Message, StringComparison.Ordinal);
        Assert.Contains("never re-creates", e.Message, StringComparison.Ordinal);
        Assert.Equal(garbage, await File.ReadAllBytesAsync(db));
    }

    [Fact]
    public async Task RunAsync_CorruptPageInValidDatabase_FailsIntegrityCheck()
    {
        var dir = TempDir("corrupt-page");
        var db = Path.Combine(dir, "state.db");
        await using (var server = await TestServer.StartAsync(SqlDialects.Sqlite(db), dir))
        {
            for (var i = 0; i < 300; i++)
            {
                await server.Kv.PutAsync(new PutRequest { Key = B($"k/{i:D4}"), Value = B(new string('x', 200)) });
            }
        }

        var bytes = await File.ReadAllBytesAsync(db);
        for (var i = 4096 * 3; i < 4096 * 5; i++)
        {
            bytes[i] = 0x55;
        }

        await File.WriteAllBytesAsync(db, bytes);
        var broken = new EtcdServer(new EtcdServerOptions { Dialect = SqlDialects.Sqlite(db), UnixSocket = Path.Combine(dir, "etcd2.sock") }, NullLoggerFactory.Instance);
        var e = await Assert.ThrowsAsync<DatastoreOpenException>(() => broken.RunAsync(CancellationToken.None));
        Assert.Contains(db, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RunAsync_ForeignSqliteDatabase_IsRefused()
    {
        var dir = TempDir("foreign");
        var db = Path.Combine(dir, "state.db");
        await using (var c = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={db};Pooling=False"))
        {
            await c.OpenAsync();
            await using var cmd = c.CreateCommand();
            cmd.CommandText = "CREATE TABLE photos(id INTEGER)";
            await cmd.ExecuteNonQueryAsync();
        }

        var server = new EtcdServer(new EtcdServerOptions { Dialect = SqlDialects.Sqlite(db), UnixSocket = Path.Combine(dir, "etcd.sock") }, NullLoggerFactory.Instance);
        var e = await Assert.ThrowsAsync<DatastoreOpenException>(() => server.RunAsync(CancellationToken.None));
        Assert.Contains("tables that are not Coracle's", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Restart_AfterWritesLeasesAndCompaction_KeepsEverything()
    {
        var dir = TempDir("restart");
        var db = Path.Combine(dir, "state.db");
        long revision;
        long lease;
        await using (var server = await TestServer.StartAsync(SqlDialects.Sqlite(db), dir))
        {
            lease = (await server.Lease.LeaseGrantAsync(new LeaseGrantRequest { TTL = 600 })).ID;
            await server.Kv.PutAsync(new PutRequest { Key = B("a"), Value = B("1") });
            await server.Kv.PutAsync(new PutRequest { Key = B("a"), Value = B("2"), Lease = lease });
            revision = (await server.Kv.PutAsync(new PutRequest { Key = B("b"), Value = B("3") })).Header.Revision;
            await server.Kv.CompactAsync(new CompactionRequest { Revision = revision - 1, Physical = true });
        }

        await using (var again = await TestServer.StartAsync(SqlDialects.Sqlite(db), dir))
        {
            var r = await again.Kv.RangeAsync(new RangeRequest { Key = B("a") });
            Assert.Equal(revision, r.Header.Revision);
            Assert.Equal("2", S(r.Kvs[0].Value));
            Assert.Equal(2, r.Kvs[0].Version);
            var ttl = await again.Lease.LeaseTimeToLiveAsync(new LeaseTimeToLiveRequest { ID = lease, Keys = true });
            Assert.Equal(["a"], ttl.Keys.Select(S));
            var next = await again.Kv.PutAsync(new PutRequest { Key = B("c"), Value = B("4") });
            Assert.Equal(revision + 1, next.Header.Revision);
            var compacted = await Assert.ThrowsAsync<Grpc.Core.RpcException>(() => again.Kv.RangeAsync(new RangeRequest { Key = B("a"), Revision = revision - 2 }).ResponseAsync);
            Assert.Equal(Grpc.Core.StatusCode.OutOfRange, compacted.StatusCode);
        }
    }

    [Fact]
    public async Task RunAsync_Listeners_SocketIsOwnerOnlyAndMetricsAndHealthAnswer()
    {
        var dir = TempDir("listeners");
        var metricsSocket = Path.Combine(dir, "metrics.sock");
        await using var server = await TestServer.StartAsync(SqlDialects.Sqlite(Path.Combine(dir, "state.db")), dir, o => o with { MetricsAddress = "unix://" + metricsSocket });
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(server.Options.UnixSocket!));
        await server.Kv.PutAsync(new PutRequest { Key = B("m"), Value = B("1") });
        var health = new Grpc.Health.V1.Health.HealthClient(server.Channel);
        Assert.Equal(Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus.Serving, (await health.CheckAsync(new Grpc.Health.V1.HealthCheckRequest())).Status);
        using var http = new HttpClient(new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                await s.ConnectAsync(new UnixDomainSocketEndPoint(metricsSocket), ct);
                return new NetworkStream(s, ownsSocket: true);
            },
        });
        var text = await http.GetStringAsync("http://localhost/metrics");
        Assert.Contains("coracle_datastore_requests_total{method=\"/etcdserverpb.KV/Put\"} 1", text, StringComparison.Ordinal);
        Assert.Contains("coracle_datastore_db_size_bytes ", text, StringComparison.Ordinal);
        Assert.Contains("coracle_datastore_request_duration_seconds_bucket", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Snapshot_Stream_IsAReadableSqliteCopy()
    {
        var dir = TempDir("snapshot");
        await using var server = await TestServer.StartAsync(SqlDialects.Sqlite(Path.Combine(dir, "state.db")), dir);
        await server.Kv.PutAsync(new PutRequest { Key = B("s"), Value = B("snap") });
        using var call = server.Maintenance.Snapshot(new SnapshotRequest());
        var copy = Path.Combine(dir, "copy.db");
        await using (var file = File.Create(copy))
        {
            while (await call.ResponseStream.MoveNext(CancellationToken.None))
            {
                call.ResponseStream.Current.Blob.WriteTo(file);
            }
        }

        await using var c = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={copy};Pooling=False");
        await c.OpenAsync();
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT COUNT(*) FROM coracle_current";
        Assert.Equal(1L, (long)(await cmd.ExecuteScalarAsync())!);
    }

    [Fact]
    public async Task AutoCompaction_KeepsMinRetainRevisions()
    {
        var dir = TempDir("autocompact");
        await using var server = await TestServer.StartAsync(SqlDialects.Sqlite(Path.Combine(dir, "state.db")), dir, o => o with { CompactInterval = TimeSpan.FromMilliseconds(200), CompactMinRetain = 10 });
        long last = 0;
        for (var i = 0; i < 40; i++)
        {
            last = (await server.Kv.PutAsync(new PutRequest { Key = B("k" + (i % 3)), Value = B("v" + i) })).Header.Revision;
        }

        var deadline = DateTime.UtcNow.AddSeconds(20);
        HashKVResponse hash;
        do
        {
            await Task.Delay(100);
            hash = await server.Maintenance.HashKVAsync(new HashKVRequest());
        }
        while (hash.CompactRevision < last - 10 && DateTime.UtcNow < deadline);
        Assert.Equal(last - 10, hash.CompactRevision);
        Assert.Equal(3, (await server.Kv.RangeAsync(new RangeRequest { Key = B("k"), RangeEnd = B("l") })).Count);
    }

    [Fact]
    [Trait("Category", "Integration")]
    public async Task Put_SustainedChurnWithOpenWatchAndReaders_WalStaysBoundedAndIsTruncatedOnStop()
    {
        var dir = TempDir("churn");
        var db = Path.Combine(dir, "state.db");
        var peakWal = 0L;
        await using (var server = await TestServer.StartAsync(SqlDialects.Sqlite(db), dir))
        {
            // A watcher and readers keep read transactions coming, which is what can starve checkpoints.
            await using var watch = new WatchSession(server.Watch);
            await watch.CreateAsync(new WatchCreateRequest { Key = B("churn/"), RangeEnd = PrefixEnd("churn/") });
            using var stop = new CancellationTokenSource();
            var readers = Enumerable.Range(0, 2).Select(_ => Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested)
                {
                    await server.Kv.RangeAsync(new RangeRequest { Key = B("churn/"), RangeEnd = PrefixEnd("churn/"), Limit = 100 });
                }
            })).ToArray();
            var value = new string('v', 1024);
            var next = -1;
            var writers = Enumerable.Range(0, 8).Select(_ => Task.Run(async () =>
            {
                for (var i = Interlocked.Increment(ref next); i < 30_000; i = Interlocked.Increment(ref next))
                {
                    await server.Kv.PutAsync(new PutRequest { Key = B($"churn/{i % 500:D3}"), Value = B(value) });
                    if (i % 500 == 0)
                    {
                        var wal = new FileInfo(db + "-wal");
                        Interlocked.Exchange(ref peakWal, Math.Max(Interlocked.Read(ref peakWal), wal.Exists ? wal.Length : 0));
                    }
                }
            })).ToArray();
            // A hang guard, not a timing assertion (about 35 s here): once, under CI, this run never finished and held
            // the suite for its whole time limit; failing after minutes names the test instead.
            await Task.WhenAll(writers).WaitAsync(TimeSpan.FromMinutes(5));
            await stop.CancelAsync();
            await Task.WhenAll(readers).WaitAsync(TimeSpan.FromMinutes(1));
        }

        // About 30 MiB of values went through a WAL that SQLite checkpoints every 1000 pages (4 MiB).
        Assert.InRange(peakWal, 1, 16L << 20);
        Assert.Equal(0, new FileInfo(db + "-wal") is { Exists: true } f ? f.Length : 0);
    }
}
