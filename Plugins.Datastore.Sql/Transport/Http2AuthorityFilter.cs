using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;

namespace Coracle.Plugins.Datastore.Sql.Transport;

/// <summary>
/// A connection's transport as Kestrel sees it, with the client's HTTP/2 header blocks passed through
/// <see cref="HpackAuthorityRewriter"/>. Go gRPC clients (etcd's clientv3, so kube-apiserver and etcdctl) send
/// the socket path as <c>:authority</c> on <c>unix://</c> endpoints, and etcdctl sends a whole URL on
/// <c>endpoint status</c>; Kestrel resets such streams with PROTOCOL_ERROR and has no setting to allow them
/// (dotnet/aspnetcore#18522, #47043). Every other frame passes unchanged; the server's output is not touched.
/// </summary>
internal sealed class Http2AuthorityFilter : IDuplexPipe, IAsyncDisposable
{
    private const int PrefaceLength = 24;
    private const int FrameHeaderLength = 9;
    private const byte Headers = 0x1;
    private const byte Continuation = 0x9;
    private const byte EndStream = 0x1;
    private const byte EndHeaders = 0x4;
    private const byte Padded = 0x8;
    private const byte Priority = 0x20;

    // The smallest SETTINGS_MAX_FRAME_SIZE a peer may announce; Kestrel's default.
    private const int MaxFrame = 16384;

    private readonly IDuplexPipe _transport;
    private readonly Pipe _pipe = new(new PipeOptions(useSynchronizationContext: false, pauseWriterThreshold: 1024 * 1024, resumeWriterThreshold: 512 * 1024));
    private readonly HpackAuthorityRewriter _hpack = new();
    private readonly Task _pump;
    private int _preface = PrefaceLength;
    private bool _passThrough;

    // A header block split over HEADERS and CONTINUATION frames: the raw frames and the block so far.
    private ArrayBufferWriter<byte>? _pendingFrames;
    private ArrayBufferWriter<byte>? _pendingBlock;
    private byte _pendingFlags;
    private uint _pendingStream;
    private byte[] _pendingPriority = [];

    private Http2AuthorityFilter(IDuplexPipe transport)
    {
        _transport = transport;
        _pump = PumpAsync();
    }

    public PipeReader Input => _pipe.Reader;

    public PipeWriter Output => _transport.Output;

    /// <summary>Connection middleware for an HTTP/2 listener (after TLS, if any).</summary>
    public static ConnectionDelegate Middleware(ConnectionDelegate next) => async context =>
    {
        var original = context.Transport;
        var filter = new Http2AuthorityFilter(original);
        context.Transport = filter;
        try
        {
            await next(context);
        }
        finally
        {
            context.Transport = original;
            await filter.DisposeAsync();
        }
    };

    public async ValueTask DisposeAsync()
    {
        _transport.Input.CancelPendingRead();
        await _pump;
    }

    private async Task PumpAsync()
    {
        await Task.Yield();
        var input = _transport.Input;
        var writer = _pipe.Writer;
        Exception? error = null;
        try
        {
            while (true)
            {
                var result = await input.ReadAsync();
                var buffer = result.Buffer;
                if (result.IsCanceled)
                {
                    break;
                }

                var consumed = Filter(buffer, writer, result.IsCompleted);
                input.AdvanceTo(consumed, buffer.End);
                var flush = await writer.FlushAsync();
                if (flush.IsCompleted || result.IsCompleted)
                {
                    break;
                }
            }
        }
        catch (Exception e)
        {
            error = e;
        }

        await writer.CompleteAsync(error);
        await input.CompleteAsync();
    }

