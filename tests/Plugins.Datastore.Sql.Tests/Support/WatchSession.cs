using System.Threading.Channels;
using Coracle.Plugins.Datastore.Sql.Protos;
using Grpc.Core;

namespace Coracle.Plugins.Datastore.Sql.Tests.Support;

/// <summary>One Watch RPC whose responses are collected in order.</summary>
public sealed class WatchSession : IAsyncDisposable
{
    private readonly AsyncDuplexStreamingCall<WatchRequest, WatchResponse> _call;
    private readonly Channel<WatchResponse> _responses = Channel.CreateUnbounded<WatchResponse>();
    private readonly Task _reader;

    public WatchSession(Watch.WatchClient client)
    {
        _call = client.Watch();
        _reader = Task.Run(async () =>
        {
            try
            {
                await foreach (var r in _call.ResponseStream.ReadAllAsync())
                {
                    await _responses.Writer.WriteAsync(r);
                }
            }
            catch (RpcException)
            {
            }

            _responses.Writer.TryComplete();
        });
    }

    public Task SendAsync(WatchRequest request) => _call.RequestStream.WriteAsync(request);

    public async Task<WatchResponse> CreateAsync(WatchCreateRequest create)
    {
        await SendAsync(new WatchRequest { CreateRequest = create });
        var created = await NextAsync();
        Assert.True(created.Created, created.ToString());
        return created;
    }

    public async Task<WatchResponse> NextAsync(int seconds = 20)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(seconds));
        return await _responses.Reader.ReadAsync(cts.Token);
    }

    /// <summary>Reads responses until <paramref name="count"/> events arrived.</summary>
    public async Task<List<Event>> EventsAsync(int count)
    {
        var events = new List<Event>();
        while (events.Count < count)
        {
            var r = await NextAsync();
            events.AddRange(r.Events.Select(e => new Event(e)));
        }

        return events;
    }

    public bool TryNext(out WatchResponse? response) => _responses.Reader.TryRead(out response);

    public async ValueTask DisposeAsync()
    {
        try
        {
            await _call.RequestStream.CompleteAsync();
        }
        catch (Exception)
        {
        }

        _call.Dispose();
        await _reader;
    }
}
