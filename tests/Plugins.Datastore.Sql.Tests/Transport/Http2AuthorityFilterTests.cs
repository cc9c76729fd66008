using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using Coracle.Plugins.Datastore.Sql.Transport;

namespace Coracle.Plugins.Datastore.Sql.Tests.Transport;

/// <summary>The filter as the PipeReader Kestrel reads, over a real in-memory pipe standing for the socket.</summary>
public sealed class Http2AuthorityFilterTests
{
    private static readonly byte[] Preface = Encoding.ASCII.GetBytes("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

    private static byte[] Str(string value) => [(byte)value.Length, .. Encoding.Latin1.GetBytes(value)];

    private static byte[] Frame(byte type, byte flags, uint stream, byte[] payload) =>
        [(byte)(payload.Length >> 16), (byte)(payload.Length >> 8), (byte)payload.Length, type, flags, (byte)(stream >> 24), (byte)(stream >> 16), (byte)(stream >> 8), (byte)stream, .. payload];

    private static readonly byte[] Settings = Frame(0x4, 0, 0, []);

    private static readonly byte[] Data = Frame(0x0, 0x1, 1, [1, 2, 3, 4, 5]);

    private sealed class Socket : IDuplexPipe
    {
        public Pipe In { get; } = new();

        public Pipe Out { get; } = new();

        public PipeReader Input => In.Reader;

        public PipeWriter Output => Out.Writer;
    }

    private static async Task Send(Socket socket, byte[] bytes)
    {
        await socket.In.Writer.WriteAsync(bytes);
    }

    [Fact]
    public async Task ReadAsync_HeaderFrameSplitOverTwoSocketReads_AuthorityRewrittenOtherFramesUnchanged()
    {
        var socket = new Socket();
        var filter = new Http2AuthorityFilter(socket);
        var headers = Frame(0x1, 0x4, 1, [0x41, .. Str("/run/coracle/etcd.sock")]);
        await Send(socket, [.. Preface, .. Settings, .. headers[..7]]);

        var first = await filter.ReadAsync();
        Assert.Equal([.. Preface, .. Settings], first.Buffer.ToArray());
        filter.AdvanceTo(first.Buffer.End);

        await Send(socket, [.. headers[7..], .. Data]);
        var second = await filter.ReadAsync();
        Assert.Equal([.. Frame(0x1, 0x4, 1, [0x41, .. Str("localhost")]), .. Data], second.Buffer.ToArray());
        filter.AdvanceTo(second.Buffer.End);
        filter.Complete();
    }

    [Fact]
    public async Task ReadAsync_ExaminedButNotConsumed_WaitsForTheSocketThenReturnsOldAndNewBytes()
    {
        var socket = new Socket();
        var filter = new Http2AuthorityFilter(socket);
        await Send(socket, [.. Preface, .. Settings]);
        var first = await filter.ReadAsync();
        filter.AdvanceTo(first.Buffer.Start, first.Buffer.End);

        var pending = filter.ReadAsync();
        Assert.False(pending.IsCompleted);
        await Send(socket, Data);
        var second = await pending;
        Assert.Equal([.. Preface, .. Settings, .. Data], second.Buffer.ToArray());
        Assert.False(second.IsCanceled);
        filter.AdvanceTo(second.Buffer.End);
        filter.Complete();
    }

    [Fact]
    public async Task ReadAsync_PartlyExamined_ReturnsTheBufferedRestWithoutWaiting()
    {
        var socket = new Socket();
        var filter = new Http2AuthorityFilter(socket);
        await Send(socket, [.. Preface, .. Settings, .. Data]);
        var first = await filter.ReadAsync();
        filter.AdvanceTo(first.Buffer.GetPosition(Preface.Length));

        Assert.True(filter.TryRead(out var rest));
        Assert.Equal([.. Settings, .. Data], rest.Buffer.ToArray());
        filter.AdvanceTo(rest.Buffer.End);
        filter.Complete();
    }

    [Fact]
    public async Task CancelPendingRead_WhileWaiting_ReadCanceledOnceThenDataFlows()
    {
        var socket = new Socket();
        var filter = new Http2AuthorityFilter(socket);
        await Send(socket, Preface);
        var first = await filter.ReadAsync();
        filter.AdvanceTo(first.Buffer.End);

        var pending = filter.ReadAsync();
        filter.CancelPendingRead();
        var canceled = await pending;
        Assert.True(canceled.IsCanceled);
        filter.AdvanceTo(canceled.Buffer.End);

        await Send(socket, Settings);
        var next = await filter.ReadAsync();
        Assert.False(next.IsCanceled);
        Assert.Equal(Settings, next.Buffer.ToArray());
        filter.AdvanceTo(next.Buffer.End);
        filter.Complete();
    }

    [Fact]
    public async Task ReadAsync_SocketClosedMidFrame_CompletedWithTheTruncatedBytesForKestrelToReject()
    {
        var socket = new Socket();
        var filter = new Http2AuthorityFilter(socket);
        await Send(socket, [.. Preface, .. Data[..4]]);
        await socket.In.Writer.CompleteAsync();

        var result = await filter.ReadAsync();
        while (!result.IsCompleted)
        {
            filter.AdvanceTo(result.Buffer.Start, result.Buffer.End);
            result = await filter.ReadAsync();
        }

        Assert.Equal([.. Preface, .. Data[..4]], result.Buffer.ToArray());
        filter.AdvanceTo(result.Buffer.End);
        filter.Complete();
    }
}
