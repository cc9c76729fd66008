using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Threading.Channels;
using Coracle.Core.Tunnel;

// Tunnel throughput (docs/benchmarks.md): a server mux and an agent mux over two websockets on a loopback TCP
// connection, as JoinServer and TunnelClient run them. The agent writes, the server reads (kubelet → kube-apiserver).
//   one stream:            one stream carries --mib MiB in 32 KiB writes.
//   two, one stalled:      another stream's reader never reads and its writer waits with a full window meanwhile.
var mib = 256;
var runs = 3;
for (var i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--mib" when i + 1 < args.Length:
            mib = int.Parse(args[++i], CultureInfo.InvariantCulture);
            break;
        case "--runs" when i + 1 < args.Length:
            runs = int.Parse(args[++i], CultureInfo.InvariantCulture);
            break;
        default:
            await Console.Error.WriteLineAsync("usage: Coracle.Bench.Tunnel [--mib N] [--runs N]");
            return 2;
    }
}

Console.WriteLine($"tunnel throughput, {mib} MiB per run, {runs} runs; window {TunnelMux.StreamWindow / 1024} KiB per stream, frames of {TunnelMux.MaxPayload / 1024} KiB");
foreach (var stalled in new[] { false, true })
{
    // One discarded run first, so tiered JIT warm-up is not in the figures.
    await using (var warm = await Pair.ConnectAsync())
    {
        await MeasureAsync(warm, Math.Min(mib, 64), stalled);
    }

    var rates = new List<double>();
    long peak = 0;
    for (var run = 0; run < runs; run++)
    {
        await using var pair = await Pair.ConnectAsync();
        var (rate, peakBuffered) = await MeasureAsync(pair, mib, stalled);
        rates.Add(rate);
        peak = Math.Max(peak, peakBuffered);
    }

    rates.Sort();
    Console.WriteLine($"{(stalled ? "two streams, one stalled" : "one stream"),-26} median {rates[rates.Count / 2],7:F0} MiB/s (min {rates[0]:F0}, max {rates[^1]:F0}); server buffered at most {peak / 1024} KiB");
}

return 0;

static async Task<(double MibPerSecond, long PeakBuffered)> MeasureAsync(Pair pair, int mib, bool withStalled)
{
    var chunk = new byte[32 * 1024];
    Random.Shared.NextBytes(chunk);
    Task? stalledWrite = null;
    TunnelStream? stalledReader = null;
    if (withStalled)
    {
        var (serverEnd, agentEnd) = await pair.OpenAsync();
        stalledReader = serverEnd;
        stalledWrite = agentEnd.WriteAsync(new byte[TunnelMux.StreamWindow * 4]).AsTask();
        while (serverEnd.Buffered < TunnelMux.StreamWindow)
        {
            await Task.Delay(1);
        }
    }

    var (reader, writer) = await pair.OpenAsync();
    var total = (long)mib * 1024 * 1024;
    var clock = Stopwatch.StartNew();
    var writing = Task.Run(async () =>
    {
        for (long sent = 0; sent < total; sent += chunk.Length)
        {
            await writer.WriteAsync(chunk);
        }
    });
    var buffer = new byte[64 * 1024];
    for (long received = 0; received < total;)
    {
        var n = await reader.ReadAsync(buffer);
        if (n == 0)
        {
            throw new InvalidOperationException("the stream ended early");
        }

        received += n;
    }

    await writing;
    var seconds = clock.Elapsed.TotalSeconds;
    if (stalledWrite is not null && (stalledWrite.IsCompleted || stalledReader!.Buffered != TunnelMux.StreamWindow))
    {
        throw new InvalidOperationException("the stalled stream went past its window");
    }

    return (mib / seconds, pair.Server.PeakBufferedBytes);
}

/// <summary>Two muxes on one loopback connection; the agent hands accepted streams to <see cref="OpenAsync"/>.</summary>
internal sealed class Pair : IAsyncDisposable
{
    private readonly Channel<TunnelStream> _accepted = Channel.CreateUnbounded<TunnelStream>();
    private readonly CancellationTokenSource _stop = new();
    private readonly List<IDisposable> _sockets = [];
    private TunnelMux _agent = null!;

    public TunnelMux Server { get; private set; } = null!;

    public static async Task<Pair> ConnectAsync()
    {
        var pair = new Pair();
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var agentSide = new TcpClient { NoDelay = true };
        await agentSide.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port);
        var serverSide = await listener.AcceptTcpClientAsync();
        pair._sockets.Add(agentSide);
        pair._sockets.Add(serverSide);
        pair.Server = new TunnelMux(WebSocket.CreateFromStream(serverSide.GetStream(), new WebSocketCreationOptions { IsServer = true }));
        pair._agent = new TunnelMux(WebSocket.CreateFromStream(agentSide.GetStream(), new WebSocketCreationOptions { IsServer = false }))
        {
            OnOpen = async (stream, _, ct) =>
            {
                await stream.AcceptAsync(ct);
                await pair._accepted.Writer.WriteAsync(stream, ct);
                return null;
            },
        };
        _ = pair.Server.RunAsync(pair._stop.Token);
        _ = pair._agent.RunAsync(pair._stop.Token);
        return pair;
    }

    /// <summary>Opens a stream from the server; returns the server's end and the agent's.</summary>
    public async Task<(TunnelStream Server, TunnelStream Agent)> OpenAsync()
    {
        var serverEnd = await Server.OpenAsync("127.0.0.1:10250", CancellationToken.None);
        return (serverEnd, await _accepted.Reader.ReadAsync());
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await Server.DisposeAsync();
        await _agent.DisposeAsync();
        foreach (var socket in _sockets)
        {
            socket.Dispose();
        }

        _stop.Dispose();
    }
}