    private SequencePosition Filter(ReadOnlySequence<byte> buffer, PipeWriter writer, bool final)
    {
        if (_passThrough)
        {
            FlushPending(writer);
            Copy(buffer, writer);
            return buffer.End;
        }

        var reader = new SequenceReader<byte>(buffer);
        if (_preface > 0)
        {
            var n = (int)Math.Min(_preface, reader.Remaining);
            Copy(buffer.Slice(0, n), writer);
            reader.Advance(n);
            _preface -= n;
        }

        Span<byte> header = stackalloc byte[FrameHeaderLength];
        while (reader.TryCopyTo(header))
        {
            var length = (header[0] << 16) | (header[1] << 8) | header[2];
            if (reader.Remaining < FrameHeaderLength + length)
            {
                break;
            }

            var frame = buffer.Slice(reader.Position, FrameHeaderLength + length);
            var type = header[3];
            var flags = header[4];
            var stream = BinaryPrimitives.ReadUInt32BigEndian(header[5..]) & 0x7fffffff;
            if (type == Headers && _pendingBlock is null)
            {
                StartBlock(frame, flags, stream, writer);
            }
            else if (type == Continuation && _pendingBlock is not null && stream == _pendingStream)
            {
                _pendingFrames!.Write(frame.ToArray());
                _pendingBlock.Write(frame.Slice(FrameHeaderLength).ToArray());
                if ((flags & EndHeaders) != 0)
                {
                    EndBlock(writer);
                }
            }
            else
            {
                // Anything but a CONTINUATION inside a header block is the peer's protocol error: Kestrel reports it.
                if (_pendingBlock is not null)
                {
                    FlushPending(writer);
                    _passThrough = true;
                }

                Copy(frame, writer);
            }

            reader.Advance(FrameHeaderLength + length);
            if (_passThrough)
            {
                Copy(buffer.Slice(reader.Position), writer);
                return buffer.End;
            }
        }

        if (final)
        {
            FlushPending(writer);
            Copy(buffer.Slice(reader.Position), writer);
            return buffer.End;
        }

        return reader.Position;
    }

    private void StartBlock(ReadOnlySequence<byte> frame, byte flags, uint stream, PipeWriter writer)
    {
        var payload = frame.Slice(FrameHeaderLength).ToArray().AsSpan();
        var pad = 0;
        if ((flags & Padded) != 0)
        {
            if (payload.Length < 1 || payload[0] >= payload.Length)
            {
                Copy(frame, writer);
                _passThrough = true;
                return;
            }

            pad = payload[0];
            payload = payload[1..];
        }

        byte[] priority = [];
        if ((flags & Priority) != 0)
        {
            if (payload.Length - pad < 5)
            {
                Copy(frame, writer);
                _passThrough = true;
                return;
            }

            priority = payload[..5].ToArray();
            payload = payload[5..];
        }

        _pendingFrames = new ArrayBufferWriter<byte>();
        _pendingFrames.Write(frame.ToArray());
        _pendingBlock = new ArrayBufferWriter<byte>();
        _pendingBlock.Write(payload[..^pad]);
        _pendingFlags = flags;
        _pendingStream = stream;
        _pendingPriority = priority;
        if ((flags & EndHeaders) != 0)
        {
            EndBlock(writer);
        }
    }

    private void EndBlock(PipeWriter writer)
    {
        if (!_hpack.TryRewrite(_pendingBlock!.WrittenSpan, out var rewritten))
        {
            FlushPending(writer);
            _passThrough = true;
            return;
        }

        if (rewritten is null)
        {
            FlushPending(writer);
            return;
        }

        // One HEADERS frame (CONTINUATIONs if the block outgrew a frame), padding dropped, priority kept.
        var payload = new byte[_pendingPriority.Length + rewritten.Length];
        _pendingPriority.CopyTo(payload, 0);
        rewritten.CopyTo(payload, _pendingPriority.Length);
        var type = Headers;
        var offset = 0;
        do
        {
            var chunk = Math.Min(MaxFrame, payload.Length - offset);
            var last = offset + chunk == payload.Length;
            var flags = type == Headers ? (byte)(_pendingFlags & (EndStream | Priority)) : (byte)0;
            if (last)
            {
                flags |= EndHeaders;
            }

            var span = writer.GetSpan(FrameHeaderLength + chunk);
            span[0] = (byte)(chunk >> 16);
            span[1] = (byte)(chunk >> 8);
            span[2] = (byte)chunk;
            span[3] = type;
            span[4] = flags;
            BinaryPrimitives.WriteUInt32BigEndian(span[5..], _pendingStream);
            payload.AsSpan(offset, chunk).CopyTo(span[FrameHeaderLength..]);
            writer.Advance(FrameHeaderLength + chunk);
            offset += chunk;
            type = Continuation;
        }
        while (offset < payload.Length);

        _pendingFrames = null;
        _pendingBlock = null;
    }

    private void FlushPending(PipeWriter writer)
    {
        if (_pendingFrames is not null)
        {
            writer.Write(_pendingFrames.WrittenSpan);
        }

        _pendingFrames = null;
        _pendingBlock = null;
    }

    private static void Copy(ReadOnlySequence<byte> bytes, PipeWriter writer)
    {
        foreach (var segment in bytes)
        {
            writer.Write(segment.Span);
        }
    }
}
