using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Text;
using System.Threading.Channels;

namespace Coracle.Core.Tunnel;

/// <summary>
/// The tunnel's framing. Every websocket binary message is one frame: a type byte, the stream id as a big-endian
/// uint32, then the payload (at most <see cref="MaxPayload"/> bytes).
/// </summary>
internal enum FrameType : byte
{
    /// <summary>Server to agent: open a stream to the payload's <c>host:port</c> (UTF-8).</summary>
    Open = 1,

    /// <summary>Agent to server: the stream is connected.</summary>
    OpenOk = 2,

    /// <summary>Agent to server: the stream could not be opened; the payload is the reason (UTF-8).</summary>
    OpenFail = 3,

    /// <summary>Either way: bytes of the stream.</summary>
    Data = 4,

    /// <summary>Either way: the stream is closed; no more frames for its id.</summary>
    Close = 5,
}

/// <summary>A stream that could not be opened through the tunnel.</summary>
internal sealed class TunnelOpenException(string message) : Exception(message);

/// <summary>
/// Multiplexes TCP streams over one websocket. The server opens streams (<see cref="OpenAsync"/>); the agent answers
/// <see cref="FrameType.Open"/> through <see cref="OnOpen"/>. Frames are sent one at a time under a lock.
/// </summary>
internal sealed class TunnelMux : IAsyncDisposable
{
    public const int MaxPayload = 32 * 1024;
    private const int HeaderSize = 5;

    private readonly WebSocket _socket;
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly ConcurrentDictionary<uint, TunnelStream> _streams = new();
    private readonly ConcurrentDictionary<uint, TaskCompletionSource<string?>> _opening = new();
    private uint _nextId;
    private int _ended;

    public TunnelMux(WebSocket socket)
    {
        _socket = socket;
    }

    /// <summary>Agent side: called for each Open frame with the stream and target; returns null on success or a reason.</summary>
    public Func<TunnelStream, string, CancellationToken, Task<string?>>? OnOpen { get; init; }

    public int OpenStreams => _streams.Count;

    public async Task<TunnelStream> OpenAsync(string target, CancellationToken ct)
    {
        var id = Interlocked.Increment(ref _nextId);
        var stream = new TunnelStream(this, id);
        var ready = new TaskCompletionSource<string?>(TaskCreationOptions.RunContinuationsAsynchronously);
        _streams[id] = stream;
        _opening[id] = ready;

        // After the read loop ended nothing would ever answer this Open (the websocket may still accept the frame while
        // it is closing): fail now. The loop sets _ended before it fails the pending opens, so one side always sees it.
        if (Volatile.Read(ref _ended) != 0)
        {
            ready.TrySetResult("the tunnel closed");
        }

        try
        {
            if (!ready.Task.IsCompleted)
            {
                await SendAsync(FrameType.Open, id, Encoding.UTF8.GetBytes(target), ct);
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
            _streams.TryRemove(id, out _);
            throw;
        }
        finally
        {
            _opening.TryRemove(id, out _);
        }
    }

    /// <summary>Reads frames until the websocket closes or <paramref name="ct"/> is cancelled; then every stream ends.</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        var buffer = new byte[MaxPayload + HeaderSize];
        try
        {
            while (_socket.State == WebSocketState.Open)
            {
                var length = 0;
                ValueWebSocketReceiveResult result;
                do
                {
                    if (length == buffer.Length)
                    {
                        throw new InvalidDataException("tunnel frame larger than the maximum");
                    }

                    result = await _socket.ReceiveAsync(buffer.AsMemory(length), ct);
                    if (result.MessageType == WebSocketMessageType.Close)
                    {
                        return;
                    }

                    length += result.Count;
                }
                while (!result.EndOfMessage);

                if (length < HeaderSize)
                {
                    continue;
                }

                var type = (FrameType)buffer[0];
                var id = BinaryPrimitives.ReadUInt32BigEndian(buffer.AsSpan(1));
                var payload = buffer.AsSpan(HeaderSize, length - HeaderSize).ToArray();
                await DispatchAsync(type, id, payload, ct);
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException)
        {
        }
        finally
        {
            Interlocked.Exchange(ref _ended, 1);
            foreach (var stream in _streams.Values)
            {
                stream.RemoteClosed();
            }

            foreach (var opening in _opening.Values)
            {
                opening.TrySetResult("the tunnel closed");
            }

            _streams.Clear();
        }
    }

    private async Task DispatchAsync(FrameType type, uint id, byte[] payload, CancellationToken ct)
    {
        switch (type)
        {
            case FrameType.Open when OnOpen is not null:
                var stream = new TunnelStream(this, id);
                _streams[id] = stream;
                _ = Task.Run(async () =>
                {
                    string? failure;
                    try
                    {
                        failure = await OnOpen(stream, Encoding.UTF8.GetString(payload), ct);
                    }
                    catch (Exception ex)
                    {
                        failure = ex.Message;
                    }

                    if (failure is not null)
                    {
                        _streams.TryRemove(id, out _);
                        await TrySendAsync(FrameType.OpenFail, id, Encoding.UTF8.GetBytes(failure));
                    }
                }, ct);
                break;
            case FrameType.OpenOk:
                _opening.GetValueOrDefault(id)?.TrySetResult(null);
                break;
            case FrameType.OpenFail:
                _opening.GetValueOrDefault(id)?.TrySetResult(Encoding.UTF8.GetString(payload));
                break;
            case FrameType.Data:
                if (_streams.TryGetValue(id, out var target))
                {
                    await target.DeliverAsync(payload, ct);
                }

                break;
            case FrameType.Close:
                if (_streams.TryRemove(id, out var closed))
                {
                    closed.RemoteClosed();
                }

                break;
            default:
                break;
        }
    }

    internal async Task SendAsync(FrameType type, uint id, ReadOnlyMemory<byte> payload, CancellationToken ct)
    {
        var frame = new byte[HeaderSize + payload.Length];
        frame[0] = (byte)type;
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), id);
        payload.CopyTo(frame.AsMemory(HeaderSize));
        await _sendLock.WaitAsync(ct);
        try
        {
            // Never cancel the websocket send itself: a cancelled SendAsync aborts the whole websocket, so one stream
            // whose copy loop is cancelled (its peer closed first) would take every other stream and the tunnel down.
            // The send is bounded by the socket: a dead peer fails it.
            await _socket.SendAsync(frame, WebSocketMessageType.Binary, true, CancellationToken.None);
        }
        finally
        {
            _sendLock.Release();
        }
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

