using System.Globalization;

namespace Coracle.Bench.Etcd;

/// <summary>Command-line options.</summary>
public sealed record BenchOptions
{
    public const string Usage = """
        usage: Coracle.Bench.Etcd --endpoint unix:///path/etcd.sock|http://127.0.0.1:2379 [options]
               Coracle.Bench.Etcd --target LABEL=ENDPOINT[@PID] --target LABEL=ENDPOINT[@PID] ... [options]   (side by side, ratios against the first)
               Coracle.Bench.Etcd --serve DIR [--listen 127.0.0.1:PORT] [--compact-interval 5m] [--idle-checkpoint 30s] [--write-economy on|off] [--volatile-flush-interval 30s]   (host Coracle on SQLite in DIR)
          --clients 16 --conns 4 --value-size 256 --duration 10s
          --warm-each 0s            run each workload this long, unmeasured, before its measured run (JIT; a server's steady state)
          --workloads put,range-l,range-s,list,txn-create,txn-update,watch,keepalive
          --pid PID                 server process: report its RSS, CPU time per request and /proc/PID/io write_bytes
          --label NAME              name printed in the result rows
          --churn N --keys 1000 --db FILE    N updates over --keys keys; peak FILE and FILE-wal sizes
          --heartbeat ROUNDS --keys 100 --value-size 600 --interval 10s [--settle 31s]    node-heartbeat writes (settle: wait before reading write_bytes)
        """;

    public string Endpoint { get; init; } = "";

    public string? Serve { get; init; }

    public string? Listen { get; init; }

    public TimeSpan CompactInterval { get; init; } = TimeSpan.FromMinutes(5);

    public TimeSpan IdleCheckpoint { get; init; } = TimeSpan.FromSeconds(30);

    public int Clients { get; init; } = 16;

    public int Conns { get; init; } = 4;

    public int ValueSize { get; init; } = 256;

    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Each workload first runs this long unmeasured, so the measured run sees a warmed-up server (zero: none).</summary>
    public TimeSpan WarmEach { get; init; }

    public IReadOnlyList<string> Workloads { get; init; } = ["put", "range-l", "range-s", "list", "txn-create", "txn-update", "watch", "keepalive"];

    /// <summary>--target: servers compared side by side, the first being the reference of the ratios.</summary>
    public IReadOnlyList<BenchTarget> Targets { get; init; } = [];

    public int? Pid { get; init; }

    public string Label { get; init; } = "";

    public long Churn { get; init; }

    public int Keys { get; init; } = 1000;

    public string? Db { get; init; }

    public int Heartbeat { get; init; }

    public TimeSpan Interval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Heartbeat: time waited after the last round before write_bytes is read (longer than a flush interval, so flushed writes count).</summary>
    public TimeSpan? Settle { get; init; }

    /// <summary>--serve: write economy (default on, as the sqlite plugin).</summary>
    public bool WriteEconomy { get; init; } = true;

    /// <summary>--serve: how often volatile keys are flushed.</summary>
    public TimeSpan VolatileFlushInterval { get; init; } = TimeSpan.FromSeconds(30);

    public static BenchOptions Parse(string[] args)
    {
        var o = new BenchOptions();
        for (var i = 0; i < args.Length; i++)
        {
            var name = args[i];
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{name} needs a value");
            o = name switch
            {
                "--endpoint" => o with { Endpoint = Next() },
                "--serve" => o with { Serve = Next() },
                "--listen" => o with { Listen = Next() },
                "--compact-interval" => o with { CompactInterval = Time(Next()) },
                "--idle-checkpoint" => o with { IdleCheckpoint = Time(Next()) },
                "--clients" => o with { Clients = Int(Next()) },
                "--conns" => o with { Conns = Int(Next()) },
                "--value-size" => o with { ValueSize = Int(Next()) },
                "--duration" => o with { Duration = Time(Next()) },
                "--warm-each" => o with { WarmEach = Next() is "0" or "0s" ? TimeSpan.Zero : Time(args[i]) },
                "--workloads" => o with { Workloads = Next().Split(',', StringSplitOptions.RemoveEmptyEntries) },
                "--pid" => o with { Pid = Int(Next()) },
                "--target" => o with { Targets = [.. o.Targets, Target(Next())] },
                "--label" => o with { Label = Next() },
                "--churn" => o with { Churn = Int(Next()) },
                "--keys" => o with { Keys = Int(Next()) },
                "--db" => o with { Db = Next() },
                "--heartbeat" => o with { Heartbeat = Int(Next()) },
                "--interval" => o with { Interval = Time(Next()) },
                "--settle" => o with { Settle = Time(Next()) },
                "--write-economy" => o with { WriteEconomy = Next() switch { "on" => true, "off" => false, var v => throw new ArgumentException($"--write-economy '{v}' is neither on nor off") } },
                "--volatile-flush-interval" => o with { VolatileFlushInterval = Time(Next()) },
                _ => throw new ArgumentException($"unknown option {name}"),
            };
        }

        if (o.Serve is null && o.Endpoint.Length == 0 && o.Targets.Count == 0)
        {
            throw new ArgumentException("--endpoint or --target is required");
        }

        if (o.Workloads.FirstOrDefault(w => !KnownWorkloads.Contains(w)) is { } unknown)
        {
            throw new ArgumentException($"unknown workload {unknown}; the workloads are {string.Join(',', KnownWorkloads)}");
        }

        return o;
    }

    private static readonly string[] KnownWorkloads = ["put", "range-l", "range-s", "list", "txn-create", "txn-update", "watch", "keepalive"];

    private static BenchTarget Target(string s)
    {
        var eq = s.IndexOf('=', StringComparison.Ordinal);
        if (eq <= 0 || eq == s.Length - 1)
        {
            throw new ArgumentException($"--target '{s}' is not LABEL=ENDPOINT[@PID]");
        }

        var endpoint = s[(eq + 1)..];
        int? pid = null;
        var at = endpoint.LastIndexOf('@');
        if (at > 0)
        {
            pid = Int(endpoint[(at + 1)..]);
            endpoint = endpoint[..at];
        }

        return new BenchTarget(s[..eq], endpoint, pid);
    }

    private static int Int(string s) => int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var v) && v > 0
        ? v
        : throw new ArgumentException($"'{s}' is not a positive number");

    private static TimeSpan Time(string s)
    {
        var (number, unit) = s.EndsWith("ms", StringComparison.Ordinal) ? (s[..^2], 0.001) : s.EndsWith('s') ? (s[..^1], 1.0) : s.EndsWith('m') ? (s[..^1], 60.0) : (s, 1.0);
        return double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && v > 0
            ? TimeSpan.FromSeconds(v * unit)
            : throw new ArgumentException($"'{s}' is not a duration (10s, 500ms, 2m)");
    }
}
