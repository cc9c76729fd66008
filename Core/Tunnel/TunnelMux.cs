using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Text;
using Coracle.Core.Logging;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Coracle.Core.Tunnel;

/// <summary>
/// The tunnel's framing, protocol version 2 (websocket subprotocol <c>coracle-tunnel.v2</c>). Every websocket binary
/// message is one frame: a type byte, the stream id as a big-endian uint32, then the payload (at most
/// <see cref="TunnelMux.MaxPayload"/> bytes). Each side's first frame is <see cref="Hello"/>; anything else first is a
/// protocol error (a version 1 peer, which never sends Hello, is told so and the tunnel closes). Window sizes and
/// increments are big-endian uint32 in 1..2^31-1.
/// </summary>
internal enum FrameType : byte
{
    /// <summary>Server to agent: open a stream. Payload: the server's receive window for it (uint32), then <c>host:port</c> (UTF-8).</summary>
    Open = 1,

    /// <summary>Agent to server: the stream is connected. Payload: the agent's receive window for it (uint32).</summary>
    OpenOk = 2,

    /// <summary>Agent to server: the stream could not be opened; the payload is the reason (UTF-8).</summary>
    OpenFail = 3,

    /// <summary>Either way: bytes of the stream, never more than the receiver's window has left.</summary>
    Data = 4,

    /// <summary>Either way: the stream is closed; no more frames for its id.</summary>
    Close = 5,

    /// <summary>Either way: the receiver consumed bytes; the sender may send this many more (uint32 increment).</summary>
    WindowUpdate = 6,

    /// <summary>Either way, first frame, stream id 0: the sender's protocol version (uint16, 2).</summary>
    Hello = 7,
}

/// <summary>A stream that could not be opened through the tunnel.</summary>
internal sealed class TunnelOpenException(string message) : Exception(message);

/// <summary>The peer broke the tunnel protocol (or speaks another version); the tunnel is closed.</summary>
internal sealed class TunnelProtocolException(string message) : Exception(message);

/// <summary>
/// Multiplexes TCP streams over one websocket. The server opens streams (<see cref="OpenAsync"/>); the agent answers
/// <see cref="FrameType.Open"/> through <see cref="OnOpen"/>. Frames are sent one at a time under a lock.
/// </summary>
/// <remarks>
/// <para>
/// Flow control is per stream, credit based like HTTP/2's WINDOW_UPDATE: each side tells the other in Open/OpenOk how
/// many bytes it will buffer for the stream (<see cref="StreamWindow"/>); a writer sends only while it has credit and
/// otherwise waits, and the reader grants credit back (<see cref="FrameType.WindowUpdate"/>) as its consumer reads. The
/// read loop never waits for a consumer: a Data frame is queued on its stream at once, so a stalled reader holds at
/// most its own window and every other stream keeps flowing.
/// </para>
/// <para>
/// Bounds: at most <see cref="StreamWindow"/> received bytes buffered per stream, at most <see cref="MaxStreams"/>
/// live streams per tunnel (each side refuses more), so at most <see cref="MaxBufferedPerTunnel"/> buffered per tunnel
/// (<see cref="BufferedBytes"/> counts them); plus one frame being read. A peer that sends beyond the window, sends a
/// frame for a stream that never existed, or breaks the framing is a protocol error: logged, and the websocket is
/// closed with status ProtocolError and the reason.
/// </para>
/// </remarks>
internal sealed class TunnelMux : IAsyncDisposable
{
    /// <summary>The largest Data payload in one frame.</summary>
    public const int MaxPayload = 32 * 1024;

    /// <summary>
    /// The receive window each side grants a stream, and so the most it buffers for one stream whose consumer does not
    /// read: 256 KiB, which also caps one stream's throughput at 256 KiB per round trip.
    /// </summary>
    public const int StreamWindow = 256 * 1024;

    /// <summary>The most live streams per tunnel (on each side; opens beyond it are refused, not queued).</summary>
    public const int MaxStreams = 128;

    /// <summary>The most received bytes one tunnel buffers: <see cref="MaxStreams"/> × <see cref="StreamWindow"/> = 32 MiB.</summary>
    public const long MaxBufferedPerTunnel = (long)MaxStreams * StreamWindow;

