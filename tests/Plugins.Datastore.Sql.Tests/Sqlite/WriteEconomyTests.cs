using Coracle.Plugins.Datastore.Sql.Protos;
using Coracle.Plugins.Datastore.Sql.Storage;
using Coracle.Plugins.Datastore.Sql.Tests.Support;
using Grpc.Core;
using Microsoft.Data.Sqlite;
using static Coracle.Plugins.Datastore.Sql.Tests.Support.E;

namespace Coracle.Plugins.Datastore.Sql.Tests.Sqlite;

/// <summary>
/// Write economy: keys under the volatile prefixes are served from memory and reach the database file (table
/// <c>coracle_volatile</c>) only at a flush, with a transaction that also changes a durable key, or at a clean stop.
/// The database file is read directly to see what is on disk.
/// </summary>
public sealed class WriteEconomyTests
{
    private static readonly string[] Leases = ["/registry/leases/"];

    private static Task<TestServer> Start(string dir, TimeSpan flush, IReadOnlyList<string>? prefixes = null) =>
        TestServer.StartAsync(SqlDialects.Sqlite(Path.Combine(dir, "state.db")), dir, o => o with
        {
            Log = o.Log with { VolatilePrefixes = prefixes ?? Leases, VolatileFlushInterval = flush },
        });

    private static long Rows(string dir, string sql)
    {
        using var c = new SqliteConnection($"Data Source={Path.Combine(dir, "state.db")};Mode=ReadOnly;Pooling=False");
        c.Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        return Convert.ToInt64(cmd.ExecuteScalar());
    }

    private static async Task<long> PutKey(TestServer s, string key, string value) =>
        (await s.Kv.PutAsync(new PutRequest { Key = B(key), Value = B(value) })).Header.Revision;

    [Fact]
    public async Task Put_VolatileKey_ServedFromMemoryAndOnDiskOnlyAfterCleanStop()
    {
        var dir = TempDir("economy");
        long durableRev, volatileRev;
        await using (var s = await Start(dir, TimeSpan.FromHours(1)))
        {
            durableRev = await PutKey(s, "/registry/pods/a", "pod");
            volatileRev = await PutKey(s, "/registry/leases/node1", "lease1");
            volatileRev = await PutKey(s, "/registry/leases/node1", "lease2");

            // Acknowledged and visible to every read, but not in the file: no commit was needed.
            var all = await s.Kv.RangeAsync(new RangeRequest { Key = B("/registry/"), RangeEnd = PrefixEnd("/registry/") });
            Assert.Equal(["/registry/leases/node1", "/registry/pods/a"], all.Kvs.Select(k => S(k.Key)));
            Assert.Equal(2, all.Count);
            Assert.Equal(volatileRev, all.Header.Revision);
            var old = await s.Kv.RangeAsync(new RangeRequest { Key = B("/registry/leases/node1"), Revision = volatileRev - 1 });
            Assert.Equal("lease1", S(Assert.Single(old.Kvs).Value));
            Assert.Equal(0, Rows(dir, "SELECT COUNT(*) FROM coracle_volatile"));
            Assert.Equal(0, Rows(dir, "SELECT COUNT(*) FROM coracle_log WHERE name >= CAST('/registry/leases/' AS BLOB) AND name < CAST('/registry/leases0' AS BLOB)"));
            Assert.Equal(1, Rows(dir, "SELECT COUNT(*) FROM coracle_log"));
            Assert.True(s.Server.Log!.Stats.VolatileBatches >= 2);
        }

        // A clean stop flushed the newest version (all a restart needs) and brought the reservation back: no revision gap.
        Assert.Equal(1, Rows(dir, "SELECT COUNT(*) FROM coracle_volatile"));
        Assert.Equal(volatileRev, Rows(dir, "SELECT value FROM coracle_meta WHERE name = 'reserved'"));
        await using (var s = await Start(dir, TimeSpan.FromHours(1)))
        {
            var lease = await s.Kv.RangeAsync(new RangeRequest { Key = B("/registry/leases/node1") });
            var kv = Assert.Single(lease.Kvs);
            Assert.Equal("lease2", S(kv.Value));
            Assert.Equal(volatileRev, kv.ModRevision);
            Assert.Equal(2, kv.Version);
            Assert.Equal(durableRev, Assert.Single((await s.Kv.RangeAsync(new RangeRequest { Key = B("/registry/pods/a") })).Kvs).ModRevision);
            Assert.Equal(volatileRev + 1, await PutKey(s, "/registry/leases/node2", "x"));
        }
    }

