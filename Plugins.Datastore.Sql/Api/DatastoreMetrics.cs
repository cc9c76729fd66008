using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Coracle.Plugins.Datastore.Sql.Mvcc;
using Coracle.Plugins.Datastore.Sql.Storage;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Core.Interceptors;

namespace Coracle.Plugins.Datastore.Sql.Api;

/// <summary>Request counters and latency histograms, rendered in the Prometheus text format.</summary>
public sealed class DatastoreMetrics
{
    private static readonly double[] Bounds = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
    private readonly ConcurrentDictionary<string, MethodStats> _methods = new(StringComparer.Ordinal);

    /// <summary>Records one finished request.</summary>
    public void Observe(string method, TimeSpan elapsed, bool failed)
    {
        var stats = _methods.GetOrAdd(method, _ => new MethodStats());
        Interlocked.Increment(ref stats.Count);
        if (failed)
        {
            Interlocked.Increment(ref stats.Errors);
        }

        Interlocked.Add(ref stats.Ticks, elapsed.Ticks);
        var seconds = elapsed.TotalSeconds;
        for (var i = 0; i < Bounds.Length; i++)
        {
            if (seconds <= Bounds[i])
            {
                Interlocked.Increment(ref stats.Buckets[i]);
                break;
            }
        }
    }

    /// <summary>Renders every metric.</summary>
    internal string Render(RevisionLog log, WatchHub hub, Lessor lessor)
    {
        var sb = new StringBuilder();
        sb.Append("# HELP coracle_datastore_requests_total gRPC requests handled, by method.\n# TYPE coracle_datastore_requests_total counter\n");
        foreach (var (method, s) in _methods.OrderBy(m => m.Key, StringComparer.Ordinal))
        {
            sb.Append(CultureInfo.InvariantCulture, $"coracle_datastore_requests_total{{method=\"{method}\"}} {Interlocked.Read(ref s.Count)}\n");
        }

        sb.Append("# HELP coracle_datastore_request_errors_total gRPC requests that failed, by method.\n# TYPE coracle_datastore_request_errors_total counter\n");
        foreach (var (method, s) in _methods.OrderBy(m => m.Key, StringComparer.Ordinal))
        {
            sb.Append(CultureInfo.InvariantCulture, $"coracle_datastore_request_errors_total{{method=\"{method}\"}} {Interlocked.Read(ref s.Errors)}\n");
        }

        sb.Append("# HELP coracle_datastore_request_duration_seconds gRPC request latency, by method.\n# TYPE coracle_datastore_request_duration_seconds histogram\n");
        foreach (var (method, s) in _methods.OrderBy(m => m.Key, StringComparer.Ordinal))
        {
            long cumulative = 0;
            for (var i = 0; i < Bounds.Length; i++)
            {
                cumulative += Interlocked.Read(ref s.Buckets[i]);
                sb.Append(CultureInfo.InvariantCulture, $"coracle_datastore_request_duration_seconds_bucket{{method=\"{method}\",le=\"{Bounds[i]}\"}} {cumulative}\n");
            }

            var count = Interlocked.Read(ref s.Count);
            sb.Append(CultureInfo.InvariantCulture, $"coracle_datastore_request_duration_seconds_bucket{{method=\"{method}\",le=\"+Inf\"}} {count}\n");
            sb.Append(CultureInfo.InvariantCulture, $"coracle_datastore_request_duration_seconds_sum{{method=\"{method}\"}} {TimeSpan.FromTicks(Interlocked.Read(ref s.Ticks)).TotalSeconds}\n");
            sb.Append(CultureInfo.InvariantCulture, $"coracle_datastore_request_duration_seconds_count{{method=\"{method}\"}} {count}\n");
        }

        var (size, inUse) = log.Read(s => s.DbSize());
        Gauge(sb, "coracle_datastore_db_size_bytes", "Allocated size of the database.", size);
        Gauge(sb, "coracle_datastore_db_size_in_use_bytes", "Size of the database in use.", inUse);
        Gauge(sb, "coracle_datastore_revision", "Newest revision.", log.Revision);
        Gauge(sb, "coracle_datastore_compact_revision", "Compacted revision.", log.CompactRevision);
        Counter(sb, "coracle_datastore_compactions_total", "Compactions finished.", log.Stats.Compactions);
        Counter(sb, "coracle_datastore_compacted_rows_total", "Rows removed by compaction.", log.Stats.CompactedRows);
        Counter(sb, "coracle_datastore_commits_total", "Write transactions committed (one fsync each).", log.Stats.Batches);
        Counter(sb, "coracle_datastore_committed_operations_total", "Write operations committed.", log.Stats.Operations);
        sb.Append(CultureInfo.InvariantCulture, $"# HELP coracle_datastore_commit_seconds_total Time spent committing.\n# TYPE coracle_datastore_commit_seconds_total counter\ncoracle_datastore_commit_seconds_total {log.Stats.CommitSeconds}\n");
        if (log.WriteEconomy)
        {
            Counter(sb, "coracle_datastore_volatile_batches_total", "Write batches that changed only volatile keys (no commit, no fsync).", log.Stats.VolatileBatches);
            Counter(sb, "coracle_datastore_volatile_flushes_total", "Flushes of volatile keys to disk.", log.Stats.VolatileFlushes);
            Counter(sb, "coracle_datastore_volatile_flushed_rows_total", "Rows of volatile keys written to disk.", log.Stats.VolatileFlushedRows);
            Counter(sb, "coracle_datastore_volatile_flushed_bytes_total", "Bytes of keys and values of volatile rows written to disk (48 per row added).", log.Stats.VolatileFlushedBytes);
            Gauge(sb, "coracle_datastore_volatile_unflushed_rows", "Rows of volatile keys not on disk yet.", log.VolatileRows.Unflushed);
        }

        Gauge(sb, "coracle_datastore_watchers", "Active watchers.", hub.Count);
        Gauge(sb, "coracle_datastore_leases", "Leases known to this server.", lessor.Count);
        return sb.ToString();
    }

    private static void Gauge(StringBuilder sb, string name, string help, long value) =>
        sb.Append(CultureInfo.InvariantCulture, $"# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n");

    private static void Counter(StringBuilder sb, string name, string help, long value) =>
        sb.Append(CultureInfo.InvariantCulture, $"# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n");

    private sealed class MethodStats
    {
        public long Count;
        public long Errors;
        public long Ticks;
        public long[] Buckets = new long[Bounds.Length];
    }
}
