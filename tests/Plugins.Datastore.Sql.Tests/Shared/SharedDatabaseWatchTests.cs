using Coracle.Plugins.Datastore.Sql.Protos;
using Coracle.Plugins.Datastore.Sql.Tests.Support;
using static Coracle.Plugins.Datastore.Sql.Tests.Support.E;

namespace Coracle.Plugins.Datastore.Sql.Tests.Shared;

/// <summary>
/// Two engine instances on one database, as several servers sharing PostgreSQL or MySQL run: writes go through
/// both, watches on both must see every revision exactly once, in order.
/// </summary>
public abstract class SharedDatabaseWatchTests(IStoreFactory stores)
{
    [Fact]
    public async Task Watch_WritesThroughOtherServer_EveryRevisionOnceInOrder()
    {
        var dialect = await stores.NewStoreAsync("");
        await using var a = await TestServer.StartAsync(dialect, TempDir(GetType().Name + "-a"));
        await using var b = await TestServer.StartAsync(dialect, TempDir(GetType().Name + "-b"));
        await using var watchB = new WatchSession(b.Watch);
        await using var watchA = new WatchSession(a.Watch);
        await watchB.CreateAsync(new WatchCreateRequest { Key = B("s/"), RangeEnd = PrefixEnd("s/"), StartRevision = 2 });
        await watchA.CreateAsync(new WatchCreateRequest { Key = B("s/"), RangeEnd = PrefixEnd("s/"), StartRevision = 2 });

        // 6 writers through A and 2 through B, concurrently: both servers commit interleaved revisions.
        const int perWriter = 40;
        var writers = Enumerable.Range(0, 8).Select(w => Task.Run(async () =>
        {
            var kv = w < 6 ? a.Kv : b.Kv;
            for (var i = 0; i < perWriter; i++)
            {
                await kv.PutAsync(new PutRequest { Key = B($"s/{w}/{i % 5}"), Value = B($"{w}-{i}") });
            }
        }));
        await Task.WhenAll(writers);
        const int total = 8 * perWriter;

        foreach (var watch in new[] { watchB, watchA })
        {
            var events = await watch.EventsAsync(total);
            Assert.Equal(total, events.Count);
            Assert.Equal(Enumerable.Range(2, total).Select(r => (long)r), events.Select(e => e.Kv.ModRevision));
            for (var w = 0; w < 8; w++)
            {
                // Each writer's puts appear in the order it made them.
                var mine = events.Where(e => S(e.Kv.Key).StartsWith($"s/{w}/", StringComparison.Ordinal)).Select(e => S(e.Kv.Value));
                Assert.Equal(Enumerable.Range(0, perWriter).Select(i => $"{w}-{i}"), mine);
            }
        }

        var range = await b.Kv.RangeAsync(new RangeRequest { Key = B("s/"), RangeEnd = PrefixEnd("s/") });
        Assert.Equal(total + 1, range.Header.Revision);
        Assert.Equal(40, range.Count);
    }
}

[Collection("postgres")]
[Trait("Category", "Integration")]
public sealed class PostgresSharedDatabaseWatchTests(PostgresServer server) : SharedDatabaseWatchTests(server);

[Collection("mariadb")]
[Trait("Category", "Integration")]
public sealed class MariaDbSharedDatabaseWatchTests(MariaDbServer server) : SharedDatabaseWatchTests(server);
