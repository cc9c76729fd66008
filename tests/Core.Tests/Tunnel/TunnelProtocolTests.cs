using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using Coracle.Core.Tunnel;

namespace Coracle.Core.Tests.Tunnel;

/// <summary>
/// The tunnel's wire protocol against a hand-driven peer: a raw websocket on a loopback TCP connection that writes
/// frames byte by byte, as a buggy, hostile or version-1 peer would, against a real <see cref="TunnelMux"/>. Each bad
/// case ends the tunnel with a websocket close (status ProtocolError, the reason as its description) and one log line.
/// Timeouts are hang guards only.
/// </summary>
public sealed class TunnelProtocolTests : IAsyncDisposable
{
    private static readonly TimeSpan HangGuard = TimeSpan.FromSeconds(30);
    private readonly CancellationTokenSource _stop = new();
    private readonly List<IDisposable> _disposables = [];
    private readonly ListLoggerFactory _logs = new();
    private readonly ConcurrentQueue<TunnelStream> _accepted = new();
    private TunnelMux? _mux;
    private Task _muxRun = Task.CompletedTask;

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        if (_mux is not null)
        {
            await _mux.DisposeAsync();
        }

        foreach (var disposable in _disposables)
        {
            disposable.Dispose();
        }

        _stop.Dispose();
    }

    /// <summary>A real mux on one end (the agent's, accepting every Open, or the server's) and the raw peer on the other.</summary>
    private async Task<RawPeer> ConnectAsync(bool muxIsAgent = true)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var client = new TcpClient();
        _disposables.Add(client);
        await client.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port);
        var accepted = await listener.AcceptTcpClientAsync();
        _disposables.Add(accepted);
        var muxSocket = WebSocket.CreateFromStream(client.GetStream(), new WebSocketCreationOptions { IsServer = false });
        var rawSocket = WebSocket.CreateFromStream(accepted.GetStream(), new WebSocketCreationOptions { IsServer = true });
        _disposables.Add(rawSocket);
        _mux = muxIsAgent
            ? new TunnelMux(muxSocket, "server test", _logs.CreateLogger("tunnel")) { OnOpen = AcceptAsync }
            : new TunnelMux(muxSocket, "node test", _logs.CreateLogger("tunnel"));
        _muxRun = _mux.RunAsync(_stop.Token);
        return new RawPeer(rawSocket);
    }

    private async Task<string?> AcceptAsync(TunnelStream stream, string target, CancellationToken ct)
    {
        _accepted.Enqueue(stream);
        await stream.AcceptAsync(ct);
        return null;
    }

    /// <summary>The raw peer says Hello and reads the mux's Hello.</summary>
    private static async Task HandshakeAsync(RawPeer peer)
    {
        await peer.SendAsync(FrameType.Hello, 0, Version(TunnelMux.ProtocolVersion));
        var hello = await peer.ReceiveAsync();
        Assert.Equal((FrameType.Hello, 0u), (hello.Type, hello.Id));
        Assert.Equal(TunnelMux.ProtocolVersion, BinaryPrimitives.ReadUInt16BigEndian(hello.Payload));
    }

    /// <summary>The raw peer (as the server) opens stream <paramref name="id"/> and reads the agent's OpenOk; returns the agent's window.</summary>
    private static async Task<uint> OpenAsync(RawPeer peer, uint id)
    {
        await peer.SendAsync(FrameType.Open, id, [.. Window(TunnelMux.StreamWindow), .. "127.0.0.1:10250"u8]);
        var ok = await peer.ReceiveAsync();
        Assert.Equal((FrameType.OpenOk, id), (ok.Type, ok.Id));
        return BinaryPrimitives.ReadUInt32BigEndian(ok.Payload);
    }

    private static byte[] Version(ushort version)
    {
        var bytes = new byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(bytes, version);
        return bytes;
    }

    private static byte[] Window(uint window)
    {
        var bytes = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, window);
        return bytes;
    }

    /// <summary>Reads until the mux closes the websocket; asserts it closed for a protocol error with this reason, logged.</summary>
    private async Task AssertClosedForAsync(RawPeer peer, string reason)
    {
        var (status, description) = await peer.ReadUntilCloseAsync();
        Assert.Equal(WebSocketCloseStatus.ProtocolError, status);
        Assert.Equal(reason.Length > 120 ? reason[..120] : reason, description);
        await _muxRun.WaitAsync(HangGuard);
        Assert.Equal("protocol error: " + reason, _mux!.EndReason);
        Assert.Contains($"[tunnel] tunnel with {(_mux.OnOpen is null ? "node test" : "server test")}: protocol error: {reason}; closing the tunnel", _logs.Lines);
    }

    [Fact]
    public async Task Data_BeyondTheWindowTheAgentGranted_ClosesTheTunnelAsAProtocolError()
    {
        var peer = await ConnectAsync();
        await HandshakeAsync(peer);
        var window = await OpenAsync(peer, 1);
        Assert.Equal((uint)TunnelMux.StreamWindow, window);

        // Exactly the window is fine (nobody reads on the agent's side); one byte more is not.
        for (var sent = 0; sent < window; sent += TunnelMux.MaxPayload)
        {
            await peer.SendAsync(FrameType.Data, 1, new byte[TunnelMux.MaxPayload]);
        }

        await peer.SendAsync(FrameType.Data, 1, [42]);

        await AssertClosedForAsync(peer, "stream 1 sent a Data frame of 1 bytes with 0 bytes left in its window");
        Assert.True(_accepted.TryDequeue(out var stream));
        Assert.Equal(TunnelMux.StreamWindow, stream.Buffered);
        Assert.Equal(TunnelMux.StreamWindow, _mux!.BufferedBytes);
    }

    [Fact]
    public async Task Data_ForAStreamNeverOpened_ClosesTheTunnelAsAProtocolError()
    {
        var peer = await ConnectAsync();
        await HandshakeAsync(peer);

        await peer.SendAsync(FrameType.Data, 99, "hello?"u8.ToArray());

        await AssertClosedForAsync(peer, "a Data frame for stream 99, which was never opened");
    }

    [Fact]
    public async Task WindowUpdate_ForAStreamNeverOpenedOnTheServer_ClosesTheTunnelAsAProtocolError()
    {
        var peer = await ConnectAsync(muxIsAgent: false);
        await HandshakeAsync(peer);

        await peer.SendAsync(FrameType.WindowUpdate, 7, Window(1024));

        await AssertClosedForAsync(peer, "a WindowUpdate frame for stream 7, which was never opened");
    }

    [Fact]
    public async Task Frames_ForAStreamClosedAlready_AreIgnoredAndTheTunnelStaysUp()
    {
        var peer = await ConnectAsync();
        await HandshakeAsync(peer);
        await OpenAsync(peer, 1);
        await peer.SendAsync(FrameType.Close, 1, []);

        // Frames that were on the way when the stream closed.
        await peer.SendAsync(FrameType.Data, 1, "late"u8.ToArray());
        await peer.SendAsync(FrameType.WindowUpdate, 1, Window(1024));
        await peer.SendAsync(FrameType.Close, 1, []);

        Assert.Equal((uint)TunnelMux.StreamWindow, await OpenAsync(peer, 2));
        Assert.False(_muxRun.IsCompleted);
        Assert.Equal(0, _mux!.BufferedBytes);
    }

    [Fact]
    public async Task Open_WithAnIdNotAboveTheLast_ClosesTheTunnelAsAProtocolError()
    {
        var peer = await ConnectAsync();
        await HandshakeAsync(peer);
        await OpenAsync(peer, 5);

        await peer.SendAsync(FrameType.Open, 5, [.. Window(1024), .. "127.0.0.1:10250"u8]);

        await AssertClosedForAsync(peer, "an Open for stream 5, not above the last opened stream 5");
    }

    [Fact]
    public async Task Open_BeyondMaxStreamsOnTheAgent_IsAnsweredOpenFail()
    {
        var peer = await ConnectAsync();
        await HandshakeAsync(peer);
        for (uint id = 1; id <= TunnelMux.MaxStreams; id++)
        {
            await OpenAsync(peer, id);
        }

        await peer.SendAsync(FrameType.Open, TunnelMux.MaxStreams + 1, [.. Window(1024), .. "127.0.0.1:10250"u8]);

        var refused = await peer.ReceiveAsync();
        Assert.Equal((FrameType.OpenFail, (uint)TunnelMux.MaxStreams + 1), (refused.Type, refused.Id));
        Assert.Equal($"the tunnel has {TunnelMux.MaxStreams} streams open, the most it carries", Encoding.UTF8.GetString(refused.Payload));
        Assert.Contains($"[tunnel] tunnel with server test: refused a stream to 127.0.0.1:10250: {TunnelMux.MaxStreams} streams are open, the most a tunnel carries", _logs.Lines);
        Assert.False(_muxRun.IsCompleted);
    }

    /// <summary>A version 1 server (no Hello) opening a stream on a version 2 agent: the agent says why and closes.</summary>
    [Fact]
    public async Task FirstFrame_NotHelloFromAVersion1Server_ClosesSayingTheVersion()
    {
        var peer = await ConnectAsync();

        await peer.SendAsync(FrameType.Open, 1, "127.0.0.1:10250"u8.ToArray());

        await AssertClosedForAsync(peer, "the first frame was Open, not Hello: the peer speaks tunnel protocol version 1 " +
            $"(a Coracle without per-stream flow control); upgrade it to speak version {TunnelMux.ProtocolVersion}");
        Assert.Empty(_accepted);
    }

    /// <summary>
    /// A version 1 agent on a version 2 server: it ignores the Hello and answers the Open (whose payload it cannot
    /// parse) with OpenFail. The server's OpenAsync fails with the reason instead of hanging.
    /// </summary>
    [Fact]
    public async Task OpenAsync_AgainstAVersion1Agent_FailsWithTheVersionError()
    {
        var peer = await ConnectAsync(muxIsAgent: false);
        var opening = _mux!.OpenAsync("127.0.0.1:10250", new CancellationTokenSource(HangGuard).Token);
        Assert.Equal(FrameType.Hello, (await peer.ReceiveAsync()).Type);
        var open = await peer.ReceiveAsync();
        Assert.Equal(FrameType.Open, open.Type);

        await peer.SendAsync(FrameType.OpenFail, open.Id, "'\0\u0004\0\0127.0.0.1:10250' is not host:port"u8.ToArray());

        var failed = await Assert.ThrowsAsync<TunnelOpenException>(() => opening);
        Assert.Equal("the tunnel closed (protocol error: the first frame was OpenFail, not Hello: the peer speaks tunnel protocol version 1 " +
            $"(a Coracle without per-stream flow control); upgrade it to speak version {TunnelMux.ProtocolVersion})", failed.Message);
        Assert.Equal(0, _mux.LiveStreams);
    }

    [Fact]
    public async Task Hello_WithAnotherVersion_ClosesSayingBothVersions()
    {
        var peer = await ConnectAsync();

        await peer.SendAsync(FrameType.Hello, 0, Version(3));

        await AssertClosedForAsync(peer, $"the peer speaks tunnel protocol version 3, this side version {TunnelMux.ProtocolVersion}");
        Assert.False(await _mux!.Handshake);
    }

    [Fact]
    public async Task Frame_OfAnUnknownType_ClosesTheTunnelAsAProtocolError()
    {
        var peer = await ConnectAsync();
        await HandshakeAsync(peer);

        await peer.SendAsync((FrameType)42, 1, []);

        await AssertClosedForAsync(peer, "unknown frame type 42 (stream 1)");
    }

    /// <summary>One end of a websocket driven frame by frame.</summary>
    private sealed class RawPeer(WebSocket socket)
    {
        public Task SendAsync(FrameType type, uint id, byte[] payload)
        {
            var frame = new byte[5 + payload.Length];
            frame[0] = (byte)type;
            BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), id);
            payload.CopyTo(frame, 5);
            return socket.SendAsync(frame.AsMemory(), WebSocketMessageType.Binary, true, Guard()).AsTask();
        }

        public async Task<(FrameType Type, uint Id, byte[] Payload)> ReceiveAsync()
        {
            var message = await ReceiveMessageAsync();
            Assert.NotNull(message);
            return ((FrameType)message[0], BinaryPrimitives.ReadUInt32BigEndian(message.AsSpan(1)), message[5..]);
        }

        public async Task<(WebSocketCloseStatus? Status, string? Description)> ReadUntilCloseAsync()
        {
            while (await ReceiveMessageAsync() is not null)
            {
            }

            return (socket.CloseStatus, socket.CloseStatusDescription);
        }

        /// <summary>The next message, or null when the peer closed.</summary>
        private async Task<byte[]?> ReceiveMessageAsync()
        {
            using var message = new MemoryStream();
            var buffer = new byte[64 * 1024];
            while (true)
            {
                var result = await socket.ReceiveAsync(buffer, Guard());
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    return null;
                }

                message.Write(buffer, 0, result.Count);
                if (result.EndOfMessage)
                {
                    return message.ToArray();
                }
            }
        }

        private static CancellationToken Guard() => new CancellationTokenSource(HangGuard).Token;
    }
}
