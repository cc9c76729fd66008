using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
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
/// <remarks>
/// The filter is the <see cref="PipeReader"/> Kestrel reads: it reads the transport only when Kestrel asks for
/// more bytes and filters them on Kestrel's own read, so a request costs no extra task or thread-pool hop (an
/// earlier version pumped every connection through a second pipe on its own task, one more wake-up per read).
/// </remarks>
internal sealed class Http2AuthorityFilter : PipeReader, IDuplexPipe
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
    private readonly PipeReader _source;

    // The filtered bytes Kestrel has not consumed yet. Never pauses: the transport is read only when Kestrel has
    // examined everything here, so it holds at most one transport read beyond what Kestrel keeps.
    private readonly Pipe _pipe = new(new PipeOptions(pauseWriterThreshold: 0, resumeWriterThreshold: 0, readerScheduler: PipeScheduler.Inline, writerScheduler: PipeScheduler.Inline, useSynchronizationContext: false));
    private readonly HpackAuthorityRewriter _hpack = new();
    private int _preface = PrefaceLength;
    private bool _passThrough;

    // True when Kestrel has examined every filtered byte, so the next read must wait for the transport.
    private bool _needInput = true;
    private bool _sourceDone;
    private volatile bool _cancelRequested;
    private ReadOnlySequence<byte> _handedOut;

    // A header block split over HEADERS and CONTINUATION frames: the raw frames and the block so far.
    private ArrayBufferWriter<byte>? _pendingFrames;
    private ArrayBufferWriter<byte>? _pendingBlock;
    private byte _pendingFlags;
    private uint _pendingStream;
    private byte[] _pendingPriority = [];

    internal Http2AuthorityFilter(IDuplexPipe transport)
    {
        _transport = transport;
        _source = transport.Input;
    }

    public PipeReader Input => this;

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
            filter.Release();
        }
    };

    public override async ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
    {
        while (true)
        {
            if (TryHandOut(out var ready))
            {
                return ready;
            }

            Take(await _source.ReadAsync(cancellationToken));
        }
    }

    public override bool TryRead(out ReadResult result)
    {
        while (true)
        {
            if (TryHandOut(out result))
            {
                return true;
            }

            if (!_source.TryRead(out var input))
            {
                return false;
            }

            Take(input);
        }
    }

    public override void AdvanceTo(SequencePosition consumed) => AdvanceTo(consumed, consumed);

    public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
    {
        var examinedAll = _handedOut.IsEmpty || _handedOut.Slice(examined).IsEmpty;
        _handedOut = default;
        _pipe.Reader.AdvanceTo(consumed, examined);
        _needInput = examinedAll && !_sourceDone;
    }

    public override void CancelPendingRead()
    {
        _cancelRequested = true;
        _source.CancelPendingRead();
    }

    public override void Complete(Exception? exception = null)
    {
        Release();
        _source.Complete(exception);
    }

    /// <summary>Returns the filter's buffers; the transport itself is Kestrel's to complete.</summary>
    private void Release()
    {
        _pipe.Reader.Complete();
        _pipe.Writer.Complete();
    }

    private bool TryHandOut(out ReadResult result)
    {
        if (_cancelRequested)
        {
            // Kestrel asked to cancel its pending read: hand out what is buffered, marked canceled, once.
            _cancelRequested = false;
            _pipe.Reader.CancelPendingRead();
            _pipe.Reader.TryRead(out result);
            _handedOut = result.Buffer;
            return true;
        }

        if (!_needInput && _pipe.Reader.TryRead(out result))
        {
            _handedOut = result.Buffer;
            return true;
        }

        result = default;
        return false;
    }

    // Filters one transport read into the pipe. A canceled transport read only wakes the loop; a cancellation is
    // reported when Kestrel asked for it (_cancelRequested), never for a stale one.
    private void Take(ReadResult input)
    {
        var buffer = input.Buffer;
        var consumed = Filter(buffer, _pipe.Writer, input.IsCompleted);
        var produced = _pipe.Writer.UnflushedBytes > 0;
        _source.AdvanceTo(consumed, buffer.End);
        if (produced)
        {
            var flush = _pipe.Writer.FlushAsync();
            Debug.Assert(flush.IsCompletedSuccessfully, "the filter's pipe never pauses");
            _needInput = false;
        }

        if (input.IsCompleted)
        {
            _sourceDone = true;
            _pipe.Writer.Complete();
            _needInput = false;
        }
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
            if (type == Headers && _pendingBlock is null && (flags & (EndHeaders | Padded | Priority)) == EndHeaders)
            {
                // The usual request: one HEADERS frame holding the whole block, read in place.
                var payload = frame.Slice(FrameHeaderLength);
                if (!_hpack.TryRewrite(payload.IsSingleSegment ? payload.FirstSpan : payload.ToArray(), out var rewritten))
                {
                    Copy(frame, writer);
                    _passThrough = true;
                }
                else if (rewritten is null)
                {
                    Copy(frame, writer);
                }
                else
                {
                    WriteBlock(writer, [], rewritten, flags, stream);
                }
            }
            else if (type == Headers && _pendingBlock is null)
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

        WriteBlock(writer, _pendingPriority, rewritten, _pendingFlags, _pendingStream);
        _pendingFrames = null;
        _pendingBlock = null;
    }

    // One HEADERS frame (CONTINUATIONs if the block outgrew a frame), padding dropped, priority kept.
    private static void WriteBlock(PipeWriter writer, byte[] priority, byte[] block, byte blockFlags, uint stream)
    {
        var payload = new byte[priority.Length + block.Length];
        priority.CopyTo(payload, 0);
        block.CopyTo(payload, priority.Length);
        var type = Headers;
        var offset = 0;
        do
        {
            var chunk = Math.Min(MaxFrame, payload.Length - offset);
            var last = offset + chunk == payload.Length;
            var flags = type == Headers ? (byte)(blockFlags & (EndStream | Priority)) : (byte)0;
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
            BinaryPrimitives.WriteUInt32BigEndian(span[5..], stream);
            payload.AsSpan(offset, chunk).CopyTo(span[FrameHeaderLength..]);
            writer.Advance(FrameHeaderLength + chunk);
            offset += chunk;
            type = Continuation;
        }
        while (offset < payload.Length);
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
