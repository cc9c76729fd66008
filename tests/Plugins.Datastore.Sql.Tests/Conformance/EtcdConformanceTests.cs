using Coracle.Plugins.Datastore.Sql.Protos;
using Coracle.Plugins.Datastore.Sql.Tests.Support;
using Grpc.Core;
using static Coracle.Plugins.Datastore.Sql.Tests.Support.E;
using CmpResult = Coracle.Plugins.Datastore.Sql.Protos.Compare.Types.CompareResult;
using CmpTarget = Coracle.Plugins.Datastore.Sql.Protos.Compare.Types.CompareTarget;

namespace Coracle.Plugins.Datastore.Sql.Tests.Conformance;

/// <summary>
/// etcd v3 semantics every dialect must have. Each test gets a fresh store and server; derived classes pick
/// the dialect.
/// </summary>
public abstract class EtcdConformanceTests(IStoreFactory stores) : IAsyncLifetime
{
    private TestServer? _server;

    protected TestServer Server => _server!;

    protected KV.KVClient Kv => Server.Kv;

    public async Task InitializeAsync()
    {
        var dir = TempDir(GetType().Name);
        _server = await TestServer.StartAsync(await stores.NewStoreAsync(dir), dir, o => Configure(o with { ProgressNotifyInterval = TimeSpan.FromSeconds(1) }));
    }