    /// <summary>The protocol version this build speaks, sent in <see cref="FrameType.Hello"/>.</summary>
    public const ushort ProtocolVersion = 2;

    /// <summary>The websocket subprotocol of this version; the server refuses an upgrade without it.</summary>
    public const string SubProtocol = "coracle-tunnel.v2";

    /// <summary>The reader grants credit back once this many consumed bytes are not yet granted.</summary>
    internal const int WindowUpdateThreshold = StreamWindow / 4;

    private const int HeaderSize = 5;

    private readonly WebSocket _socket;
    private readonly string _peer;
    private readonly ILogger _log;
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly ConcurrentDictionary<uint, TunnelStream> _streams = new();
    private readonly ConcurrentDictionary<uint, TaskCompletionSource<string?>> _opening = new();
    private readonly TaskCompletionSource<bool> _handshake = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private uint _nextId;
    private uint _lastPeerId;
    private int _live;
    private long _buffered;
    private long _peakBuffered;
    private int _ended;
    private bool _helloSent;
    private bool _helloReceived;

    /// <param name="socket">The websocket the frames travel on.</param>
    /// <param name="peer">Who is at the other end, for log lines ("node agt", "server https://...").</param>
    /// <param name="log">Where protocol errors are logged.</param>
    public TunnelMux(WebSocket socket, string peer = "peer", ILogger? log = null)
    {
        _socket = socket;
        _peer = peer;
        _log = log ?? NullLogger.Instance;
    }

    /// <summary>Agent side: called for each Open frame with the stream and target; returns null on success or a reason.</summary>
    public Func<TunnelStream, string, CancellationToken, Task<string?>>? OnOpen { get; init; }

    /// <summary>Streams neither side has closed yet.</summary>
    public int OpenStreams => _streams.Count;

    /// <summary>Streams not yet disposed on this side (counted against <see cref="MaxStreams"/>).</summary>
    public int LiveStreams => Volatile.Read(ref _live);

    /// <summary>Received bytes queued on this side's streams, not yet read by their consumers.</summary>
    public long BufferedBytes => Interlocked.Read(ref _buffered);

    /// <summary>The most <see cref="BufferedBytes"/> ever was (tests check it against the bounds).</summary>
    public long PeakBufferedBytes => Interlocked.Read(ref _peakBuffered);

    /// <summary>True once the peer's Hello arrived with our version; false if the tunnel ended before.</summary>
    public Task<bool> Handshake => _handshake.Task;

    /// <summary>Why the tunnel ended, when it was not a plain close: our protocol error or the peer's close reason.</summary>
    public string? EndReason { get; private set; }

    public async Task<TunnelStream> OpenAsync(string target, CancellationToken ct)
    {
        if (Interlocked.Increment(ref _live) > MaxStreams)
        {
            Interlocked.Decrement(ref _live);
            throw new TunnelOpenException($"the tunnel to {_peer} has {MaxStreams} streams open, the most it carries");
        }

        var target8 = Encoding.UTF8.GetBytes(target);
        var payload = new byte[4 + target8.Length];
        BinaryPrimitives.WriteUInt32BigEndian(payload, StreamWindow);
        target8.CopyTo(payload, 4);
        var ready = new TaskCompletionSource<string?>(TaskCreationOptions.RunContinuationsAsynchronously);
        TunnelStream? stream = null;
        var sent = false;
        try
        {
            await _sendLock.WaitAsync(ct);
            try
            {
                // The id is taken under the send lock, so Opens go out in id order: the agent refuses an Open whose id is
                // not above the last one (a frame for an id never opened is a protocol error; ids are never reused).
                var id = Interlocked.Increment(ref _nextId);
                stream = new TunnelStream(this, id, sendCredit: 0);
                _streams[id] = stream;
                _opening[id] = ready;

                // After the read loop ended nothing would ever answer this Open (the websocket may still accept the frame
                // while it is closing): fail now. The loop sets _ended before it fails the pending opens, so one side
                // always sees it.
                if (Volatile.Read(ref _ended) != 0)
                {
                    ready.TrySetResult("the tunnel closed");
                }
                else
                {
                    await WriteLockedAsync(Frame(FrameType.Open, stream.Id, payload));
                    sent = true;
                }
            }
            finally
            {
                _sendLock.Release();
            }

            var failure = await ready.Task.WaitAsync(ct);
            if (failure is not null)
            {
                throw new TunnelOpenException(failure);
            }

            return stream;
        }
        catch
        {
            // Given up (refused, cancelled, tunnel gone): free the stream; an OpenOk that still comes is answered Close.
            if (stream is null)
            {
                Interlocked.Decrement(ref _live);
            }
            else
            {
                stream.Release();
                if (sent && ready.Task is { IsCompletedSuccessfully: true, Result: null })
                {
                    _ = TrySendAsync(FrameType.Close, stream.Id, ReadOnlyMemory<byte>.Empty);
                }
            }

            throw;
        }
        finally
        {
            if (stream is not null)
            {
                _opening.TryRemove(stream.Id, out _);
            }
        }
    }

