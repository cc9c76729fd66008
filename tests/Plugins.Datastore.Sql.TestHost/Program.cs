using Coracle.Plugins.Datastore.Sql;
using Coracle.Plugins.Datastore.Sql.Storage;
using Microsoft.Extensions.Logging.Abstractions;

// Runs the SQLite datastore as its own process so tests can kill -9 it.
// Usage: TestHost <database-file> <unix-socket>
if (args.Length != 2)
{
    await Console.Error.WriteLineAsync("usage: Coracle.Plugins.Datastore.Sql.TestHost <database-file> <unix-socket>");
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
var server = new EtcdServer(new EtcdServerOptions { Dialect = SqlDialects.Sqlite(args[0]), UnixSocket = args[1] }, NullLoggerFactory.Instance);
var run = server.RunAsync(stop.Token);
await server.Ready;
Console.WriteLine($"READY {Environment.ProcessId}");
await run;
return 0;
