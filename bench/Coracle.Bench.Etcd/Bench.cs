using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using Coracle.Plugins.Datastore.Sql.Protos;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;

namespace Coracle.Bench.Etcd;

/// <summary>The workloads, each run by <see cref="BenchOptions.Clients"/> clients over <see cref="BenchOptions.Conns"/> HTTP/2 connections.</summary>
public sealed class Bench : IAsyncDisposable
{
    // USER_HZ: the unit of utime and stime in /proc/PID/stat (100 on every Linux architecture .NET runs on).
    private const double ClockTicksPerSecond = 100;

    private BenchOptions _o;
    private readonly BenchTarget _target;
    private readonly GrpcChannel[] _channels;
    private readonly ByteString _value;
    private readonly string _run = DateTime.UtcNow.Ticks.ToString("x", CultureInfo.InvariantCulture);
    private int _passes;

    public Bench(BenchOptions options)
        : this(options, new BenchTarget(options.Label, options.Endpoint, options.Pid))
    {
    }

    public Bench(BenchOptions options, BenchTarget target)
    {
        _o = options with { Label = target.Label, Endpoint = target.Endpoint, Pid = target.Pid };
        _target = target;
        _channels = [.. Enumerable.Range(0, options.Conns).Select(_ => Connect(target.Endpoint))];
        _value = ByteString.CopyFrom(Enumerable.Repeat((byte)'v', options.ValueSize).ToArray());
    }

    /// <summary>The server this bench talks to.</summary>
    public BenchTarget Target => _target;