    /// <summary>
    /// Sends Hello, then reads frames until the websocket closes, <paramref name="ct"/> is cancelled or the peer breaks
    /// the protocol; then every stream ends.
    /// </summary>
    public async Task RunAsync(CancellationToken ct)
    {
        var buffer = new byte[MaxPayload + HeaderSize];
        try
        {
            await SendAsync(FrameType.Hello, 0, ReadOnlyMemory<byte>.Empty, ct);
            while (_socket.State == WebSocketState.Open)
            {
                var length = 0;
                ValueWebSocketReceiveResult result;
                do
                {
                    if (length == buffer.Length)
                    {
                        throw new TunnelProtocolException($"a frame larger than {buffer.Length} bytes");
                    }

                    result = await _socket.ReceiveAsync(buffer.AsMemory(length), ct);
                    if (result.MessageType == WebSocketMessageType.Close)
                    {
                        if (_socket.CloseStatus is { } status && status != WebSocketCloseStatus.NormalClosure)
                        {
                            EndReason = $"the peer closed the tunnel: {_socket.CloseStatusDescription}";
                        }

                        return;
                    }

                    length += result.Count;
                }
                while (!result.EndOfMessage);

                if (result.MessageType != WebSocketMessageType.Binary || length < HeaderSize)
                {
                    throw new TunnelProtocolException($"a {result.MessageType} message of {length} bytes is not a frame");
                }

                var type = (FrameType)buffer[0];
                var id = BinaryPrimitives.ReadUInt32BigEndian(buffer.AsSpan(1));
                Dispatch(type, id, buffer.AsSpan(HeaderSize, length - HeaderSize), ct);
            }
        }
        catch (TunnelProtocolException ex)
        {
            EndReason = "protocol error: " + ex.Message;
            _log.TunnelProtocolError(_peer, ex.Message);
            await CloseForProtocolErrorAsync(ex.Message);
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException or ObjectDisposedException)
        {
        }
        finally
        {
            Interlocked.Exchange(ref _ended, 1);
            _handshake.TrySetResult(false);
            foreach (var stream in _streams.Values)
            {
                stream.RemoteClosed(tunnelEnded: true);
            }

            foreach (var opening in _opening.Values)
            {
                opening.TrySetResult(EndReason is null ? "the tunnel closed" : $"the tunnel closed ({EndReason})");
            }

            _streams.Clear();
        }
    }

