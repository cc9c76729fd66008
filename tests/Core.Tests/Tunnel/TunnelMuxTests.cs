using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;
using System.Threading.Channels;
using Coracle.Core.Tunnel;

namespace Coracle.Core.Tests.Tunnel;

/// <summary>
/// The tunnel's stream multiplexer over two real websockets joined by a loopback TCP connection: the server mux opens
/// streams, the agent mux accepts them (its <c>OnOpen</c> hands each accepted stream to the test), and data flows both
/// ways on every stream. Timeouts are hang guards only.
/// </summary>
public sealed class TunnelMuxTests : IAsyncDisposable
{
    private static readonly TimeSpan HangGuard = TimeSpan.FromSeconds(30);
    private readonly CancellationTokenSource _stop = new();
    private readonly List<IAsyncDisposable> _disposables = [];
    private readonly List<IDisposable> _connections = [];
    private readonly Channel<(TunnelStream Stream, string Target)> _accepted = Channel.CreateUnbounded<(TunnelStream, string)>();
    private Task _serverRun = Task.CompletedTask;
    private Task _agentRun = Task.CompletedTask;
    private TunnelMux? _agent;

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        foreach (var disposable in _disposables)
        {
            await disposable.DisposeAsync();
        }

        foreach (var connection in _connections)
        {
            connection.Dispose();
        }

