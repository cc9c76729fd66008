using System.Globalization;
using System.Runtime.InteropServices;
using Coracle.Bench.Etcd;
using Coracle.Plugins.Datastore.Sql;
using Coracle.Plugins.Datastore.Sql.Storage;
using Microsoft.Extensions.Logging.Abstractions;

// etcd v3 benchmark for any endpoint (real etcd, Coracle, kine...). See docs/benchmarks.md.
BenchOptions options;
try
{
    options = BenchOptions.Parse(args);
}
catch (ArgumentException e)
{
    await Console.Error.WriteLineAsync(e.Message);
    await Console.Error.WriteLineAsync(BenchOptions.Usage);
    return 2;
}

if (options.Serve is { } dir)
{
    return await ServeAsync(dir, options);
}

if (options.Targets.Count > 0)
{
    await Bench.CompareAsync(options);
    return 0;
}

await using var bench = new Bench(options);
if (options.Churn > 0)
{
    await bench.ChurnAsync();
}
else if (options.Heartbeat > 0)
{
    await bench.HeartbeatAsync();
}
else
{
    await bench.RunWorkloadsAsync();
}

return 0;

// Hosts Coracle on SQLite (default settings: synchronous=FULL, compaction every 5 min keeping 1000 revisions) until SIGINT/SIGTERM.
static async Task<int> ServeAsync(string dir, BenchOptions o)
{
    Directory.CreateDirectory(dir);
    using var stop = new CancellationTokenSource();
    using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c =>
    {
        c.Cancel = true;
        stop.Cancel();
    });
    using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, c =>
    {
        c.Cancel = true;
        stop.Cancel();
    });
    var server = new EtcdServer(
        new EtcdServerOptions { Dialect = SqlDialects.Sqlite(Path.Combine(dir, "state.db")), UnixSocket = Path.Combine(dir, "etcd.sock"), InsecureListenAddress = o.Listen, CompactInterval = o.CompactInterval, Log = new RevisionLogOptions
        {
            IdleCheckpoint = o.IdleCheckpoint,
            VolatilePrefixes = o.WriteEconomy ? SqlDatastoreConfigurator.DefaultVolatilePrefixes.Split(',') : [],
            VolatileFlushInterval = o.VolatileFlushInterval,
        } },
        NullLoggerFactory.Instance);
    var run = server.RunAsync(stop.Token);
    await server.Ready;
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"READY pid {Environment.ProcessId} {string.Join(' ', server.ClientUrls)}"));
    await run;
    return 0;
}