    /// <summary>Lets a derived class change the server's options (write economy, for example).</summary>
    protected virtual EtcdServerOptions Configure(EtcdServerOptions options) => options;

    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }

    private async Task<long> PutAsync(string key, string value, long lease = 0) =>
        (await Kv.PutAsync(new PutRequest { Key = B(key), Value = B(value), Lease = lease })).Header.Revision;

    private static async Task<RpcException> Fails(Func<Task> call)
    {
        return await Assert.ThrowsAsync<RpcException>(call);
    }

    [Fact]
    public async Task Range_EmptyStore_ReturnsRevisionOne()
    {
        var r = await Kv.RangeAsync(new RangeRequest { Key = B("a") });
        Assert.Equal(1, r.Header.Revision);
        Assert.Empty(r.Kvs);
        Assert.NotEqual(0ul, r.Header.MemberId);
    }

    [Fact]
    public async Task Put_ThenRange_ReturnsValueWithRevisionsAndVersion()
    {
        var rev1 = await PutAsync("k", "v1");
        var rev2 = await PutAsync("k", "v2");
        var r = await Kv.RangeAsync(new RangeRequest { Key = B("k") });
        var kv = Assert.Single(r.Kvs);
        Assert.Equal(2, rev1);
        Assert.Equal(3, rev2);
        Assert.Equal("v2", S(kv.Value));
        Assert.Equal(rev1, kv.CreateRevision);
        Assert.Equal(rev2, kv.ModRevision);
        Assert.Equal(2, kv.Version);
        Assert.Equal(rev2, r.Header.Revision);
        Assert.Equal(1, r.Count);
    }

    [Fact]
    public async Task Range_Prefix_ReturnsKeysInOrderAndNothingOutside()
    {
        foreach (var k in new[] { "p/b", "p/a", "p/c", "q", "p" })
        {
            await PutAsync(k, k);
        }

        var r = await Kv.RangeAsync(new RangeRequest { Key = B("p/"), RangeEnd = PrefixEnd("p/") });
        Assert.Equal(["p/a", "p/b", "p/c"], r.Kvs.Select(k => S(k.Key)));
        Assert.Equal(3, r.Count);
    }

    [Fact]
    public async Task Range_NulKeyAndNulEnd_ReturnsAllKeys()
    {
        await PutAsync("a", "1");
        await PutAsync("z", "2");
        await PutAsync("\u0001", "3");
        var r = await Kv.RangeAsync(new RangeRequest { Key = Google.Protobuf.ByteString.CopyFrom(0), RangeEnd = Google.Protobuf.ByteString.CopyFrom(0) });
        Assert.Equal(3, r.Kvs.Count);
        var fromM = await Kv.RangeAsync(new RangeRequest { Key = B("m"), RangeEnd = Google.Protobuf.ByteString.CopyFrom(0) });
        Assert.Equal(["z"], fromM.Kvs.Select(k => S(k.Key)));
    }

    [Fact]
    public async Task Put_KeyAndValueWithEveryByte_RoundTripExactly()
    {
        var bytes = Enumerable.Range(0, 256).Select(i => (byte)i).ToArray();
        var key = Google.Protobuf.ByteString.CopyFrom([(byte)'b', 0, (byte)'\\', (byte)'\'', (byte)'"', 0xff, .. bytes[1..40]]);
        var value = Google.Protobuf.ByteString.CopyFrom([.. bytes, .. bytes]);
        await Kv.PutAsync(new PutRequest { Key = key, Value = value });
        var r = await Kv.RangeAsync(new RangeRequest { Key = B("b"), RangeEnd = PrefixEnd("b") });
        var kv = Assert.Single(r.Kvs);
        Assert.Equal(key, kv.Key);
        Assert.Equal(value, kv.Value);
        Assert.Single((await Kv.RangeAsync(new RangeRequest { Key = key })).Kvs);
    }

    [Fact]
    public async Task Range_LimitBelowCount_SetsMoreAndFullCount()
    {
        for (var i = 0; i < 5; i++)
        {
            await PutAsync($"l/{i}", "v");
        }

        var r = await Kv.RangeAsync(new RangeRequest { Key = B("l/"), RangeEnd = PrefixEnd("l/"), Limit = 2 });
        Assert.Equal(["l/0", "l/1"], r.Kvs.Select(k => S(k.Key)));
        Assert.True(r.More);
        Assert.Equal(5, r.Count);
        var exact = await Kv.RangeAsync(new RangeRequest { Key = B("l/"), RangeEnd = PrefixEnd("l/"), Limit = 5 });
        Assert.False(exact.More);
    }

    [Fact]
    public async Task Range_NegativeLimit_ReturnsEverything()
    {
        for (var i = 0; i < 3; i++)
        {
            await PutAsync($"n/{i}", "v");
        }

        var r = await Kv.RangeAsync(new RangeRequest { Key = B("n/"), RangeEnd = PrefixEnd("n/"), Limit = -5 });
        Assert.Equal(3, r.Kvs.Count);
        Assert.False(r.More);
    }

    [Fact]
    public async Task Range_RangeEndBeforeKey_ReturnsNothing()
    {
        await PutAsync("b", "1");
        var r = await Kv.RangeAsync(new RangeRequest { Key = B("c"), RangeEnd = B("a") });
        Assert.Empty(r.Kvs);
        Assert.Equal(0, r.Count);
    }

    [Fact]
    public async Task Range_EmptyKey_FailsKeyNotProvided()
    {
        var e = await Fails(() => Kv.RangeAsync(new RangeRequest()).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Equal("etcdserver: key is not provided", e.Status.Detail);
    }

    [Fact]
    public async Task Range_PastRevision_ReturnsValueAsOfThen()
    {
        var r1 = await PutAsync("h", "old");
        await PutAsync("h", "new");
        await Kv.DeleteRangeAsync(new DeleteRangeRequest { Key = B("h") });
        var old = await Kv.RangeAsync(new RangeRequest { Key = B("h"), Revision = r1 });
        Assert.Equal("old", S(Assert.Single(old.Kvs).Value));
        var now = await Kv.RangeAsync(new RangeRequest { Key = B("h") });
        Assert.Empty(now.Kvs);
    }

    [Fact]
    public async Task Range_FutureRevision_FailsOutOfRange()
    {
        var rev = await PutAsync("f", "1");
        var e = await Fails(() => Kv.RangeAsync(new RangeRequest { Key = B("f"), Revision = rev + 10 }).ResponseAsync);
        Assert.Equal(StatusCode.OutOfRange, e.StatusCode);
        Assert.Equal("etcdserver: mvcc: required revision is a future revision", e.Status.Detail);
    }

    [Fact]
    public async Task Range_CompactedRevision_FailsOutOfRange()
    {
        var r1 = await PutAsync("c", "1");
        var r2 = await PutAsync("c", "2");
        await Kv.CompactAsync(new CompactionRequest { Revision = r2, Physical = true });
        var e = await Fails(() => Kv.RangeAsync(new RangeRequest { Key = B("c"), Revision = r1 }).ResponseAsync);
        Assert.Equal(StatusCode.OutOfRange, e.StatusCode);
        Assert.Equal("etcdserver: mvcc: required revision has been compacted", e.Status.Detail);
        var atCompact = await Kv.RangeAsync(new RangeRequest { Key = B("c"), Revision = r2 });
        Assert.Equal("2", S(Assert.Single(atCompact.Kvs).Value));
        var again = await Fails(() => Kv.CompactAsync(new CompactionRequest { Revision = r2 }).ResponseAsync);
        Assert.Equal("etcdserver: mvcc: required revision has been compacted", again.Status.Detail);
    }

    [Fact]
    public async Task Range_SortByModRevisionDescending_ReturnsNewestFirst()
    {
        await PutAsync("s/a", "1");
        await PutAsync("s/c", "2");
        await PutAsync("s/b", "3");
        var r = await Kv.RangeAsync(new RangeRequest
        {
            Key = B("s/"),
            RangeEnd = PrefixEnd("s/"),
            SortOrder = RangeRequest.Types.SortOrder.Descend,
            SortTarget = RangeRequest.Types.SortTarget.Mod,
            Limit = 2,
        });
        Assert.Equal(["s/b", "s/c"], r.Kvs.Select(k => S(k.Key)));
        Assert.True(r.More);
        var byValue = await Kv.RangeAsync(new RangeRequest { Key = B("s/"), RangeEnd = PrefixEnd("s/"), SortTarget = RangeRequest.Types.SortTarget.Value });
        Assert.Equal(["1", "2", "3"], byValue.Kvs.Select(k => S(k.Value)));
        var keyDesc = await Kv.RangeAsync(new RangeRequest { Key = B("s/"), RangeEnd = PrefixEnd("s/"), SortOrder = RangeRequest.Types.SortOrder.Descend });
        Assert.Equal(["s/c", "s/b", "s/a"], keyDesc.Kvs.Select(k => S(k.Key)));
    }

    [Fact]
    public async Task Range_KeysOnlyAndCountOnly_OmitValuesAndKvs()
    {
        await PutAsync("o/1", "value");
        await PutAsync("o/2", "value");
        var keys = await Kv.RangeAsync(new RangeRequest { Key = B("o/"), RangeEnd = PrefixEnd("o/"), KeysOnly = true });
        Assert.All(keys.Kvs, k => Assert.True(k.Value.IsEmpty));
        Assert.Equal(2, keys.Kvs.Count);
        var count = await Kv.RangeAsync(new RangeRequest { Key = B("o/"), RangeEnd = PrefixEnd("o/"), CountOnly = true });
        Assert.Empty(count.Kvs);
        Assert.Equal(2, count.Count);
    }

    [Fact]
    public async Task Range_MinMaxRevisionFilters_DropOtherKeys()
    {
        var r1 = await PutAsync("m/1", "a");
        var r2 = await PutAsync("m/2", "b");
        var r3 = await PutAsync("m/3", "c");
        var r = await Kv.RangeAsync(new RangeRequest { Key = B("m/"), RangeEnd = PrefixEnd("m/"), MinModRevision = r2, MaxCreateRevision = r2 });
        Assert.Equal(["m/2"], r.Kvs.Select(k => S(k.Key)));
        Assert.Equal(3, r.Count);
        var created = await Kv.RangeAsync(new RangeRequest { Key = B("m/"), RangeEnd = PrefixEnd("m/"), MinCreateRevision = r3, MaxModRevision = r3 });
        Assert.Equal(["m/3"], created.Kvs.Select(k => S(k.Key)));
        Assert.True(r1 < r2);
    }

    [Fact]
    public async Task Put_PrevKvIgnoreValueIgnoreLease_BehaveLikeEtcd()
    {
        var lease = await Server.Lease.LeaseGrantAsync(new LeaseGrantRequest { TTL = 60 });
        await PutAsync("i", "v1", lease.ID);
        var put = await Kv.PutAsync(new PutRequest { Key = B("i"), IgnoreValue = true, IgnoreLease = true, PrevKv = true });
        Assert.Equal("v1", S(put.PrevKv.Value));
        var r = await Kv.RangeAsync(new RangeRequest { Key = B("i") });
        Assert.Equal("v1", S(r.Kvs[0].Value));
        Assert.Equal(lease.ID, r.Kvs[0].Lease);
        Assert.Equal(2, r.Kvs[0].Version);
        var noPrev = await Kv.PutAsync(new PutRequest { Key = B("fresh"), Value = B("x"), PrevKv = true });
        Assert.Null(noPrev.PrevKv);
    }

    [Fact]
    public async Task Put_BadInput_FailsWithEtcdErrors()
    {
        Assert.Equal("etcdserver: key is not provided", (await Fails(() => Kv.PutAsync(new PutRequest { Value = B("v") }).ResponseAsync)).Status.Detail);
        Assert.Equal("etcdserver: key not found", (await Fails(() => Kv.PutAsync(new PutRequest { Key = B("missing"), IgnoreValue = true }).ResponseAsync)).Status.Detail);
        Assert.Equal("etcdserver: value is provided", (await Fails(() => Kv.PutAsync(new PutRequest { Key = B("k"), Value = B("v"), IgnoreValue = true }).ResponseAsync)).Status.Detail);
        Assert.Equal("etcdserver: lease is provided", (await Fails(() => Kv.PutAsync(new PutRequest { Key = B("k"), Lease = 5, IgnoreLease = true }).ResponseAsync)).Status.Detail);
        var lease = await Fails(() => Kv.PutAsync(new PutRequest { Key = B("k"), Value = B("v"), Lease = 12345 }).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, lease.StatusCode);
        Assert.Equal("etcdserver: requested lease not found", lease.Status.Detail);
        var r = await Kv.RangeAsync(new RangeRequest { Key = B("k") });
        Assert.Empty(r.Kvs);
        Assert.Equal(1, r.Header.Revision);
    }

    [Fact]
    public async Task Put_RequestTooLarge_FailsLikeEtcd()
    {
        var e = await Fails(() => Kv.PutAsync(new PutRequest { Key = B("big"), Value = Google.Protobuf.ByteString.CopyFrom(new byte[1600 * 1024]) }).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Equal("etcdserver: request is too large", e.Status.Detail);
        var huge = await Fails(() => Kv.PutAsync(new PutRequest { Key = B("big"), Value = Google.Protobuf.ByteString.CopyFrom(new byte[3 * 1024 * 1024]) }).ResponseAsync);
        Assert.Equal(StatusCode.ResourceExhausted, huge.StatusCode);
        var ok = await Kv.PutAsync(new PutRequest { Key = B("big"), Value = Google.Protobuf.ByteString.CopyFrom(new byte[1024 * 1024]) });
        Assert.Equal(2, ok.Header.Revision);
    }

    [Fact]
    public async Task DeleteRange_Prefix_DeletesInOneRevisionWithPrevKvs()
    {
        await PutAsync("d/1", "a");
        await PutAsync("d/2", "b");
        await PutAsync("e", "c");
        var del = await Kv.DeleteRangeAsync(new DeleteRangeRequest { Key = B("d/"), RangeEnd = PrefixEnd("d/"), PrevKv = true });
        Assert.Equal(2, del.Deleted);
        Assert.Equal(["a", "b"], del.PrevKvs.Select(k => S(k.Value)));
        Assert.Equal(5, del.Header.Revision);
        var none = await Kv.DeleteRangeAsync(new DeleteRangeRequest { Key = B("d/"), RangeEnd = PrefixEnd("d/") });
        Assert.Equal(0, none.Deleted);
        Assert.Equal(5, none.Header.Revision);
        var again = await Kv.PutAsync(new PutRequest { Key = B("d/1"), Value = B("z") });
        var kv = (await Kv.RangeAsync(new RangeRequest { Key = B("d/1") })).Kvs[0];
        Assert.Equal(1, kv.Version);
        Assert.Equal(again.Header.Revision, kv.CreateRevision);
    }

    [Fact]
    public async Task Txn_CreateIfAbsent_SucceedsOnceThenReturnsCurrent()
    {
        TxnRequest Create(string value) => new()
        {
            Compare = { CreateRevision("/registry/pods/default/p", 0) },
            Success = { Put("/registry/pods/default/p", value) },
            Failure = { Get("/registry/pods/default/p") },
        };
        var first = await Kv.TxnAsync(Create("one"));
        Assert.True(first.Succeeded);
        var second = await Kv.TxnAsync(Create("two"));
        Assert.False(second.Succeeded);
        Assert.Equal("one", S(second.Responses[0].ResponseRange.Kvs[0].Value));
        Assert.Equal(first.Header.Revision, second.Header.Revision);
    }

    [Fact]
    public async Task Txn_GuaranteedUpdateOnModRevision_OnlyFirstWriterWins()
    {
        var rev = await PutAsync("/registry/cm/x", "v0");
        TxnRequest Update(string value) => new()
        {
            Compare = { ModRevision("/registry/cm/x", rev) },
            Success = { Put("/registry/cm/x", value) },
            Failure = { Get("/registry/cm/x") },
        };
        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => Kv.TxnAsync(Update("v" + (i + 1))).ResponseAsync));
        Assert.Single(results, r => r.Succeeded);
        Assert.All(results.Where(r => !r.Succeeded), r => Assert.Equal(rev + 1, r.Responses[0].ResponseRange.Kvs[0].ModRevision));
    }

    [Fact]
    public async Task Txn_DeleteWithPrecondition_DeletesOnlyWhenRevisionMatches()
    {
        var rev = await PutAsync("/registry/secrets/s", "v");
        var stale = await Kv.TxnAsync(new TxnRequest { Compare = { ModRevision("/registry/secrets/s", rev - 1) }, Success = { Del("/registry/secrets/s") }, Failure = { Get("/registry/secrets/s") } });
        Assert.False(stale.Succeeded);
        var ok = await Kv.TxnAsync(new TxnRequest { Compare = { ModRevision("/registry/secrets/s", rev) }, Success = { new RequestOp { RequestDeleteRange = new DeleteRangeRequest { Key = B("/registry/secrets/s"), PrevKv = true } } } });
        Assert.True(ok.Succeeded);
        Assert.Equal(1, ok.Responses[0].ResponseDeleteRange.Deleted);
        Assert.Equal("v", S(ok.Responses[0].ResponseDeleteRange.PrevKvs[0].Value));
    }

    [Fact]
    public async Task Txn_EveryTargetAndOperator_EvaluatesLikeEtcd()
    {
        var lease = await Server.Lease.LeaseGrantAsync(new LeaseGrantRequest { TTL = 60 });
        var rev = await PutAsync("t", "b", lease.ID);
        async Task<bool> Check(Compare c) => (await Kv.TxnAsync(new TxnRequest { Compare = { c } })).Succeeded;
        Assert.True(await Check(new Compare { Key = B("t"), Target = CmpTarget.Value, Result = CmpResult.Equal, Value = B("b") }));
        Assert.True(await Check(new Compare { Key = B("t"), Target = CmpTarget.Value, Result = CmpResult.Greater, Value = B("a") }));
        Assert.True(await Check(new Compare { Key = B("t"), Target = CmpTarget.Value, Result = CmpResult.Less, Value = B("c") }));
        Assert.True(await Check(new Compare { Key = B("t"), Target = CmpTarget.Value, Result = CmpResult.NotEqual, Value = B("x") }));
        Assert.True(await Check(new Compare { Key = B("t"), Target = CmpTarget.Version, Result = CmpResult.Equal, Version = 1 }));
        Assert.True(await Check(new Compare { Key = B("t"), Target = CmpTarget.Create, Result = CmpResult.Equal, CreateRevision = rev }));
        Assert.True(await Check(new Compare { Key = B("t"), Target = CmpTarget.Mod, Result = CmpResult.Less, ModRevision = rev + 1 }));
        Assert.True(await Check(new Compare { Key = B("t"), Target = CmpTarget.Lease, Result = CmpResult.Equal, Lease = lease.ID }));
        Assert.False(await Check(new Compare { Key = B("missing"), Target = CmpTarget.Value, Result = CmpResult.NotEqual, Value = B("x") }));
        Assert.True(await Check(new Compare { Key = B("missing"), Target = CmpTarget.Version, Result = CmpResult.Equal, Version = 0 }));
        await PutAsync("t2", "b");
        Assert.True(await Check(new Compare { Key = B("t"), RangeEnd = B("t3"), Target = CmpTarget.Value, Result = CmpResult.Equal, Value = B("b") }));
        await PutAsync("t2", "c");
        Assert.False(await Check(new Compare { Key = B("t"), RangeEnd = B("t3"), Target = CmpTarget.Value, Result = CmpResult.Equal, Value = B("b") }));
    }

    [Fact]
    public async Task Txn_MultipleWritesAndNestedTxn_ShareOneRevision()
    {
        var txn = new TxnRequest
        {
            Success =
            {
                Put("x/1", "a"),
                Put("x/2", "b"),
                new RequestOp { RequestTxn = new TxnRequest { Compare = { CreateRevision("x/9", 0) }, Success = { Put("x/3", "c") }, Failure = { Put("x/4", "d") } } },
                new RequestOp { RequestRange = new RangeRequest { Key = B("x/"), RangeEnd = PrefixEnd("x/") } },
            },
        };
        var r = await Kv.TxnAsync(txn);
        Assert.True(r.Succeeded);
        Assert.Equal(2, r.Header.Revision);
        Assert.True(r.Responses[2].ResponseTxn.Succeeded);
        Assert.Equal(3, r.Responses[3].ResponseRange.Kvs.Count);
        var all = await Kv.RangeAsync(new RangeRequest { Key = B("x/"), RangeEnd = PrefixEnd("x/") });
        Assert.All(all.Kvs, k => Assert.Equal(2, k.ModRevision));
    }

    [Fact]
    public async Task Txn_BadShapes_FailWithEtcdErrors()
    {
        var dup = await Fails(() => Kv.TxnAsync(new TxnRequest { Success = { Put("a", "1"), Put("a", "2") } }).ResponseAsync);
        Assert.Equal("etcdserver: duplicate key given in txn request", dup.Status.Detail);
        var delDup = await Fails(() => Kv.TxnAsync(new TxnRequest { Success = { Put("a/1", "1"), new RequestOp { RequestDeleteRange = new DeleteRangeRequest { Key = B("a/"), RangeEnd = PrefixEnd("a/") } } } }).ResponseAsync);
        Assert.Equal("etcdserver: duplicate key given in txn request", delDup.Status.Detail);
        var nested = new TxnRequest { Success = { Put("n", "1"), new RequestOp { RequestTxn = new TxnRequest { Success = { Put("n", "2") } } } } };
        Assert.Equal("etcdserver: duplicate key given in txn request", (await Fails(() => Kv.TxnAsync(nested).ResponseAsync)).Status.Detail);
        var thenElse = new TxnRequest { Success = { new RequestOp { RequestTxn = new TxnRequest { Success = { Put("n", "1") }, Failure = { Put("n", "2") } } } } };
        Assert.True((await Kv.TxnAsync(thenElse)).Succeeded);
        var many = new TxnRequest();
        for (var i = 0; i < 129; i++)
        {
            many.Success.Add(Get("k" + i));
        }

        var tooMany = await Fails(() => Kv.TxnAsync(many).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, tooMany.StatusCode);
        Assert.Equal("etcdserver: too many operations in txn request", tooMany.Status.Detail);
        Assert.Equal("etcdserver: key is not provided", (await Fails(() => Kv.TxnAsync(new TxnRequest { Compare = { new Compare() } }).ResponseAsync)).Status.Detail);
    }

    [Fact]
    public async Task Txn_LaterOpRejected_ChangesNothing()
    {
        var before = await PutAsync("keep", "v");
        var e = await Fails(() => Kv.TxnAsync(new TxnRequest { Success = { Put("t/1", "a"), Put("t/2", "b", lease: 999) } }).ResponseAsync);
        Assert.Equal("etcdserver: requested lease not found", e.Status.Detail);
        var r = await Kv.RangeAsync(new RangeRequest { Key = B("t/"), RangeEnd = PrefixEnd("t/") });
        Assert.Empty(r.Kvs);
        Assert.Equal(before, r.Header.Revision);
    }

    [Fact]
    public async Task List_PaginatedAtFixedRevision_SeesOneConsistentSnapshot()
    {
        for (var i = 0; i < 10; i++)
        {
            await PutAsync($"/registry/pods/ns/p{i:D2}", "v" + i);
        }

        var first = await Kv.RangeAsync(new RangeRequest { Key = B("/registry/pods/"), RangeEnd = PrefixEnd("/registry/pods/"), Limit = 4 });
        var atRevision = first.Header.Revision;
        await PutAsync("/registry/pods/ns/p00", "changed");
        await Kv.DeleteRangeAsync(new DeleteRangeRequest { Key = B("/registry/pods/ns/p09") });
        var seen = first.Kvs.Select(k => S(k.Key)).ToList();
        var more = first.More;
        while (more)
        {
            var continueKey = seen[^1] + "\0";
            var page = await Kv.RangeAsync(new RangeRequest { Key = B(continueKey), RangeEnd = PrefixEnd("/registry/pods/"), Limit = 4, Revision = atRevision });
            seen.AddRange(page.Kvs.Select(k => S(k.Key)));
            more = page.More;
        }

        Assert.Equal(10, seen.Count);
        Assert.Equal(10, first.Count);
        var count = await Kv.RangeAsync(new RangeRequest { Key = B("/registry/pods/"), RangeEnd = PrefixEnd("/registry/pods/"), CountOnly = true });
        Assert.Equal(9, count.Count);
        var old = await Kv.RangeAsync(new RangeRequest { Key = B("/registry/pods/ns/p00"), Revision = atRevision });
        Assert.Equal("v0", S(old.Kvs[0].Value));
    }

    [Fact]
    public async Task Compact_ApiserverCompactRevKeyPattern_CompactsHistory()
    {
        for (var i = 0; i < 5; i++)
        {
            await PutAsync("/registry/x", "v" + i);
        }

        // kube-apiserver's compactor: bump compact_rev_key with a version-guarded txn, then Compact.
        var txn = await Kv.TxnAsync(new TxnRequest
        {
            Compare = { new Compare { Key = B("compact_rev_key"), Target = CmpTarget.Version, Result = CmpResult.Equal, Version = 0 } },
            Success = { Put("compact_rev_key", "6") },
            Failure = { Get("compact_rev_key") },
        });
        Assert.True(txn.Succeeded);
        var compactTo = txn.Header.Revision - 1;
        var resp = await Kv.CompactAsync(new CompactionRequest { Revision = compactTo, Physical = true });
        Assert.Equal(txn.Header.Revision, resp.Header.Revision);
        var status = await Server.Maintenance.HashKVAsync(new HashKVRequest());
        Assert.Equal(compactTo, status.CompactRevision);
        var e = await Fails(() => Kv.RangeAsync(new RangeRequest { Key = B("/registry/x"), Revision = compactTo - 1 }).ResponseAsync);
        Assert.Equal(StatusCode.OutOfRange, e.StatusCode);
        var current = await Kv.RangeAsync(new RangeRequest { Key = B("/registry/x") });
        Assert.Equal("v4", S(current.Kvs[0].Value));
        Assert.Equal(5, current.Kvs[0].Version);
        var future = await Fails(() => Kv.CompactAsync(new CompactionRequest { Revision = 1000 }).ResponseAsync);
        Assert.Equal("etcdserver: mvcc: required revision is a future revision", future.Status.Detail);
    }

    [Fact]
    public async Task Watch_FromPastRevision_ReplaysHistoryThenLiveWithPrevKv()
    {
        var r1 = await PutAsync("w/a", "1");
        await PutAsync("w/a", "2");
        await Kv.DeleteRangeAsync(new DeleteRangeRequest { Key = B("w/a") });
        await PutAsync("other", "x");
        await using var watch = new WatchSession(Server.Watch);
        await watch.CreateAsync(new WatchCreateRequest { Key = B("w/"), RangeEnd = PrefixEnd("w/"), StartRevision = r1, PrevKv = true });
        var history = await watch.EventsAsync(3);
        Assert.Equal([Event.Types.EventType.Put, Event.Types.EventType.Put, Event.Types.EventType.Delete], history.Select(e => e.Type));
        Assert.Equal([r1, r1 + 1, r1 + 2], history.Select(e => e.Kv.ModRevision));
        Assert.Equal("1", S(history[1].PrevKv.Value));
        Assert.Equal("2", S(history[2].PrevKv.Value));
        await PutAsync("w/b", "live");
        var live = await watch.EventsAsync(1);
        Assert.Equal("live", S(live[0].Kv.Value));
        Assert.Equal(1, live[0].Kv.Version);
    }

    [Fact]
    public async Task Watch_ManyWatchesWithFilters_EachGetsItsEvents()
    {
        await using var watch = new WatchSession(Server.Watch);
        var puts = await watch.CreateAsync(new WatchCreateRequest { Key = B("f/"), RangeEnd = PrefixEnd("f/"), Filters = { WatchCreateRequest.Types.FilterType.Nodelete } });
        var deletes = await watch.CreateAsync(new WatchCreateRequest { Key = B("f/"), RangeEnd = PrefixEnd("f/"), Filters = { WatchCreateRequest.Types.FilterType.Noput } });
        Assert.NotEqual(puts.WatchId, deletes.WatchId);
        await PutAsync("f/1", "a");
        await Kv.DeleteRangeAsync(new DeleteRangeRequest { Key = B("f/1") });
        var responses = new[] { await watch.NextAsync(), await watch.NextAsync() };
        var forPuts = Assert.Single(responses, r => r.WatchId == puts.WatchId);
        var forDeletes = Assert.Single(responses, r => r.WatchId == deletes.WatchId);
        Assert.Equal(Event.Types.EventType.Put, Assert.Single(forPuts.Events).Type);
        Assert.Equal(Event.Types.EventType.Delete, Assert.Single(forDeletes.Events).Type);
    }

    [Fact]
    public async Task Watch_ManyStreamsAndWatchersUnderConcurrentPuts_EveryWatcherGetsEveryRevisionInOrder()
    {
        // Several streams, several watches per stream (half with prev_kv), writers in parallel: every watch sees every
        // revision once, in order, however the server batches the responses of a stream.
        var sessions = Enumerable.Range(0, 3).Select(_ => new WatchSession(Server.Watch)).ToList();
        try
        {
            var watches = new List<(WatchSession Session, long Id, bool PrevKv)>();
            foreach (var session in sessions)
            {
                for (var i = 0; i < 4; i++)
                {
                    var created = await session.CreateAsync(new WatchCreateRequest { Key = B("m/"), RangeEnd = PrefixEnd("m/"), PrevKv = i % 2 == 1 });
                    watches.Add((session, created.WatchId, i % 2 == 1));
                }
            }

            var revisions = (await Task.WhenAll(Enumerable.Range(0, 6).Select(w => Task.Run(async () =>
            {
                var mine = new List<long>();
                for (var i = 0; i < 25; i++)
                {
                    mine.Add(await PutAsync($"m/{w}", $"{w}.{i}"));
                }

                return mine;
            })))).SelectMany(r => r).Order().ToList();
            foreach (var session in sessions)
            {
                var mine = watches.Where(w => w.Session == session).ToList();
                var seen = mine.ToDictionary(w => w.Id, _ => new List<Event>());
                while (seen.Values.Any(e => e.Count < revisions.Count))
                {
                    var r = await session.NextAsync();
                    Assert.True(seen.ContainsKey(r.WatchId), r.ToString());
                    Assert.All(r.Events, e => Assert.True(e.Kv.ModRevision <= r.Header.Revision, r.ToString()));
                    seen[r.WatchId].AddRange(r.Events);
                }

                foreach (var (_, id, prevKv) in mine)
                {
                    Assert.Equal(revisions, seen[id].Select(e => e.Kv.ModRevision).ToList());
                    Assert.All(seen[id], e => Assert.Equal(prevKv && e.Kv.Version > 1, e.PrevKv is not null));
                }
            }
        }
        finally
        {
            foreach (var session in sessions)
            {
                await session.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task Watch_Cancel_StopsEvents()
    {
        await using var watch = new WatchSession(Server.Watch);
        var created = await watch.CreateAsync(new WatchCreateRequest { Key = B("c") });
        await watch.SendAsync(new WatchRequest { CancelRequest = new WatchCancelRequest { WatchId = created.WatchId } });
        var canceled = await watch.NextAsync();
        Assert.True(canceled.Canceled);
        Assert.Equal(created.WatchId, canceled.WatchId);
        var other = await watch.CreateAsync(new WatchCreateRequest { Key = B("d") });
        await PutAsync("c", "1");
        await PutAsync("d", "1");
        var next = await watch.NextAsync();
        Assert.Equal(other.WatchId, next.WatchId);
        Assert.Equal("d", S(next.Events[0].Kv.Key));
    }

    [Fact]
    public async Task Watch_ProgressRequestAndNotify_ReportCurrentRevision()
    {
        var rev = await PutAsync("p", "1");
        await using var watch = new WatchSession(Server.Watch);
        await watch.CreateAsync(new WatchCreateRequest { Key = B("q"), ProgressNotify = true });
        await watch.SendAsync(new WatchRequest { ProgressRequest = new WatchProgressRequest() });
        var progress = await watch.NextAsync();
        Assert.Empty(progress.Events);
        Assert.Equal(-1, progress.WatchId);
        Assert.False(progress.Created);
        Assert.Equal(rev, progress.Header.Revision);
        var notify = await watch.NextAsync();
        Assert.Empty(notify.Events);
        Assert.Equal(rev, notify.Header.Revision);
    }

    [Fact]
    public async Task Watch_ProgressRequestWithoutWatchers_SendsNothing()
    {
        // etcd 3.5 answers a progress request through one of the stream's watchers; a stream without any gets nothing.
        await using var watch = new WatchSession(Server.Watch);
        await watch.SendAsync(new WatchRequest { ProgressRequest = new WatchProgressRequest() });
        var created = await watch.CreateAsync(new WatchCreateRequest { Key = B("nothing-yet") });
        Assert.True(created.Created);
        Assert.NotEqual(-1, created.WatchId);
    }

    [Fact]
    public async Task Watch_ProgressRequestDuringReplay_ArrivesAfterHistoryAtCurrentRevision()
    {
        // kube-apiserver 1.32 trusts a progress notification to mean "every event up to this revision was sent"
        // (consistent reads from its watch cache), so it must never overtake replayed history (etcd 3.5.13's fix).
        var first = await PutAsync("replay/0", "0");
        long last = first;
        for (var i = 1; i < 50; i++)
        {
            last = await PutAsync($"replay/{i}", new string('x', 2000));
        }

        await using var watch = new WatchSession(Server.Watch);
        await watch.SendAsync(new WatchRequest { CreateRequest = new WatchCreateRequest { Key = B("replay/"), RangeEnd = PrefixEnd("replay/"), StartRevision = first } });
        await watch.SendAsync(new WatchRequest { ProgressRequest = new WatchProgressRequest() });
        var seen = new List<long>();
        WatchResponse response;
        while (true)
        {
            response = await watch.NextAsync();
            if (response.WatchId == -1)
            {
                break;
            }

            seen.AddRange(response.Events.Select(e => e.Kv.ModRevision));
        }

        Assert.Empty(response.Events);
        Assert.True(response.Header.Revision >= last);
        Assert.Equal(Enumerable.Range(0, 50).Select(i => first + i), seen);
    }

    [Fact]
    public async Task Status_Version_IsOneKubeApiServerTrustsWithProgressRequests()
    {
        // kube-apiserver 1.32 enables RequestWatchProgress (ConsistentListFromCache) only for etcd 3.4.31+ or 3.5.13+.
        var status = await Server.Maintenance.StatusAsync(new StatusRequest());
        var version = Version.Parse(status.Version);
        Assert.True(version >= new Version(3, 5, 13), status.Version);
    }

    [Fact]
    public async Task Watch_CompactedStartRevision_CancelsWithCompactRevision()
    {
        var r1 = await PutAsync("z", "1");
        var r2 = await PutAsync("z", "2");
        await Kv.CompactAsync(new CompactionRequest { Revision = r2, Physical = true });
        await using var watch = new WatchSession(Server.Watch);
        var created = await watch.CreateAsync(new WatchCreateRequest { Key = B("z"), StartRevision = r1 });
        var canceled = await watch.NextAsync();
        Assert.True(canceled.Canceled);
        Assert.Equal(r2, canceled.CompactRevision);
        Assert.Equal(created.WatchId, canceled.WatchId);
    }

    [Fact]
    public async Task Watch_Fragment_SplitsLargeRevision()
    {
        var txn = new TxnRequest();
        for (var i = 0; i < 4; i++)
        {
            txn.Success.Add(new RequestOp { RequestPut = new PutRequest { Key = B($"big/{i}"), Value = Google.Protobuf.ByteString.CopyFrom(new byte[300 * 1024]) } });
        }

        // Three revisions of 1.2 MB each replay as one batch of history: it must arrive in fragments.
        await Kv.TxnAsync(txn);
        await Kv.TxnAsync(txn);
        await Kv.TxnAsync(new TxnRequest { Success = { txn.Success[0], txn.Success[1] } });
        await using var watch = new WatchSession(Server.Watch);
        await watch.CreateAsync(new WatchCreateRequest { Key = B("big/"), RangeEnd = PrefixEnd("big/"), Fragment = true, StartRevision = 2 });
        var parts = new List<WatchResponse>();
        var events = 0;
        while (events < 10)
        {
            var r = await watch.NextAsync();
            parts.Add(r);
            events += r.Events.Count;
        }

        Assert.True(parts.Count >= 2);
        Assert.Contains(parts, p => p.Fragment);
        Assert.False(parts[^1].Fragment);
    }

    [Fact]
    public async Task Lease_RevokeAndExpiry_DeleteAttachedKeysAsRevisions()
    {
        var lease = await Server.Lease.LeaseGrantAsync(new LeaseGrantRequest { TTL = 60 });
        await PutAsync("l/1", "a", lease.ID);
        await PutAsync("l/2", "b", lease.ID);
        var ttl = await Server.Lease.LeaseTimeToLiveAsync(new LeaseTimeToLiveRequest { ID = lease.ID, Keys = true });
        Assert.Equal(["l/1", "l/2"], ttl.Keys.Select(S));
        Assert.Equal(60, ttl.GrantedTTL);
        Assert.InRange(ttl.TTL, 1, 60);
        var revoke = await Server.Lease.LeaseRevokeAsync(new LeaseRevokeRequest { ID = lease.ID });
        Assert.Equal(4, revoke.Header.Revision);
        Assert.Empty((await Kv.RangeAsync(new RangeRequest { Key = B("l/"), RangeEnd = PrefixEnd("l/") })).Kvs);

        var shortLease = await Server.Lease.LeaseGrantAsync(new LeaseGrantRequest { TTL = 1, ID = 77 });
        Assert.Equal(77, shortLease.ID);
        await PutAsync("ttl", "x", 77);
        await using var watch = new WatchSession(Server.Watch);
        await watch.CreateAsync(new WatchCreateRequest { Key = B("ttl") });
        var expired = await watch.EventsAsync(1);
        Assert.Equal(Event.Types.EventType.Delete, expired[0].Type);
        var gone = await Server.Lease.LeaseTimeToLiveAsync(new LeaseTimeToLiveRequest { ID = 77 });
        Assert.Equal(-1, gone.TTL);
    }

    [Fact]
    public async Task Lease_KeepAliveStream_RenewsAndReportsUnknownAsZero()
    {
        var lease = await Server.Lease.LeaseGrantAsync(new LeaseGrantRequest { TTL = 30 });
        using var call = Server.Lease.LeaseKeepAlive();
        await call.RequestStream.WriteAsync(new LeaseKeepAliveRequest { ID = lease.ID });
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
        Assert.Equal(30, call.ResponseStream.Current.TTL);
        await call.RequestStream.WriteAsync(new LeaseKeepAliveRequest { ID = 4242 });
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
        Assert.Equal(0, call.ResponseStream.Current.TTL);
        await call.RequestStream.CompleteAsync();
        var leases = await Server.Lease.LeaseLeasesAsync(new LeaseLeasesRequest());
        Assert.Contains(leases.Leases, l => l.ID == lease.ID);
    }

    [Fact]
    public async Task Lease_BadInput_FailsWithEtcdErrors()
    {
        var revoke = await Fails(() => Server.Lease.LeaseRevokeAsync(new LeaseRevokeRequest { ID = 555 }).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, revoke.StatusCode);
        Assert.Equal("etcdserver: requested lease not found", revoke.Status.Detail);
        await Server.Lease.LeaseGrantAsync(new LeaseGrantRequest { TTL = 10, ID = 9 });
        var dup = await Fails(() => Server.Lease.LeaseGrantAsync(new LeaseGrantRequest { TTL = 10, ID = 9 }).ResponseAsync);
        Assert.Equal(StatusCode.FailedPrecondition, dup.StatusCode);
        Assert.Equal("etcdserver: lease already exists", dup.Status.Detail);
        var big = await Fails(() => Server.Lease.LeaseGrantAsync(new LeaseGrantRequest { TTL = 9_000_000_001 }).ResponseAsync);
        Assert.Equal("etcdserver: too large lease TTL", big.Status.Detail);
    }

    [Fact]
    public async Task Maintenance_StatusMembersHashDefragment_Answer()
    {
        var rev = await PutAsync("m", "1");
        var status = await Server.Maintenance.StatusAsync(new StatusRequest());
        Assert.Equal((ulong)rev, status.RaftIndex);
        Assert.Equal(status.Header.MemberId, status.Leader);
        Assert.True(status.DbSize > 0);
        Assert.False(string.IsNullOrEmpty(status.Version));
        var members = await Server.Cluster.MemberListAsync(new MemberListRequest());
        var member = Assert.Single(members.Members);
        Assert.Equal(status.Leader, member.ID);
        var h1 = await Server.Maintenance.HashKVAsync(new HashKVRequest { Revision = rev });
        await Server.Maintenance.DefragmentAsync(new DefragmentRequest());
        var h2 = await Server.Maintenance.HashKVAsync(new HashKVRequest { Revision = rev });
        Assert.Equal(h1.Hash, h2.Hash);
        Assert.Equal("1", S((await Kv.RangeAsync(new RangeRequest { Key = B("m") })).Kvs[0].Value));
    }
}

public sealed class SqliteConformanceTests() : EtcdConformanceTests(new SqliteStores());

/// <summary>
/// The same semantics with write economy on and volatile prefixes chosen so that the suite's keys are split between
/// memory and the database: ranges, counts, limits, sorts, historical reads, watches and compaction then see both.
/// </summary>
public sealed class SqliteWriteEconomyConformanceTests() : EtcdConformanceTests(new SqliteStores())
{
    public static readonly string[] Prefixes = ["a", "c", "d/", "k", "l/", "m/", "s/", "t", "w/", "replay/", "/registry/pods/", "x/1", "f/1", "p/1", "o/1", "n/1", "big/1", "q"];

    protected override EtcdServerOptions Configure(EtcdServerOptions options) =>
        options with { Log = options.Log with { VolatilePrefixes = Prefixes, VolatileFlushInterval = TimeSpan.FromMilliseconds(200) } };
}

[Collection("postgres")]
[Trait("Category", "Integration")]
public sealed class PostgresConformanceTests(PostgresServer server) : EtcdConformanceTests(server);

[Collection("mariadb")]
[Trait("Category", "Integration")]
public sealed class MariaDbConformanceTests(MariaDbServer server) : EtcdConformanceTests(server);