        _stop.Dispose();
    }

    /// <summary>Connects a server mux and an agent mux; the agent accepts every Open unless <paramref name="onOpen"/> decides.</summary>
    private async Task<TunnelMux> ConnectAsync(Func<TunnelStream, string, CancellationToken, Task<string?>>? onOpen = null, Func<Stream, Stream>? wrapServer = null)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var agentSide = new TcpClient();
        _connections.Add(agentSide);
        await agentSide.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port);
        var serverSide = await listener.AcceptTcpClientAsync();
        _connections.Add(serverSide);
        Stream serverStream = serverSide.GetStream();
        if (wrapServer is not null)
        {
            serverStream = wrapServer(serverStream);
        }

        var server = new TunnelMux(WebSocket.CreateFromStream(serverStream, new WebSocketCreationOptions { IsServer = true }));
        _agent = new TunnelMux(WebSocket.CreateFromStream(agentSide.GetStream(), new WebSocketCreationOptions { IsServer = false }))
        {
            OnOpen = onOpen ?? AcceptAsync,
        };
        _disposables.Add(server);
        _disposables.Add(_agent);
        _serverRun = server.RunAsync(_stop.Token);
        _agentRun = _agent.RunAsync(_stop.Token);
        return server;
    }

    private async Task<string?> AcceptAsync(TunnelStream stream, string target, CancellationToken ct)
    {
        await stream.AcceptAsync(ct);
        await _accepted.Writer.WriteAsync((stream, target), ct);
        return null;
    }

    /// <summary>Opens a stream from the server and returns both ends.</summary>
    private async Task<(TunnelStream Server, TunnelStream Agent)> OpenPairAsync(TunnelMux server, string target = "127.0.0.1:10250")
    {
        var serverEnd = await server.OpenAsync(target, Guard());
        var (agentEnd, seen) = await _accepted.Reader.ReadAsync(Guard());
        Assert.Equal(target, seen);
        Assert.Equal(serverEnd.Id, agentEnd.Id);
        return (serverEnd, agentEnd);
    }

    private static CancellationToken Guard() => new CancellationTokenSource(HangGuard).Token;

    private static async Task<byte[]> ReadExactlyAsync(Stream stream, int count)
    {
        var buffer = new byte[count];
        await stream.ReadExactlyAsync(buffer, Guard());
        return buffer;
    }

    private static async Task<byte[]> ReadToEndAsync(Stream stream)
    {
        using var all = new MemoryStream();
        await stream.CopyToAsync(all, Guard());
        return all.ToArray();
    }

    private static async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        using var guard = new CancellationTokenSource(HangGuard);
        while (!condition())
        {
            Assert.False(guard.IsCancellationRequested, $"timed out waiting for {what}");
            await Task.Delay(10, CancellationToken.None);
        }
    }

    /// <summary>Sends a short message both ways on a stream and checks it arrives.</summary>
    private static async Task AssertRoundTripAsync(TunnelStream serverEnd, TunnelStream agentEnd, string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        await serverEnd.WriteAsync(bytes, Guard());
        Assert.Equal(text, Encoding.UTF8.GetString(await ReadExactlyAsync(agentEnd, bytes.Length)));
        await agentEnd.WriteAsync(bytes, Guard());
        Assert.Equal(text, Encoding.UTF8.GetString(await ReadExactlyAsync(serverEnd, bytes.Length)));
    }

    [Fact]
    public async Task OpenAsync_AgentAccepts_BothEndsExchangeDataBothWays()
    {
        var server = await ConnectAsync();
        var (serverEnd, agentEnd) = await OpenPairAsync(server, "10.42.1.5:8080");

        await AssertRoundTripAsync(serverEnd, agentEnd, "GET / HTTP/1.0\r\n\r\n");
        Assert.Equal(1, server.OpenStreams);
        Assert.Equal(1, _agent!.OpenStreams);
    }

    [Fact]
    public async Task WriteAsync_ManySmallWrites_ArriveInOrder()
    {
        var server = await ConnectAsync();
        var (serverEnd, agentEnd) = await OpenPairAsync(server);
        const int Count = 2000;

        var writing = Task.Run(async () =>
        {
            for (var i = 0; i < Count; i++)
            {
                await serverEnd.WriteAsync(BitConverter.GetBytes(i), Guard());
            }

            await serverEnd.DisposeAsync();
        });
        var received = await ReadToEndAsync(agentEnd);
        await writing.WaitAsync(HangGuard);

        Assert.Equal(Count * sizeof(int), received.Length);
        for (var i = 0; i < Count; i++)
        {
            Assert.Equal(i, BitConverter.ToInt32(received, i * sizeof(int)));
        }
    }

    [Fact]
    public async Task WriteAsync_LargerThanOneFrame_ArrivesWholeAndInOrder()
    {
        var server = await ConnectAsync();
        var (serverEnd, agentEnd) = await OpenPairAsync(server);
        var payload = RandomNumberGenerator.GetBytes((TunnelMux.MaxPayload * 5) + 123);

        var writing = Task.Run(async () =>
        {
            await agentEnd.WriteAsync(payload, Guard());
            await agentEnd.DisposeAsync();
        });
        var received = await ReadToEndAsync(serverEnd);
        await writing.WaitAsync(HangGuard);

        Assert.Equal(payload, received);
    }

    [Fact]
    public async Task OpenAsync_AgentRefuses_ThrowsWithTheAgentsReasonAndForgetsTheStream()
    {
        var server = await ConnectAsync((_, target, _) => Task.FromResult<string?>($"{target} is not allowed here"));

        var refused = await Assert.ThrowsAsync<TunnelOpenException>(() => server.OpenAsync("10.0.0.9:22", Guard()));

        Assert.Equal("10.0.0.9:22 is not allowed here", refused.Message);
        Assert.Equal(0, server.OpenStreams);
        await WaitUntilAsync(() => _agent!.OpenStreams == 0, "the agent to forget the refused stream");
    }

    [Fact]
    public async Task OpenAsync_AgentHandlerThrows_ThrowsWithTheExceptionMessage()
    {
        var server = await ConnectAsync((_, _, _) => throw new InvalidOperationException("connect: connection refused"));

        var refused = await Assert.ThrowsAsync<TunnelOpenException>(() => server.OpenAsync("127.0.0.1:10250", Guard()));

        Assert.Equal("connect: connection refused", refused.Message);
        Assert.Equal(0, server.OpenStreams);
    }

    [Fact]
    public async Task DisposeAsync_ServerEndClosed_AgentReadsEndOfStreamAndBothForgetIt()
    {
        var server = await ConnectAsync();
        var (serverEnd, agentEnd) = await OpenPairAsync(server);
        await serverEnd.WriteAsync("last words"u8.ToArray(), Guard());

        await serverEnd.DisposeAsync();

        Assert.Equal("last words", Encoding.UTF8.GetString(await ReadToEndAsync(agentEnd)));
        Assert.Equal(0, server.OpenStreams);
        await WaitUntilAsync(() => _agent!.OpenStreams == 0, "the agent to drop the closed stream");
    }

    [Fact]
    public async Task WriteAsync_AfterOwnEndClosed_ThrowsIOException()
    {
        var server = await ConnectAsync();
        var (serverEnd, _) = await OpenPairAsync(server);
        await serverEnd.DisposeAsync();

        var ex = await Assert.ThrowsAsync<IOException>(async () => await serverEnd.WriteAsync(new byte[] { 1 }, Guard()));

        Assert.Equal("the tunnel stream is closed", ex.Message);
    }

    [Fact]
    public async Task ReadAsync_StreamClosedByThePeer_ReturnsEndOfStreamAndOtherStreamsKeepWorking()
    {
        var server = await ConnectAsync();
        var (closedServer, closedAgent) = await OpenPairAsync(server);
        var (otherServer, otherAgent) = await OpenPairAsync(server);

        await closedAgent.DisposeAsync();

        Assert.Empty(await ReadToEndAsync(closedServer));
        await WaitUntilAsync(() => server.OpenStreams == 1, "the server to drop the stream the agent closed");
        await AssertRoundTripAsync(otherServer, otherAgent, "still here");
    }

    /// <summary>
    /// Close is a full close: the protocol has no half-close, so bytes the other end writes after the peer closed (its
    /// own end still open) go nowhere and the write does not fail. The copy loops end on the first direction that
    /// finishes, so nothing relies on this.
    /// </summary>
    [Fact]
    public async Task WriteAsync_AfterThePeerClosed_IsDroppedWithoutErrorAndTheTunnelStaysUp()
    {
        var server = await ConnectAsync();
        var (serverEnd, agentEnd) = await OpenPairAsync(server);
        await serverEnd.DisposeAsync();
        Assert.Empty(await ReadToEndAsync(agentEnd));

        await agentEnd.WriteAsync("into the void"u8.ToArray(), Guard());

        var (nextServer, nextAgent) = await OpenPairAsync(server);
        await AssertRoundTripAsync(nextServer, nextAgent, "next");
    }

    [Fact]
    public async Task OpenAsync_ManyConcurrentStreams_EachCarriesOnlyItsOwnData()
    {
        var server = await ConnectAsync();
        const int Streams = 40;

        // The agent echoes every accepted stream back to the server.
        var echoes = Task.Run(async () =>
        {
            var loops = new List<Task>();
            for (var i = 0; i < Streams; i++)
            {
                var (stream, _) = await _accepted.Reader.ReadAsync(Guard());
                loops.Add(Task.Run(async () =>
                {
                    await using (stream)
                    {
                        await stream.CopyToAsync(stream, Guard());
                    }
                }));
            }

            await Task.WhenAll(loops);
        });
        var clients = Enumerable.Range(0, Streams).Select(i => Task.Run(async () =>
        {
            var payload = Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat($"stream {i};", 500 + (i * 97))));
            await using var stream = await server.OpenAsync($"127.0.0.1:{10000 + i}", Guard());
            var reading = ReadExactlyAsync(stream, payload.Length);
            for (var start = 0; start < payload.Length; start += 1000)
            {
                await stream.WriteAsync(payload.AsMemory(start, Math.Min(1000, payload.Length - start)), Guard());
            }

            return (Sent: payload, Received: await reading);
        })).ToList();

        var results = await Task.WhenAll(clients).WaitAsync(HangGuard);

        foreach (var (sent, received) in results)
        {
            Assert.Equal(sent, received);
        }

        await echoes.WaitAsync(HangGuard);
        await WaitUntilAsync(() => server.OpenStreams == 0 && _agent!.OpenStreams == 0, "every stream to be closed on both sides");
    }

    [Fact]
    public async Task WriteAsync_TokenAlreadyCancelled_ThrowsAndTheTunnelStaysUp()
    {
        var server = await ConnectAsync();
        var (serverEnd, agentEnd) = await OpenPairAsync(server);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await serverEnd.WriteAsync(new byte[] { 1 }, new CancellationToken(canceled: true)));

        await AssertRoundTripAsync(serverEnd, agentEnd, "after the cancelled write");
    }

    /// <summary>
    /// The bug from docs/node.md ("Found on the way"): a stream's token cancelled while its frame is inside
    /// <c>WebSocket.SendAsync</c> used to abort the websocket and with it every stream. The server's websocket writes
    /// through a gate here, so the cancel lands exactly while a frame is being written.
    /// </summary>
    [Fact]
    public async Task WriteAsync_CancelledWhileTheFrameIsBeingSent_DoesNotKillTheTunnel()
    {
        GatedStream? gated = null;
        var server = await ConnectAsync(wrapServer: inner => gated = new GatedStream(inner));
        var (serverEnd, _) = await OpenPairAsync(server);
        var (otherServer, otherAgent) = await OpenPairAsync(server);

        using var cancel = new CancellationTokenSource();
        var held = gated!.HoldNextWrite();
        var write = serverEnd.WriteAsync(new byte[TunnelMux.MaxPayload * 3], cancel.Token).AsTask();
        await held.Entered.WaitAsync(HangGuard);
        await cancel.CancelAsync();
        held.Release();
        try
        {
            await write.WaitAsync(HangGuard);
        }
        catch (OperationCanceledException)
        {
            // The frames after the one in flight are not sent: the wait for the send lock observes the token.
        }

        await AssertRoundTripAsync(otherServer, otherAgent, "the other stream survived");
        var (nextServer, nextAgent) = await OpenPairAsync(server);
        await AssertRoundTripAsync(nextServer, nextAgent, "new streams still open");
        Assert.False(_serverRun.IsCompleted);
        Assert.False(_agentRun.IsCompleted);
    }

    [Fact]
    public async Task RunAsync_PeerClosesTheWebsocket_EndsEveryStreamAndFailsPendingOpens()
    {
        var agentSawOpen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var never = new TaskCompletionSource<string?>(TaskCreationOptions.RunContinuationsAsynchronously);
        var server = await ConnectAsync(async (stream, target, ct) =>
        {
            if (target == "hang:1")
            {
                agentSawOpen.TrySetResult();
                return await never.Task;
            }

            return await AcceptAsync(stream, target, ct);
        });
        var (serverEnd, _) = await OpenPairAsync(server);
        var pending = server.OpenAsync("hang:1", Guard());
        await agentSawOpen.Task.WaitAsync(HangGuard);

        await _agent!.DisposeAsync();

        await _serverRun.WaitAsync(HangGuard);
        Assert.Empty(await ReadToEndAsync(serverEnd));
        var failed = await Assert.ThrowsAsync<TunnelOpenException>(() => pending);
        Assert.Equal("the tunnel closed", failed.Message);
        Assert.Equal(0, server.OpenStreams);
        never.TrySetResult(null);
    }

    [Fact]
    public async Task OpenAsync_AfterThePeerClosedTheTunnel_FailsInsteadOfHanging()
    {
        var server = await ConnectAsync();
        await _agent!.DisposeAsync();
        await _serverRun.WaitAsync(HangGuard);

        using var guard = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var ex = await Record.ExceptionAsync(() => server.OpenAsync("127.0.0.1:10250", guard.Token));

        Assert.False(guard.IsCancellationRequested, "OpenAsync hung until its token was cancelled");
        Assert.True(ex is TunnelOpenException or WebSocketException or ObjectDisposedException, $"unexpected {ex}");
    }

    /// <summary>
    /// Issue 16: a paused <c>kubectl logs -f</c> (a stream whose reader does not read) must not block the tunnel. The
    /// stalled stream's writer sends until the reader's window is full and then waits; meanwhile another stream
    /// carries forty windows' worth, every byte; the reader's side holds exactly one window for the stalled stream (the
    /// mux's counter, never more than two windows at any moment). Then the stalled reader reads and everything arrives.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task WriteAsync_OneStreamsReaderStalls_TheOtherStreamCarriesAllItsBytesAndTheStalledOneHoldsOneWindow(bool agentWrites)
    {
        var server = await ConnectAsync();
        var (stalledServer, stalledAgent) = await OpenPairAsync(server);
        var (busyServer, busyAgent) = await OpenPairAsync(server);
        var (stalledWriter, stalledReader, readerMux) = agentWrites ? (stalledAgent, stalledServer, server) : (stalledServer, stalledAgent, _agent!);
        var (busyWriter, busyReader) = agentWrites ? (busyAgent, busyServer) : (busyServer, busyAgent);

        var stalledPayload = RandomNumberGenerator.GetBytes(TunnelMux.StreamWindow * 4);
        var stalledWrite = stalledWriter.WriteAsync(stalledPayload, _stop.Token).AsTask();
        await WaitUntilAsync(() => stalledReader.Buffered == TunnelMux.StreamWindow, "the stalled stream to fill its window");

        var busyPayload = RandomNumberGenerator.GetBytes(TunnelMux.StreamWindow * 40);
        var busyRead = ReadExactlyAsync(busyReader, busyPayload.Length);
        await busyWriter.WriteAsync(busyPayload, Guard());
        Assert.Equal(busyPayload, await busyRead);

        Assert.False(stalledWrite.IsCompleted, "the stalled stream's writer went past the reader's window");
        Assert.Equal(0, stalledWriter.SendCredit);
        Assert.Equal(TunnelMux.StreamWindow, stalledReader.Buffered);
        Assert.Equal(TunnelMux.StreamWindow, readerMux.BufferedBytes);
        Assert.InRange(readerMux.PeakBufferedBytes, TunnelMux.StreamWindow, 2 * TunnelMux.StreamWindow);

        Assert.Equal(stalledPayload, await ReadExactlyAsync(stalledReader, stalledPayload.Length));
        await stalledWrite.WaitAsync(HangGuard);
        Assert.Equal(0, readerMux.BufferedBytes);
        Assert.True(readerMux.PeakBufferedBytes <= TunnelMux.MaxBufferedPerTunnel);
    }

    [Fact]
    public async Task Dispose_StreamWithUnreadBytes_FreesItsShareOfTheTunnelsBuffer()
    {
        var server = await ConnectAsync();
        var (serverEnd, agentEnd) = await OpenPairAsync(server);
        await agentEnd.WriteAsync(new byte[1000], Guard());
        await WaitUntilAsync(() => server.BufferedBytes == 1000, "the bytes to be queued on the server's end");

        await serverEnd.DisposeAsync();

        Assert.Equal(0, server.BufferedBytes);
        Assert.Equal(0, server.LiveStreams);
    }

    [Fact]
    public async Task OpenAsync_MaxStreamsLive_TheNextIsRefusedUntilOneCloses()
    {
        var server = await ConnectAsync();
        var pairs = new List<(TunnelStream Server, TunnelStream Agent)>();
        for (var i = 0; i < TunnelMux.MaxStreams; i++)
        {
            pairs.Add(await OpenPairAsync(server));
        }

        var refused = await Assert.ThrowsAsync<TunnelOpenException>(() => server.OpenAsync("127.0.0.1:10250", Guard()));
        Assert.Equal($"the tunnel to peer has {TunnelMux.MaxStreams} streams open, the most it carries", refused.Message);

        // A slot is free on a side once its end is disposed (it may hold unread bytes until then): close both ends, as
        // the copy loops do.
        await pairs[0].Server.DisposeAsync();
        await pairs[0].Agent.DisposeAsync();
        await WaitUntilAsync(() => _agent!.LiveStreams == TunnelMux.MaxStreams - 1, "the agent to free the slot");
        var (nextServer, nextAgent) = await OpenPairAsync(server);
        await AssertRoundTripAsync(nextServer, nextAgent, "a slot was freed");
    }

    /// <summary>A pass-through stream whose next write can be held until the test releases it.</summary>
    private sealed class GatedStream(Stream inner) : Stream
    {
        private Hold? _hold;

        public Hold HoldNextWrite()
        {
            var hold = new Hold();
            Volatile.Write(ref _hold, hold);
            return hold;
        }

        public override bool CanRead => inner.CanRead;

        public override bool CanSeek => false;

        public override bool CanWrite => inner.CanWrite;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            inner.ReadAsync(buffer, cancellationToken);

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            inner.ReadAsync(buffer, offset, count, cancellationToken);

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (Interlocked.Exchange(ref _hold, null) is { } hold)
            {
                hold.Enter();
                await hold.Released;
            }

            await inner.WriteAsync(buffer, cancellationToken);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

        public override void Flush() => inner.Flush();

        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

        public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer, offset, count).GetAwaiter().GetResult();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }

            base.Dispose(disposing);
        }
    }

    /// <summary>One held write: signals when the write arrives, waits for <see cref="Release"/>.</summary>
    private sealed class Hold
    {
        private readonly TaskCompletionSource _entered = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Entered => _entered.Task;

        public Task Released => _released.Task;

        public void Enter() => _entered.TrySetResult();

        public void Release() => _released.TrySetResult();
    }
}
