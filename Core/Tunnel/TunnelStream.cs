using System.Buffers.Binary;
using System.Net.WebSockets;

namespace Coracle.Core.Tunnel;

/// <summary>
/// One multiplexed stream: reads what the peer sent (queued here, at most <see cref="TunnelMux.StreamWindow"/> bytes),
/// writes Data frames while the peer's window has credit, grants credit back as it is read, and sends Close when
/// disposed.
/// </summary>
internal sealed class TunnelStream : Stream
{
    private readonly TunnelMux _mux;
    private readonly Lock _gate = new();
    private readonly Queue<byte[]> _incoming = new();
    private int _headOffset;
    private int _buffered;
    private long _receiveWindow = TunnelMux.StreamWindow;
    private int _consumedNotGranted;
    private long _sendCredit;
    private bool _remoteClosed;
    private bool _tunnelEnded;
    private TaskCompletionSource? _readable;
    private TaskCompletionSource? _writable;
    private int _closed;
    private int _released;

    public TunnelStream(TunnelMux mux, uint id, long sendCredit)
    {
        _mux = mux;
        Id = id;
        _sendCredit = sendCredit;
    }

    public uint Id { get; }

    /// <summary>Received bytes queued here that the consumer has not read (at most <see cref="TunnelMux.StreamWindow"/>).</summary>
    public int Buffered
    {
        get
        {
            lock (_gate)
            {
                return _buffered;
            }
        }
    }

    /// <summary>Bytes this side may still send before the peer grants more.</summary>
    public long SendCredit
    {
        get
        {
            lock (_gate)
            {
                return _sendCredit;
            }
        }
    }

    /// <summary>Agent side: tells the server the stream is connected, granting it this side's receive window.</summary>
    public Task AcceptAsync(CancellationToken ct)
    {
        var window = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(window, TunnelMux.StreamWindow);
        return _mux.SendAsync(FrameType.OpenOk, Id, window, ct);
    }

    /// <summary>Queues a Data frame's bytes (read loop); false when they exceed the window the peer was granted.</summary>
    internal bool Deliver(ReadOnlySpan<byte> data, out long windowLeft)
    {
        TaskCompletionSource? wake;
        lock (_gate)
        {
            windowLeft = _receiveWindow;
            if (data.Length > _receiveWindow)
            {
                return false;
            }

            _receiveWindow -= data.Length;
            if (data.Length == 0 || Volatile.Read(ref _released) != 0)
            {
                // Closed on this side: nobody will read these bytes; the window was still charged.
                return true;
            }

            _incoming.Enqueue(data.ToArray());
            _buffered += data.Length;
            _mux.Buffered(data.Length);
            wake = _readable;
            _readable = null;
        }

        wake?.TrySetResult();
        return true;
    }

    /// <summary>Adds credit from OpenOk or a WindowUpdate; false if it overflows what the protocol allows.</summary>
    internal bool AddCredit(long increment)
    {
        TaskCompletionSource? wake;
        lock (_gate)
        {
            if (_sendCredit + increment > int.MaxValue)
            {
                return false;
            }

            _sendCredit += increment;
            wake = _writable;
            _writable = null;
        }

        wake?.TrySetResult();
        return true;
    }