    /// <summary>
    /// Handles one frame. Never waits: a Data frame is queued on its stream, and the few frames sent from here
    /// (OpenFail, Close) are sent in the background, so a slow consumer or a full socket never stalls the read loop.
    /// </summary>
    private void Dispatch(FrameType type, uint id, ReadOnlySpan<byte> payload, CancellationToken ct)
    {
        if (!_helloReceived)
        {
            if (type != FrameType.Hello)
            {
                throw new TunnelProtocolException($"the first frame was {Name(type)}, not Hello: the peer speaks tunnel protocol version 1 " +
                    $"(a Coracle without per-stream flow control); upgrade it to speak version {ProtocolVersion}");
            }

            var version = payload.Length >= 2 ? BinaryPrimitives.ReadUInt16BigEndian(payload) : 0;
            if (version != ProtocolVersion)
            {
                throw new TunnelProtocolException($"the peer speaks tunnel protocol version {version}, this side version {ProtocolVersion}");
            }

            _helloReceived = true;
            _handshake.TrySetResult(true);
            return;
        }

        switch (type)
        {
            case FrameType.Open:
                AcceptOpen(id, payload, ct);
                break;
            case FrameType.OpenOk:
                var window = ReadWindow(type, id, payload);
                if (_opening.TryGetValue(id, out var opened) && _streams.TryGetValue(id, out var openedStream))
                {
                    openedStream.AddCredit(window);
                    opened.TrySetResult(null);
                }
                else
                {
                    Unknown(type, id);

                    // We gave up on this Open before the answer came: the agent connected it, so close it there.
                    _ = TrySendAsync(FrameType.Close, id, ReadOnlyMemory<byte>.Empty);
                }

                break;
            case FrameType.OpenFail:
                if (_opening.TryGetValue(id, out var failed))
                {
                    failed.TrySetResult(Encoding.UTF8.GetString(payload));
                }
                else
                {
                    Unknown(type, id);
                }

                break;
            case FrameType.Data:
                if (_streams.TryGetValue(id, out var target))
                {
                    if (!target.Deliver(payload, out var left))
                    {
                        throw new TunnelProtocolException($"stream {id} sent a Data frame of {payload.Length} bytes with {left} bytes left in its window");
                    }
                }
                else
                {
                    Unknown(type, id);
                }

                break;
            case FrameType.Close:
                if (_streams.TryRemove(id, out var closed))
                {
                    closed.RemoteClosed(tunnelEnded: false);
                }
                else
                {
                    Unknown(type, id);
                }

                break;
            case FrameType.WindowUpdate:
                var increment = ReadWindow(type, id, payload);
                if (_streams.TryGetValue(id, out var granted))
                {
                    if (!granted.AddCredit(increment))
                    {
                        throw new TunnelProtocolException($"stream {id} was granted more than {int.MaxValue} bytes of window");
                    }
                }
                else
                {
                    Unknown(type, id);
                }

                break;
            case FrameType.Hello:
                throw new TunnelProtocolException("a second Hello");
            default:
                throw new TunnelProtocolException($"unknown frame type {(byte)type} (stream {id})");
        }
    }

    private void AcceptOpen(uint id, ReadOnlySpan<byte> payload, CancellationToken ct)
    {
        if (OnOpen is null)
        {
            throw new TunnelProtocolException($"an Open for stream {id}, but only the server opens streams");
        }

        if (id <= _lastPeerId)
        {
            throw new TunnelProtocolException($"an Open for stream {id}, not above the last opened stream {_lastPeerId}");
        }

        _lastPeerId = id;
        var window = ReadWindow(FrameType.Open, id, payload);
        var target = Encoding.UTF8.GetString(payload[4..]);
        if (Interlocked.Increment(ref _live) > MaxStreams)
        {
            Interlocked.Decrement(ref _live);
            _log.TunnelStreamLimit(_peer, target, MaxStreams);
            _ = TrySendAsync(FrameType.OpenFail, id, Encoding.UTF8.GetBytes($"the tunnel has {MaxStreams} streams open, the most it carries"));
            return;
        }

        var stream = new TunnelStream(this, id, window);
        _streams[id] = stream;
        _ = Task.Run(async () =>
        {
            string? failure;
            try
            {
                failure = await OnOpen(stream, target, ct);
            }
            catch (Exception ex)
            {
                failure = ex.Message;
            }

            if (failure is not null)
            {
                stream.Release();
                await TrySendAsync(FrameType.OpenFail, id, Encoding.UTF8.GetBytes(failure));
            }
        }, CancellationToken.None);
    }

    /// <summary>A frame for a stream this side does not have: ignored if the stream existed (it closed while the frame
    /// was on the way), a protocol error if it never did.</summary>
    private void Unknown(FrameType type, uint id)
    {
        var existed = OnOpen is null ? id >= 1 && id <= Volatile.Read(ref _nextId) : id >= 1 && id <= _lastPeerId;
        if (!existed)
        {
            throw new TunnelProtocolException($"a {Name(type)} frame for stream {id}, which was never opened");
        }

        _log.TunnelFrameForClosedStream(_peer, Name(type), id);
    }