    internal void Forget(uint id) => _streams.TryRemove(id, out _);

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
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException)
        {
        }

        _socket.Dispose();
        _sendLock.Dispose();
    }
}

/// <summary>One multiplexed stream: reads what the peer sent, writes Data frames, and sends Close when disposed.</summary>
internal sealed class TunnelStream : Stream
{
    private readonly TunnelMux _mux;
    private readonly Channel<byte[]> _incoming = Channel.CreateBounded<byte[]>(new BoundedChannelOptions(64) { SingleReader = true, SingleWriter = true });
    private byte[]? _pending;
    private int _offset;
    private int _closed;

    public TunnelStream(TunnelMux mux, uint id)
    {
        _mux = mux;
        Id = id;
    }

    public uint Id { get; }

    /// <summary>Agent side: tells the server the stream is connected.</summary>
    public Task AcceptAsync(CancellationToken ct) => _mux.SendAsync(FrameType.OpenOk, Id, ReadOnlyMemory<byte>.Empty, ct);

    internal async Task DeliverAsync(byte[] data, CancellationToken ct)
    {
        try
        {
            await _incoming.Writer.WriteAsync(data, ct);
        }
        catch (ChannelClosedException)
        {
        }
    }

    internal void RemoteClosed() => _incoming.Writer.TryComplete();

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_pending is null || _offset >= _pending.Length)
        {
            if (!await _incoming.Reader.WaitToReadAsync(cancellationToken) || !_incoming.Reader.TryRead(out _pending))
            {
                return 0;
            }

            _offset = 0;
        }

        var count = Math.Min(buffer.Length, _pending.Length - _offset);
        _pending.AsMemory(_offset, count).CopyTo(buffer);
        _offset += count;
        return count;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (Volatile.Read(ref _closed) != 0)
        {
            throw new IOException("the tunnel stream is closed");
        }

        for (var start = 0; start < buffer.Length; start += TunnelMux.MaxPayload)
        {
            await _mux.SendAsync(FrameType.Data, Id, buffer.Slice(start, Math.Min(TunnelMux.MaxPayload, buffer.Length - start)), cancellationToken);
        }
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer, offset, count).GetAwaiter().GetResult();

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer, offset, count).GetAwaiter().GetResult();

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _closed, 1) == 0)
        {
            _mux.Forget(Id);
            _incoming.Writer.TryComplete();
            await _mux.TrySendAsync(FrameType.Close, Id, ReadOnlyMemory<byte>.Empty);
        }

        await base.DisposeAsync();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing && Interlocked.Exchange(ref _closed, 1) == 0)
        {
            _mux.Forget(Id);
            _incoming.Writer.TryComplete();
            _ = _mux.TrySendAsync(FrameType.Close, Id, ReadOnlyMemory<byte>.Empty);
        }

        base.Dispose(disposing);
    }
}
