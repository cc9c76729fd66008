using System.Globalization;
using System.Runtime.InteropServices;
using Coracle.Plugins.Datastore.Sql;
using Coracle.Plugins.Datastore.Sql.Storage;
using Microsoft.Extensions.Logging.Abstractions;

// The SQL datastore alone, as coracle's sqlite plugin runs it by default (write economy on), on DIR/etcd.sock, until
// SIGTERM or SIGINT; prints "READY pid PID" once it serves. usage: Coracle.Bench.AotDatastore DIR
if (args.Length != 1)
{
    await Console.Error.WriteLineAsync("usage: Coracle.Bench.AotDatastore DIR");
    return 2;
}

var dir = args[0];
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
    new EtcdServerOptions
    {
        Dialect = SqlDialects.Sqlite(Path.Combine(dir, "state.db")),
        UnixSocket = Path.Combine(dir, "etcd.sock"),
        Log = new RevisionLogOptions { VolatilePrefixes = SqlDatastoreConfigurator.DefaultVolatilePrefixes.Split(',') },
    },
    NullLoggerFactory.Instance);
var run = server.RunAsync(stop.Token);
await server.Ready;
Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"READY pid {Environment.ProcessId}"));
await run;
return 0;