    private KV.KVClient Kv(int client) => new(_channels[client % _channels.Length]);

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);

    private static ByteString B(string s) => ByteString.CopyFromUtf8(s);

    public static GrpcChannel Connect(string endpoint)
    {
        var handler = new SocketsHttpHandler { EnableMultipleHttp2Connections = false, PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan };
        var address = endpoint;
        if (endpoint.StartsWith("unix://", StringComparison.Ordinal))
        {
            var path = endpoint["unix://".Length..];
            address = "http://localhost";
            handler.ConnectCallback = async (_, ct) =>
            {
                var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                await s.ConnectAsync(new UnixDomainSocketEndPoint(path), ct);
                return new NetworkStream(s, ownsSocket: true);
            };
        }

        return GrpcChannel.ForAddress(address, new GrpcChannelOptions { HttpHandler = handler, MaxReceiveMessageSize = null });
    }

    public async Task RunWorkloadsAsync()
    {
        Console.WriteLine(Inv($"# {_o.Label} {_o.Endpoint}: {_o.Clients} clients, {_o.Conns} connections, {_o.ValueSize}-byte values, {_o.Duration.TotalSeconds} s per workload"));
        Console.WriteLine("| target | workload | ops/s | p50 ms | p99 ms | server CPU µs/op | errors | server RSS MB (peak) |");
        Console.WriteLine("|---|---|---:|---:|---:|---:|---:|---:|");
        await WarmUpAsync();
        foreach (var workload in _o.Workloads)
        {
            var result = await RunWorkloadAsync(workload);
            Console.WriteLine(Inv($"| {_o.Label} | {workload} | {result.Throughput:F0} | {result.P50:F2} | {result.P99:F2} | {Micros(result.CpuPerOp)} | {result.Errors} | {Rss()} |"));
        }
    }

    /// <summary>
    /// Several servers side by side: each workload runs on every target in turn before the next workload starts,
    /// so the targets see the same machine load; one table with every target's figures and each target's
    /// throughput and CPU per request against the first target's.
    /// </summary>
    public static async Task CompareAsync(BenchOptions options)
    {
        var benches = options.Targets.Select(t => new Bench(options, t)).ToList();
        try
        {
            Console.WriteLine(Inv($"# {options.Clients} clients, {options.Conns} connections, {options.ValueSize}-byte values, {options.Duration.TotalSeconds} s per workload per target; {Environment.ProcessorCount} cores, load {LoadAverage()}"));
            var header = new StringBuilder("| workload |");
            var rule = new StringBuilder("|---|");
            foreach (var b in benches)
            {
                header.Append(Inv($" {b._o.Label} ops/s | p50 ms | p99 ms | CPU µs/op |"));
                rule.Append("---:|---:|---:|---:|");
            }

            foreach (var b in benches.Skip(1))
            {
                header.Append(Inv($" {b._o.Label} / {benches[0]._o.Label} ops | CPU |"));
                rule.Append("---:|---:|");
            }

            Console.WriteLine(header);
            Console.WriteLine(rule);
            foreach (var b in benches)
            {
                await b.WarmUpAsync();
            }

            foreach (var workload in options.Workloads)
            {
                var results = new List<Result>();
                foreach (var b in benches)
                {
                    results.Add(await b.RunWorkloadAsync(workload));
                }

                var row = new StringBuilder(Inv($"| {workload} |"));
                foreach (var r in results)
                {
                    row.Append(Inv($" {r.Throughput:F0}{(r.Errors > 0 ? Inv($" ({r.Errors} errors)") : "")} | {r.P50:F2} | {r.P99:F2} | {Micros(r.CpuPerOp)} |"));
                }

                foreach (var r in results.Skip(1))
                {
                    row.Append(Inv($" {r.Throughput / results[0].Throughput:F2} | {r.CpuPerOp / results[0].CpuPerOp:F2} |"));
                }

                Console.WriteLine(row);
            }

            var rss = new StringBuilder("| server RSS MB (peak) |");
            foreach (var b in benches)
            {
                rss.Append(Inv($" {b.Rss()} | | | |"));
            }

            Console.WriteLine(rss);
            Console.WriteLine(Inv($"# load after: {LoadAverage()}"));
        }
        finally
        {
            foreach (var b in benches)
            {
                await b.DisposeAsync();
            }
        }
    }

    private static string LoadAverage() => File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "-";

    private static string Micros(double seconds) => double.IsNaN(seconds) ? "-" : Inv($"{seconds * 1e6:F0}");

    // Warm-up (JIT, connections, page cache); not reported.
    private Task WarmUpAsync() =>
        RunAsync(TimeSpan.FromSeconds(2), c => i => Kv(c).PutAsync(new PutRequest { Key = B(Inv($"bench/warm/{c}/{i % 100}")), Value = _value }).ResponseAsync);

    /// <summary>One workload, with the server's CPU time (user + system, all threads) per request done over it.</summary>
    public async Task<Result> RunWorkloadAsync(string workload)
    {
        if (_o.WarmEach > TimeSpan.Zero)
        {
            var measured = _o;
            _o = _o with { Duration = _o.WarmEach };
            try
            {
                await Workload(workload)();
            }
            finally
            {
                _o = measured;
            }
        }

        var before = CpuSeconds();
        var result = await Workload(workload)();
        var used = CpuSeconds() - before;
        return result with { CpuPerOp = result.Count == 0 || _o.Pid is null ? double.NaN : used / result.Count };
    }

    private Func<Task<Result>> Workload(string workload) => workload switch
    {
        "put" => PutAsync,
        "range-l" => () => RangeAsync(serializable: false),
        "range-s" => () => RangeAsync(serializable: true),
        "list" => ListAsync,
        "txn-create" => TxnCreateAsync,
        "txn-update" => TxnUpdateAsync,
        "watch" => WatchAsync,
        "keepalive" => KeepAliveAsync,
        _ => throw new ArgumentException($"unknown workload {workload}"),
    };

    /// <summary>utime + stime of the server process (all its threads), in seconds; NaN without --pid.</summary>
    private double CpuSeconds()
    {
        if (_o.Pid is not { } pid)
        {
            return double.NaN;
        }

        // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return (long.Parse(fields[14 - 3], CultureInfo.InvariantCulture) + long.Parse(fields[15 - 3], CultureInfo.InvariantCulture)) / ClockTicksPerSecond;
    }

    private string Rss()
    {
        if (_o.Pid is not { } pid)
        {
            return "-";
        }

        var status = File.ReadAllLines($"/proc/{pid}/status");
        long Kb(string field) => long.Parse(status.First(l => l.StartsWith(field, StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
        return Inv($"{Kb("VmRSS:") / 1024} ({Kb("VmHWM:") / 1024})");
    }

    private Task<Result> PutAsync() =>
        RunAsync(_o.Duration, c => i => Kv(c).PutAsync(new PutRequest { Key = B(Inv($"bench/put/{(i * 7919 + c) % 10000:D5}")), Value = _value }).ResponseAsync);

    private async Task<Result> RangeAsync(bool serializable)
    {
        await Kv(0).PutAsync(new PutRequest { Key = B("bench/range/key"), Value = _value });
        return await RunAsync(_o.Duration, c => _ => Kv(c).RangeAsync(new RangeRequest { Key = B("bench/range/key"), Serializable = serializable }).ResponseAsync);
    }

    private async Task<Result> ListAsync()
    {
        var prefix = Inv($"bench/list/{_run}/");
        var exists = await Kv(0).RangeAsync(new RangeRequest { Key = B(prefix), RangeEnd = PrefixEnd(prefix), CountOnly = true });
        for (var i = exists.Count; i < 1000; i += 50)
        {
            var txn = new TxnRequest();
            for (var j = i; j < Math.Min(i + 50, 1000); j++)
            {
                txn.Success.Add(new RequestOp { RequestPut = new PutRequest { Key = B(Inv($"{prefix}{j:D4}")), Value = _value } });
            }

            await Kv(0).TxnAsync(txn);
        }

        return await RunAsync(_o.Duration, c => async _ =>
        {
            var r = await Kv(c).RangeAsync(new RangeRequest { Key = B(prefix), RangeEnd = PrefixEnd(prefix) });
            if (r.Kvs.Count != 1000)
            {
                throw new InvalidOperationException(Inv($"list returned {r.Kvs.Count} keys"));
            }
        });
    }

    // kube-apiserver's create: compare create_revision = 0, then put.
    private Task<Result> TxnCreateAsync()
    {
        var pass = ++_passes;
        return RunAsync(_o.Duration, c => async i =>
        {
            var key = B(Inv($"bench/create/{_run}/{pass}/{c}/{i}"));
            var r = await Kv(c).TxnAsync(new TxnRequest
            {
                Compare = { new Compare { Key = key, Target = Compare.Types.CompareTarget.Create, Result = Compare.Types.CompareResult.Equal, CreateRevision = 0 } },
                Success = { new RequestOp { RequestPut = new PutRequest { Key = key, Value = _value } } },
            });
            if (!r.Succeeded)
            {
                throw new InvalidOperationException("create failed");
            }
        });
    }

    // kube-apiserver's GuaranteedUpdate: compare mod_revision = the revision read, then put; re-read on conflict.
    private Task<Result> TxnUpdateAsync() => RunAsync(_o.Duration, c =>
    {
        var key = B(Inv($"bench/update/{c}"));
        long revision = -1;
        return async _ =>
        {
            var kv = Kv(c);
            if (revision < 0)
            {
                var read = await kv.RangeAsync(new RangeRequest { Key = key });
                revision = read.Kvs.Count == 0 ? 0 : read.Kvs[0].ModRevision;
            }

            var r = await kv.TxnAsync(new TxnRequest
            {
                Compare = { new Compare { Key = key, Target = Compare.Types.CompareTarget.Mod, Result = Compare.Types.CompareResult.Equal, ModRevision = revision } },
                Success = { new RequestOp { RequestPut = new PutRequest { Key = key, Value = _value } } },
                Failure = { new RequestOp { RequestRange = new RangeRequest { Key = key } } },
            });
            revision = r.Succeeded ? r.Header.Revision : -1;
        };
    });

    // etcd's watch-latency: one put at a time (100/s), one watcher per client over the connections; the latency of
    // an event is from sending the put to the watcher receiving it.
    private async Task<Result> WatchAsync()
    {
        var key = B(Inv($"bench/watch/{_run}"));
        var sent = new long[(int)(_o.Duration.TotalSeconds * 100) + 1];
        var latencies = new List<double>[_o.Clients];
        var streams = new List<AsyncDuplexStreamingCall<WatchRequest, WatchResponse>>();
        var readers = new List<Task>();
        using var stop = new CancellationTokenSource();
        var created = new CountdownEvent(_o.Clients);
        for (var c = 0; c < _o.Clients; c++)
        {
            var call = new Watch.WatchClient(_channels[c % _channels.Length]).Watch(cancellationToken: stop.Token);
            streams.Add(call);
            var mine = latencies[c] = [];
            await call.RequestStream.WriteAsync(new WatchRequest { CreateRequest = new WatchCreateRequest { Key = key } });
            readers.Add(Task.Run(async () =>
            {
                try
                {
                    await foreach (var response in call.ResponseStream.ReadAllAsync(stop.Token))
                    {
                        var now = Stopwatch.GetTimestamp();
                        if (response.Created)
                        {
                            created.Signal();
                        }

                        foreach (var e in response.Events)
                        {
                            var n = int.Parse(e.Kv.Value.ToStringUtf8().TrimEnd('.'), CultureInfo.InvariantCulture);
                            mine.Add(Stopwatch.GetElapsedTime(Volatile.Read(ref sent[n]), now).TotalMilliseconds);
                        }
                    }
                }
                catch (RpcException) when (stop.IsCancellationRequested)
                {
                }
                catch (OperationCanceledException)
                {
                }
            }));
        }

        created.Wait(TimeSpan.FromSeconds(30));
        var puts = 0;
        var start = Stopwatch.StartNew();
        while (start.Elapsed < _o.Duration && puts < sent.Length)
        {
            var value = Inv($"{puts}").PadRight(Math.Max(_o.ValueSize, 12), '.');
            Volatile.Write(ref sent[puts], Stopwatch.GetTimestamp());
            await Kv(0).PutAsync(new PutRequest { Key = key, Value = B(value) });
            puts++;
            var next = TimeSpan.FromMilliseconds(10 * puts) - start.Elapsed;
            if (next > TimeSpan.Zero)
            {
                await Task.Delay(next);
            }
        }

        await Task.Delay(500);
        await stop.CancelAsync();
        await Task.WhenAll(readers);
        foreach (var s in streams)
        {
            s.Dispose();
        }

        var all = latencies.SelectMany(l => l).ToList();
        var expected = (long)puts * _o.Clients;
        return Result.From(all, start.Elapsed, expected - all.Count) with { Throughput = all.Count / start.Elapsed.TotalSeconds };
    }

    // kube-apiserver's and kubelet's lease keep-alive: each client holds a lease and sends LeaseKeepAlive requests
    // on its own stream as fast as the answers come; ops/s = answered keep-alives.
    private async Task<Result> KeepAliveAsync()
    {
        var latencies = new List<double>[_o.Clients];
        var errors = 0L;
        var leases = new long[_o.Clients];
        for (var c = 0; c < _o.Clients; c++)
        {
            leases[c] = (await new Lease.LeaseClient(_channels[c % _channels.Length]).LeaseGrantAsync(new LeaseGrantRequest { TTL = 60 })).ID;
        }

        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, _o.Clients).Select(c => Task.Run(async () =>
        {
            var mine = latencies[c] = [];
            using var call = new Lease.LeaseClient(_channels[c % _channels.Length]).LeaseKeepAlive();
            var request = new LeaseKeepAliveRequest { ID = leases[c] };
            while (clock.Elapsed < _o.Duration)
            {
                var t0 = Stopwatch.GetTimestamp();
                await call.RequestStream.WriteAsync(request);
                if (!await call.ResponseStream.MoveNext(CancellationToken.None) || call.ResponseStream.Current.TTL <= 0)
                {
                    if (Interlocked.Increment(ref errors) <= 3)
                    {
                        await Console.Error.WriteLineAsync(Inv($"keep-alive of lease {leases[c]} failed"));
                    }

                    break;
                }

                mine.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
            }

            await call.RequestStream.CompleteAsync();
        })));
        var result = Result.From(latencies.SelectMany(l => l).ToList(), clock.Elapsed, errors);
        foreach (var id in leases)
        {
            await new Lease.LeaseClient(_channels[0]).LeaseRevokeAsync(new LeaseRevokeRequest { ID = id });
        }

        return result;
    }

    private async Task<Result> RunAsync(TimeSpan duration, Func<int, Func<long, Task>> op)
    {
        var latencies = new List<double>[_o.Clients];
        var errors = 0L;
        var clock = Stopwatch.StartNew();
        var tasks = Enumerable.Range(0, _o.Clients).Select(c => Task.Run(async () =>
        {
            var run = op(c);
            var mine = latencies[c] = [];
            for (long i = 0; clock.Elapsed < duration; i++)
            {
                var t0 = Stopwatch.GetTimestamp();
                try
                {
                    await run(i);
                    mine.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                }
                catch (Exception e) when (e is RpcException or InvalidOperationException)
                {
                    if (Interlocked.Increment(ref errors) <= 3)
                    {
                        await Console.Error.WriteLineAsync(e.Message);
                    }
                }
            }
        })).ToArray();
        await Task.WhenAll(tasks);
        return Result.From(latencies.SelectMany(l => l).ToList(), clock.Elapsed, errors);
    }

    /// <summary>Sustained churn: N updates over K keys; samples the database and WAL file sizes every 50 ms.</summary>
    public async Task ChurnAsync()
    {
        var ioBefore = WriteBytes();
        var peakDb = 0L;
        var peakWal = 0L;
        using var stop = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                peakDb = Math.Max(peakDb, Size(_o.Db));
                peakWal = Math.Max(peakWal, Size(_o.Db + "-wal"));
                await Task.Delay(50, CancellationToken.None);
            }
        });
        var next = -1L;
        var clock = Stopwatch.StartNew();
        var latencies = new List<double>[_o.Clients];
        await Task.WhenAll(Enumerable.Range(0, _o.Clients).Select(c => Task.Run(async () =>
        {
            var mine = latencies[c] = [];
            for (var i = Interlocked.Increment(ref next); i < _o.Churn; i = Interlocked.Increment(ref next))
            {
                var t0 = Stopwatch.GetTimestamp();
                await Kv(c).PutAsync(new PutRequest { Key = B(Inv($"bench/churn/{i % _o.Keys:D5}")), Value = _value });
                mine.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                if (i % 20000 == 0)
                {
                    Console.WriteLine(Inv($"  {i} updates, {clock.Elapsed.TotalSeconds:F0} s, db {Size(_o.Db) / 1048576.0:F1} MiB, wal {Size(_o.Db + "-wal") / 1048576.0:F1} MiB"));
                }
            }
        })));
        var elapsed = clock.Elapsed;
        await Task.Delay(3000);
        await stop.CancelAsync();
        await sampler;
        var written = WriteBytes() - ioBefore;
        var result = Result.From(latencies.SelectMany(l => l).ToList(), elapsed, 0);
        Console.WriteLine(Inv($"churn {_o.Label}: {_o.Churn} updates over {_o.Keys} keys, {_o.ValueSize}-byte values, {_o.Clients} clients: {result.Throughput:F0} updates/s, p50 {result.P50:F2} ms, p99 {result.P99:F2} ms"));
        Console.WriteLine(Inv($"  peak db {peakDb / 1048576.0:F1} MiB, peak wal {peakWal / 1048576.0:F1} MiB; 3 s after: db {Size(_o.Db) / 1048576.0:F1} MiB, wal {Size(_o.Db + "-wal") / 1048576.0:F1} MiB"));
        Console.WriteLine(Inv($"  server wrote {written / 1048576.0:F1} MiB = {(double)written / _o.Churn:F0} bytes per update; RSS MB (peak) {Rss()}"));
    }

    /// <summary>Node heartbeats: every interval each of K keys (~value-size bytes) is updated once.</summary>
    public async Task HeartbeatAsync()
    {
        // Create the keys first so the measured rounds are updates.
        await Round();
        await Task.Delay(_o.Interval);
        var ioBefore = WriteBytes();
        var clock = Stopwatch.StartNew();
        for (var round = 1; round <= _o.Heartbeat; round++)
        {
            await Round();
            var wait = TimeSpan.FromTicks(_o.Interval.Ticks * round) - clock.Elapsed;
            if (wait > TimeSpan.Zero)
            {
                await Task.Delay(wait);
            }
        }

        if (_o.Settle is { } settle)
        {
            await Task.Delay(settle);
        }

        var written = WriteBytes() - ioBefore;
        var updates = (long)_o.Heartbeat * _o.Keys;
        Console.WriteLine(Inv($"heartbeat {_o.Label}: {_o.Heartbeat} rounds of {_o.Keys} keys x {_o.ValueSize} bytes every {_o.Interval.TotalSeconds} s ({clock.Elapsed.TotalSeconds:F0} s{(_o.Settle is { } st ? Inv($" + {st.TotalSeconds:F0} s settle") : "")})"));
        Console.WriteLine(Inv($"  server wrote {written} bytes = {(double)written / updates:F0} bytes per update ({(double)written / updates / _o.ValueSize:F1}x the value size); db {Size(_o.Db) / 1048576.0:F2} MiB, wal {Size(_o.Db + "-wal") / 1048576.0:F2} MiB"));

        async Task Round()
        {
            await Task.WhenAll(Enumerable.Range(0, _o.Keys).Select(k =>
                Kv(k).PutAsync(new PutRequest { Key = B(Inv($"/registry/leases/kube-node-lease/node-{k:D3}")), Value = _value }).ResponseAsync));
        }
    }

    private long WriteBytes()
    {
        if (_o.Pid is not { } pid)
        {
            return 0;
        }

        var line = File.ReadAllLines($"/proc/{pid}/io").First(l => l.StartsWith("write_bytes:", StringComparison.Ordinal));
        return long.Parse(line["write_bytes:".Length..].Trim(), CultureInfo.InvariantCulture);
    }

    private static long Size(string? file) => file is not null && File.Exists(file) ? new FileInfo(file).Length : 0;

    private static ByteString PrefixEnd(string prefix)
    {
        var bytes = Encoding.UTF8.GetBytes(prefix);
        bytes[^1]++;
        return ByteString.CopyFrom(bytes);
    }

    public ValueTask DisposeAsync()
    {
        foreach (var c in _channels)
        {
            c.Dispose();
        }

        return ValueTask.CompletedTask;
    }
}

/// <summary>Throughput and latency percentiles of one workload.</summary>
public sealed record Result(double Throughput, double P50, double P99, long Errors, long Count)
{
    /// <summary>Server CPU seconds (user + system) per request done; NaN when the server's pid is unknown.</summary>
    public double CpuPerOp { get; init; } = double.NaN;

    public static Result From(List<double> latencies, TimeSpan elapsed, long errors)
    {
        latencies.Sort();
        double At(double q) => latencies.Count == 0 ? double.NaN : latencies[(int)Math.Round(q * (latencies.Count - 1))];
        return new Result(latencies.Count / elapsed.TotalSeconds, At(0.50), At(0.99), errors, latencies.Count);
    }
}

/// <summary>One server under test: a name for the tables, its endpoint and, when known, its process id.</summary>
public sealed record BenchTarget(string Label, string Endpoint, int? Pid);