    [Fact]
    public async Task Flush_AfterInterval_WritesVolatileRows()
    {
        var dir = TempDir("economy-flush");
        await using var s = await Start(dir, TimeSpan.FromMilliseconds(200));
        await PutKey(s, "/registry/leases/a", "1");
        await PutKey(s, "/registry/leases/b", "2");

        // A gate, not a timing assertion: the flush comes at most 200 ms later on an idle machine.
        for (var i = 0; i < 300 && Rows(dir, "SELECT COUNT(*) FROM coracle_volatile") < 2; i++)
        {
            await Task.Delay(100);
        }

        Assert.Equal(2, Rows(dir, "SELECT COUNT(*) FROM coracle_volatile"));
        Assert.True(s.Server.Log!.Stats.VolatileFlushes >= 1);
        Assert.Equal(0, s.Server.Log.VolatileRows.Unflushed);
    }

    [Fact]
    public async Task Txn_MixingVolatileAndDurableKeys_IsDurableAtOnce()
    {
        var dir = TempDir("economy-txn");
        await using var s = await Start(dir, TimeSpan.FromHours(1));
        await PutKey(s, "/registry/leases/only-memory", "x");
        var txn = await s.Kv.TxnAsync(new TxnRequest
        {
            Success = { Put("/registry/leases/with-pod", "lease"), Put("/registry/pods/p", "pod") },
        });
        Assert.True(txn.Succeeded);
        Assert.Equal(1, Rows(dir, "SELECT COUNT(*) FROM coracle_volatile WHERE name = CAST('/registry/leases/with-pod' AS BLOB)"));
        Assert.Equal(0, Rows(dir, "SELECT COUNT(*) FROM coracle_volatile WHERE name = CAST('/registry/leases/only-memory' AS BLOB)"));
        Assert.Equal(txn.Header.Revision, Rows(dir, "SELECT value FROM coracle_meta WHERE name = 'rev'"));
    }

    [Fact]
    public async Task Reopen_EconomyOffThenOn_KeysMoveBetweenTablesAndStayReadable()
    {
        var dir = TempDir("economy-toggle");
        long rev;
        await using (var s = await Start(dir, TimeSpan.FromHours(1)))
        {
            await PutKey(s, "/registry/leases/a", "1");
            rev = await PutKey(s, "/registry/leases/a", "2");
            await PutKey(s, "/registry/pods/p", "pod");
        }

        await using (var s = await TestServer.StartAsync(SqlDialects.Sqlite(Path.Combine(dir, "state.db")), dir))
        {
            var kv = Assert.Single((await s.Kv.RangeAsync(new RangeRequest { Key = B("/registry/leases/a") })).Kvs);
            Assert.Equal(rev, kv.ModRevision);
            Assert.Equal(2, kv.Version);

            // The flush kept only the newest version: the older revision is compacted, as etcd answers for history it dropped.
            var e = await Assert.ThrowsAsync<RpcException>(async () => await s.Kv.RangeAsync(new RangeRequest { Key = B("/registry/leases/a"), Revision = rev - 1 }));
            Assert.Equal("etcdserver: mvcc: required revision has been compacted", e.Status.Detail);
            Assert.Equal(0, Rows(dir, "SELECT COUNT(*) FROM coracle_volatile"));
            Assert.Equal(2, Rows(dir, "SELECT COUNT(*) FROM coracle_log"));
            await PutKey(s, "/registry/leases/b", "durable now");
        }

        await using (var s = await Start(dir, TimeSpan.FromHours(1)))
        {
            var r = await s.Kv.RangeAsync(new RangeRequest { Key = B("/registry/"), RangeEnd = PrefixEnd("/registry/") });
            Assert.Equal(["/registry/leases/a", "/registry/leases/b", "/registry/pods/p"], r.Kvs.Select(k => S(k.Key)));
            Assert.Equal(2, Rows(dir, "SELECT COUNT(*) FROM coracle_volatile"));
            Assert.Equal(1, Rows(dir, "SELECT COUNT(*) FROM coracle_log"));
            Assert.Equal(0, Rows(dir, "SELECT COUNT(*) FROM coracle_current WHERE name >= CAST('/registry/leases/' AS BLOB) AND name < CAST('/registry/leases0' AS BLOB)"));
        }
    }

