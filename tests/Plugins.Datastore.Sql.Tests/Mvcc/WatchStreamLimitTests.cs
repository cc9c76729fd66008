using Coracle.Plugins.Datastore.Sql.Mvcc;
using Coracle.Plugins.Datastore.Sql.Protos;
using Coracle.Plugins.Datastore.Sql.Storage;
using Coracle.Plugins.Datastore.Sql.Tests.Support;
using Grpc.Core;
using static Coracle.Plugins.Datastore.Sql.Tests.Support.E;

namespace Coracle.Plugins.Datastore.Sql.Tests.Mvcc;

public sealed class WatchStreamLimitTests
{
    [Fact]
    public async Task Watch_ClientStopsReading_StreamEndsUnavailableAndOtherWatchersGetEverything()
    {
        var dir = TempDir("slow-watch");
        await using var server = await TestServer.StartAsync(SqlDialects.Sqlite(Path.Combine(dir, "state.db")), dir, o => o with { MaxWatchStreamBufferBytes = 256 * 1024 });
        var create = new WatchCreateRequest { Key = B("s/"), RangeEnd = PrefixEnd("s/") };

        // The slow client has its own connection, so HTTP/2 flow control holds back only its stream.
        using var slowChannel = TestServer.CreateChannel(server.Options.UnixSocket!);
        using var slow = new Watch.WatchClient(slowChannel).Watch();
        await slow.RequestStream.WriteAsync(new WatchRequest { CreateRequest = create });
        Assert.True(await slow.ResponseStream.MoveNext(CancellationToken.None));
        Assert.True(slow.ResponseStream.Current.Created);
        await using var healthy = new WatchSession(server.Watch);
        await healthy.CreateAsync(create);

        // 20 revisions of 50 keys x 4 KiB: about 4 MiB of events, far more than flow control and the limit hold.
        var value = new string('x', 4096);
        for (var t = 0; t < 20; t++)
        {
            var txn = new TxnRequest();
            for (var k = 0; k < 50; k++)
            {
                txn.Success.Add(Put($"s/{t}/{k}", value));
            }

            await server.Kv.TxnAsync(txn);
        }

        var events = await healthy.EventsAsync(1000);
        Assert.Equal(1000, events.Count);

        var received = 0;
        var error = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            while (await slow.ResponseStream.MoveNext(CancellationToken.None))
            {
                received += slow.ResponseStream.Current.Events.Count;
            }
        });
        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        Assert.Equal(WatchHub.SlowStreamMessage, error.Status.Detail);
        Assert.True(received < 1000, received.ToString(System.Globalization.CultureInfo.InvariantCulture));

        // The server keeps serving watches after closing the slow one.
        await using var again = new WatchSession(server.Watch);
        await again.CreateAsync(new WatchCreateRequest { Key = B("s/"), RangeEnd = PrefixEnd("s/"), StartRevision = 2 });
        Assert.Equal(1000, (await again.EventsAsync(1000)).Count);
    }
}
