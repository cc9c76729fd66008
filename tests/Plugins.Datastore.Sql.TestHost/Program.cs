using Coracle.Plugins.Datastore.Sql;
using Coracle.Plugins.Datastore.Sql.Storage;
using Microsoft.Extensions.Logging.Abstractions;

// Runs the SQLite datastore as its own process so tests can kill -9 it.
// Usage: TestHost <database-file> <unix-socket> [<volatile-prefixes,comma-separated> <flush-interval-ms>]
if (args.Length != 2 && args.Length != 4)
{
    await Console.Error.WriteLineAsync("usage: Coracle.Plugins.Datastore.Sql.TestHost <database-file> <unix-socket> [<volatile-prefixes> <flush-interval-ms>]");
    return 2;
}

using var stop = new CancellationTokenSource();
using var term = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, c =>
{
    c.Cancel = true;
    stop.Cancel();
});
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    stop.Cancel();
};
var options = new EtcdServerOptions { Dialect = SqlDialects.Sqlite(args[0]), UnixSocket = args[1] };
if (args.Length == 4)
{
    options = options with
    {
        Log = options.Log with
        {
            VolatilePrefixes = args[2].Split(','),
            VolatileFlushInterval = TimeSpan.FromMilliseconds(int.Parse(args[3], System.Globalization.CultureInfo.InvariantCulture)),
        },
    };
}

var server = new EtcdServer(options, NullLoggerFactory.Instance);
var run = server.RunAsync(stop.Token);
await server.Ready;
Console.WriteLine($"READY {Environment.ProcessId}");
await run;
return 0;