    [Fact]
    public async Task Watch_FromOldRevision_ReplaysVolatileAndDurableChangesInOrder()
    {
        var dir = TempDir("economy-watch");
        await using var s = await Start(dir, TimeSpan.FromHours(1));
        var first = await PutKey(s, "/registry/pods/a", "1");
        await PutKey(s, "/registry/leases/l", "1");
        await PutKey(s, "/registry/pods/a", "2");
        await s.Kv.TxnAsync(new TxnRequest { Success = { Put("/registry/leases/l", "2"), Put("/registry/pods/b", "1") } });
        await PutKey(s, "/registry/leases/l", "3");
        await s.Kv.DeleteRangeAsync(new DeleteRangeRequest { Key = B("/registry/leases/l") });
        var last = await PutKey(s, "/registry/pods/a", "3");

        await using var watch = new WatchSession(s.Watch);
        await watch.CreateAsync(new WatchCreateRequest
        {
            Key = B("/registry/"), RangeEnd = PrefixEnd("/registry/"), StartRevision = first, PrevKv = true,
        });
        var events = await watch.EventsAsync(8);
        Assert.Equal(
            ["PUT /registry/pods/a 1", "PUT /registry/leases/l 1", "PUT /registry/pods/a 2", "PUT /registry/leases/l 2", "PUT /registry/pods/b 1", "PUT /registry/leases/l 3", "DELETE /registry/leases/l ", "PUT /registry/pods/a 3"],
            events.Select(e => $"{e.Type.ToString().ToUpperInvariant()} {S(e.Kv.Key)} {S(e.Kv.Value)}"));
        Assert.Equal(events.Select(e => e.Kv.ModRevision).Order(), events.Select(e => e.Kv.ModRevision));
        Assert.Equal("3", S(events[6].PrevKv.Value));
        Assert.Equal(last, events[^1].Kv.ModRevision);

        // Compaction removes history of both kinds; the newest values stay.
        await s.Kv.CompactAsync(new CompactionRequest { Revision = last, Physical = true });
        var e = await Assert.ThrowsAsync<RpcException>(async () => await s.Kv.RangeAsync(new RangeRequest { Key = B("/registry/leases/l"), Revision = first }));
        Assert.Equal("etcdserver: mvcc: required revision has been compacted", e.Status.Detail);
        var now = await s.Kv.RangeAsync(new RangeRequest { Key = B("/registry/"), RangeEnd = PrefixEnd("/registry/") });
        Assert.Equal(["/registry/pods/a", "/registry/pods/b"], now.Kvs.Select(k => S(k.Key)));
        Assert.Equal(0, s.Server.Log!.VolatileRows.Rows);
    }