    /// <summary>The peer closed the stream, or the tunnel ended: reads drain what is queued, then end.</summary>
    internal void RemoteClosed(bool tunnelEnded)
    {
        TaskCompletionSource? readable, writable;
        lock (_gate)
        {
            _remoteClosed = true;
            _tunnelEnded |= tunnelEnded;
            readable = _readable;
            writable = _writable;
            _readable = _writable = null;
        }

        readable?.TrySetResult();
        writable?.TrySetResult();
    }

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.Length == 0)
        {
            return 0;
        }

        while (true)
        {
            Task wait;
            var count = 0;
            var grant = 0;
            lock (_gate)
            {
                while (_incoming.Count > 0 && count < buffer.Length)
                {
                    var head = _incoming.Peek();
                    var n = Math.Min(buffer.Length - count, head.Length - _headOffset);
                    head.AsMemory(_headOffset, n).CopyTo(buffer[count..]);
                    count += n;
                    _headOffset += n;
                    if (_headOffset == head.Length)
                    {
                        _incoming.Dequeue();
                        _headOffset = 0;
                    }
                }

                if (count > 0)
                {
                    _buffered -= count;
                    _consumedNotGranted += count;
                    if (_consumedNotGranted >= TunnelMux.WindowUpdateThreshold && !_remoteClosed)
                    {
                        grant = _consumedNotGranted;
                        _consumedNotGranted = 0;
                        _receiveWindow += grant;
                    }

                    wait = Task.CompletedTask;
                }
                else if (_remoteClosed)
                {
                    return 0;
                }
                else
                {
                    _readable ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    wait = _readable.Task;
                }
            }

            if (count > 0)
            {
                _mux.Buffered(-count);
                if (grant > 0)
                {
                    await GrantAsync(grant);
                }

                return count;
            }

            await wait.WaitAsync(cancellationToken);
        }
    }

    /// <summary>
    /// Sends a WindowUpdate. Never cancelled: a lost grant would shrink the peer's window for good. Failures mean the
    /// tunnel is gone, and then nothing more arrives anyway.
    /// </summary>
    private async Task GrantAsync(int increment)
    {
        var payload = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(payload, (uint)increment);
        try
        {
            await _mux.SendAsync(FrameType.WindowUpdate, Id, payload, CancellationToken.None);
        }
        catch (Exception ex) when (ex is WebSocketException or IOException or ObjectDisposedException or OperationCanceledException)
        {
        }
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <summary>
    /// Sends <paramref name="buffer"/> as Data frames, each no larger than the credit the peer granted; waits for
    /// credit when there is none. Bytes written after the peer closed the stream are dropped (Close is a full close);
    /// after the tunnel ended the write fails.
    /// </summary>
    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (Volatile.Read(ref _closed) != 0)
        {
            throw new IOException("the tunnel stream is closed");
        }

        var start = 0;
        while (start < buffer.Length)
        {
            Task wait;
            int n;
            lock (_gate)
            {
                if (_tunnelEnded)
                {
                    throw new IOException("the tunnel closed");
                }

                if (_remoteClosed)
                {
                    return;
                }

                n = (int)Math.Min(Math.Min(_sendCredit, TunnelMux.MaxPayload), buffer.Length - start);
                if (n > 0)
                {
                    _sendCredit -= n;
                    wait = Task.CompletedTask;
                }
                else
                {
                    _writable ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    wait = _writable.Task;
                }
            }

            if (n == 0)
            {
                await wait.WaitAsync(cancellationToken);
                continue;
            }

            try
            {
                await _mux.SendAsync(FrameType.Data, Id, buffer.Slice(start, n), cancellationToken);
            }
            catch (OperationCanceledException)
            {
                // Cancelled while waiting for the send lock: the frame was not sent, so its credit is still ours.
                AddCredit(n);
                throw;
            }

            start += n;
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

    /// <summary>Forgets the stream on this side and drops what it buffered (idempotent).</summary>
    internal void Release()
    {
        if (Interlocked.Exchange(ref _released, 1) != 0)
        {
            return;
        }

        int dropped;
        TaskCompletionSource? readable, writable;
        lock (_gate)
        {
            dropped = _buffered;
            _buffered = 0;
            _incoming.Clear();
            readable = _readable;
            writable = _writable;
            _readable = _writable = null;
            _remoteClosed = true;
        }

        _mux.Released(Id, dropped);
        readable?.TrySetResult();
        writable?.TrySetResult();
    }

    public override async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _closed, 1) == 0)
        {
            Release();
            await _mux.TrySendAsync(FrameType.Close, Id, ReadOnlyMemory<byte>.Empty);
        }

        await base.DisposeAsync();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing && Interlocked.Exchange(ref _closed, 1) == 0)
        {
            Release();
            _ = _mux.TrySendAsync(FrameType.Close, Id, ReadOnlyMemory<byte>.Empty);
        }

        base.Dispose(disposing);
    }
}