    private static uint ReadWindow(FrameType type, uint id, ReadOnlySpan<byte> payload)
    {
        var window = payload.Length >= 4 ? BinaryPrimitives.ReadUInt32BigEndian(payload) : 0;
        if (window is 0 or > int.MaxValue || (type != FrameType.Open && payload.Length != 4))
        {
            throw new TunnelProtocolException($"a {Name(type)} frame for stream {id} without a window of 1..{int.MaxValue} bytes");
        }

        return window;
    }

    private static string Name(FrameType type) => Enum.IsDefined(type) ? type.ToString() : $"type-{(byte)type}";

    private async Task CloseForProtocolErrorAsync(string reason)
    {
        // A close description is at most 123 bytes of UTF-8.
        var description = reason.Length > 120 ? reason[..120] : reason;
        while (Encoding.UTF8.GetByteCount(description) > 123)
        {
            description = description[..^1];
        }

        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            await _sendLock.WaitAsync(timeout.Token);
            try
            {
                await _socket.CloseOutputAsync(WebSocketCloseStatus.ProtocolError, description, timeout.Token);
            }
            finally
            {
                _sendLock.Release();
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException or ObjectDisposedException)
        {
            _socket.Abort();
        }
    }

    internal async Task SendAsync(FrameType type, uint id, ReadOnlyMemory<byte> payload, CancellationToken ct)
    {
        var frame = type == FrameType.Hello ? null : Frame(type, id, payload);
        await _sendLock.WaitAsync(ct);
        try
        {
            await WriteLockedAsync(frame);
        }
        finally
        {
            _sendLock.Release();
        }
    }

    /// <summary>Writes one frame (null: only make sure Hello went first); the caller holds the send lock.</summary>
    private async Task WriteLockedAsync(byte[]? frame)
    {
        // Hello is always the first frame, even when a stream is opened before RunAsync sent it.
        if (!_helloSent)
        {
            var version = new byte[2];
            BinaryPrimitives.WriteUInt16BigEndian(version, ProtocolVersion);
            await _socket.SendAsync(Frame(FrameType.Hello, 0, version), WebSocketMessageType.Binary, true, CancellationToken.None);
            _helloSent = true;
        }

        // Never cancel the websocket send itself: a cancelled SendAsync aborts the whole websocket, so one stream whose
        // copy loop is cancelled (its peer closed first) would take every other stream and the tunnel down. The send is
        // bounded by the socket: a dead peer fails it.
        if (frame is not null)
        {
            await _socket.SendAsync(frame, WebSocketMessageType.Binary, true, CancellationToken.None);
        }
    }

    private static byte[] Frame(FrameType type, uint id, ReadOnlyMemory<byte> payload)
    {
        var frame = new byte[HeaderSize + payload.Length];
        frame[0] = (byte)type;
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), id);
        payload.CopyTo(frame.AsMemory(HeaderSize));
        return frame;
    }

    internal async Task TrySendAsync(FrameType type, uint id, ReadOnlyMemory<byte> payload)
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await SendAsync(type, id, payload, timeout.Token);
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException or ObjectDisposedException)
        {
        }
    }

    /// <summary>A stream was disposed or given up on this side: forget it and free its share of the bounds.</summary>
    internal void Released(uint id, int buffered)
    {
        _streams.TryRemove(id, out _);
        Interlocked.Add(ref _buffered, -buffered);
        Interlocked.Decrement(ref _live);
    }

    internal void Buffered(int delta)
    {
        var now = Interlocked.Add(ref _buffered, delta);
        long peak;
        while (now > (peak = Interlocked.Read(ref _peakBuffered)) && Interlocked.CompareExchange(ref _peakBuffered, now, peak) != peak)
        {
        }
    }

    internal bool Ended => Volatile.Read(ref _ended) != 0;

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (_socket.State == WebSocketState.Open)
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                await _socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "closing", timeout.Token);
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException or ObjectDisposedException)
        {
        }

        _socket.Dispose();
        _sendLock.Dispose();
    }
}