    [Fact]
    public async Task Flush_ManyRevisionsOfFewKeys_WritesNewestRowPerKeyAndRestartKeepsThem()
    {
        var dir = TempDir("economy-thin");
        long last, deletedAt, created;
        await using (var s = await Start(dir, TimeSpan.FromMilliseconds(200)))
        {
            created = await PutKey(s, "/registry/leases/a", "a0");
            for (var i = 1; i < 20; i++)
            {
                await PutKey(s, "/registry/leases/a", $"a{i}");
            }

            await PutKey(s, "/registry/leases/gone", "x");
            deletedAt = (await s.Kv.DeleteRangeAsync(new DeleteRangeRequest { Key = B("/registry/leases/gone") })).Header.Revision;
            last = await PutKey(s, "/registry/leases/b", "b0");

            // A gate, not a timing assertion: the periodic flush (not the clean stop) writes them.
            for (var i = 0; i < 300 && Rows(dir, "SELECT value FROM coracle_meta WHERE name = 'volatile_floor'") < last; i++)
            {
                await Task.Delay(100);
            }

            // One row per live key: no intermediate revision of a, nothing of the deleted key.
            Assert.Equal(last, Rows(dir, "SELECT value FROM coracle_meta WHERE name = 'volatile_floor'"));
            Assert.Equal(2, Rows(dir, "SELECT COUNT(*) FROM coracle_volatile"));
            Assert.Equal(0, Rows(dir, "SELECT COUNT(*) FROM coracle_volatile WHERE name = CAST('/registry/leases/gone' AS BLOB)"));

            // More revisions of a: the next flush replaces its row instead of adding one.
            last = await PutKey(s, "/registry/leases/a", "a20");
            for (var i = 0; i < 300 && Rows(dir, "SELECT value FROM coracle_meta WHERE name = 'volatile_floor'") < last; i++)
            {
                await Task.Delay(100);
            }

            Assert.Equal(2, Rows(dir, "SELECT COUNT(*) FROM coracle_volatile"));

            // While it runs, the history is still whole (served from memory).
            Assert.Equal("a0", S(Assert.Single((await s.Kv.RangeAsync(new RangeRequest { Key = B("/registry/leases/a"), Revision = created })).Kvs).Value));
        }

        await using (var s = await Start(dir, TimeSpan.FromHours(1)))
        {
            var r = await s.Kv.RangeAsync(new RangeRequest { Key = B("/registry/leases/"), RangeEnd = PrefixEnd("/registry/leases/") });
            Assert.Equal(["/registry/leases/a a20", "/registry/leases/b b0"], r.Kvs.Select(k => $"{S(k.Key)} {S(k.Value)}"));
            var a = r.Kvs[0];
            Assert.Equal(last, a.ModRevision);
            Assert.Equal(created, a.CreateRevision);
            Assert.Equal(21, a.Version);
            Assert.Equal(last, r.Header.Revision);
            Assert.True(deletedAt < last);
            Assert.Equal(last + 1, await PutKey(s, "/registry/leases/c", "c0"));
        }
    }

    [Fact]
    public async Task Watch_FromBeforeTheFlushAfterRestart_CompactedLikeEtcdAndFromTheFloorReplays()
    {
        var dir = TempDir("economy-floor");
        long first, floor;
        await using (var s = await Start(dir, TimeSpan.FromHours(1)))
        {
            first = await PutKey(s, "/registry/pods/a", "1");
            await PutKey(s, "/registry/leases/l", "1");
            await PutKey(s, "/registry/leases/l", "2");
            floor = await PutKey(s, "/registry/pods/a", "2");
        }

        await using (var s = await Start(dir, TimeSpan.FromHours(1)))
        {
            // History below the last flush is compacted, for durable and volatile keys alike (etcd compacts globally).
            await using (var old = new WatchSession(s.Watch))
            {
                var created = await old.CreateAsync(new WatchCreateRequest { Key = B("/registry/"), RangeEnd = PrefixEnd("/registry/"), StartRevision = first });
                var canceled = await old.NextAsync();
                Assert.True(canceled.Canceled);
                Assert.Equal(floor, canceled.CompactRevision);
                Assert.Equal(created.WatchId, canceled.WatchId);
            }

            var e = await Assert.ThrowsAsync<RpcException>(async () => await s.Kv.RangeAsync(new RangeRequest { Key = B("/registry/pods/a"), Revision = first }));
            Assert.Equal("etcdserver: mvcc: required revision has been compacted", e.Status.Detail);

            // At the floor every key reads as it was; a watch from just above it sees every later change in order.
            var at = await s.Kv.RangeAsync(new RangeRequest { Key = B("/registry/"), RangeEnd = PrefixEnd("/registry/"), Revision = floor });
            Assert.Equal(["/registry/leases/l 2", "/registry/pods/a 2"], at.Kvs.Select(k => $"{S(k.Key)} {S(k.Value)}"));
            await using var watch = new WatchSession(s.Watch);
            await watch.CreateAsync(new WatchCreateRequest { Key = B("/registry/"), RangeEnd = PrefixEnd("/registry/"), StartRevision = floor + 1, PrevKv = true });
            await PutKey(s, "/registry/leases/l", "3");
            await PutKey(s, "/registry/pods/a", "3");
            var events = await watch.EventsAsync(2);
            Assert.Equal(["/registry/leases/l 3 prev 2", "/registry/pods/a 3 prev 2"], events.Select(x => $"{S(x.Kv.Key)} {S(x.Kv.Value)} prev {S(x.PrevKv.Value)}"));
            Assert.Equal([floor + 1, floor + 2], events.Select(x => x.Kv.ModRevision));
        }
    }
}
