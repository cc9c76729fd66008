using System.Runtime.InteropServices;
using Coracle.Plugins;
using Coracle.Plugins.Cni.Flannel;
using Microsoft.Extensions.Logging;

// Runs the flannel plugin's "flannel" component (Configure, then the registered InProcessComponent body) inside
// whatever network namespace it was started in (`ip netns exec NS dotnet Coracle.Plugins.Cni.TestHost.dll ...`),
// until SIGTERM. Prints "READY <detail>" once ready and "DETAIL <detail>" on every change, logs to stderr.
// Usage: --node NAME --backend B --iface IF --cluster-cidr CIDR --data-dir DIR [key=value plugin options...]
//        ping ADDRESS [TRIES]   (ICMP echo through raw sockets, since Debian's minimal images have no ping binary)
if (args is ["ping", var target, ..])
{
    var tries = args.Length > 2 ? int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 5;
    using var pinger = new System.Net.NetworkInformation.Ping();
    for (var attempt = 0; attempt < tries; attempt++)
    {
        try
        {
            var reply = await pinger.SendPingAsync(System.Net.IPAddress.Parse(target), TimeSpan.FromSeconds(1));
            Console.Out.WriteLine($"ping {target}: {reply.Status}");
            if (reply.Status == System.Net.NetworkInformation.IPStatus.Success)
            {
                return 0;
            }
        }
        catch (System.Net.NetworkInformation.PingException e)
        {
            Console.Out.WriteLine($"ping {target}: {e.InnerException?.Message ?? e.Message}");
            await Task.Delay(500);
        }
    }

    return 1;
}

var named = new Dictionary<string, string>(StringComparer.Ordinal);
var options = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
for (var i = 0; i < args.Length; i++)
{
    if (args[i].StartsWith("--", StringComparison.Ordinal) && i + 1 < args.Length)
    {
        named[args[i][2..]] = args[++i];
    }
    else if (args[i].Split('=', 2) is [var key, var value])
    {
        options[key] = value;
    }
}

var dataDir = named["data-dir"];
options["backend"] = named.GetValueOrDefault("backend", "vxlan");
options["iface"] = named.GetValueOrDefault("iface", "");
var node = new NodeSettings
{
    Role = "agent",
    NodeName = named["node"],
    DataDir = dataDir,
    RunDir = Path.Combine(dataDir, "run"),
    ComponentsDir = Path.Combine(dataDir, "components"),
    Architecture = RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant(),
    ClusterCidr = named.GetValueOrDefault("cluster-cidr", "10.42.0.0/16"),
    ServiceCidr = "10.43.0.0/16",
    ClusterDns = "10.43.0.10",
    ClusterDomain = "cluster.local",
    PauseImage = "pause",
};

using var loggerFactory = new StderrLoggerFactory();
var context = new HostContext(node, options, loggerFactory);
var plugin = new FlannelPlugin();
var cni = plugin.Configure(context);
Console.Out.WriteLine($"CNI {cni.BinDir} {cni.ConfDir}");
var component = context.Components.OfType<InProcessComponent>().Single(c => c.Name == FlannelPlugin.ComponentName);
var probe = (CustomProbe)component.Readiness!;

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

var run = component.Run(stop.Token);
var announced = false;
while (!run.IsCompleted)
{
    if (!announced && await probe.Check(stop.Token).ContinueWith(t => t.IsCompletedSuccessfully && t.Result, TaskScheduler.Default))
    {
        announced = true;
        Console.Out.WriteLine("READY " + context.Detail);
    }

    await Task.WhenAny(run, Task.Delay(100, CancellationToken.None));
}

try
{
    await run;
}
catch (OperationCanceledException) when (stop.IsCancellationRequested)
{
    Console.Out.WriteLine("STOPPED");
    return 0;
}
catch (Exception e)
{
    Console.Error.WriteLine("FAILED " + e);
    return 1;
}

return 0;

internal sealed class HostContext(NodeSettings node, IReadOnlyDictionary<string, string> options, ILoggerFactory loggerFactory)
    : IPluginContext, ISupervisor, IManifestSink
{
    private readonly Lock _lock = new();
    private string _detail = "";

    public List<ComponentSpec> Components { get; } = [];

    public string Detail
    {
        get
        {
            lock (_lock)
            {
                return _detail;
            }
        }
    }

    public NodeSettings Node => node;

    public IReadOnlyDictionary<string, string> Options => options;

    public string PluginDataDir => Path.Combine(node.DataDir, "plugins", "flannel");

    public IReadOnlyDictionary<string, string> Folders => PluginFolderAttribute.Resolve(typeof(FlannelPlugin), node.DataDir);

    public ILogger Logger => loggerFactory.CreateLogger("flannel-plugin");

    public ILoggerFactory LoggerFactory => loggerFactory;

    public ISupervisor Supervisor => this;

    public IManifestSink Manifests => this;

    public INodeCertificates Certificates => throw new NotSupportedException("flannel uses no certificates");

    public void Add(ComponentSpec component) => Components.Add(component);

    public Task WaitReadyAsync(string name, CancellationToken cancellationToken) => throw new NotSupportedException();

    public void ReportUnavailable(string name, string reason) => Console.Error.WriteLine($"UNAVAILABLE {name}: {reason}");

    public void ReportDetail(string name, string detail)
    {
        lock (_lock)
        {
            if (_detail == detail)
            {
                return;
            }

            _detail = detail;
        }

        Console.Out.WriteLine("DETAIL " + detail);
    }

    public void Write(string name, string yaml)
    {
    }

    public void Remove(string name)
    {
    }
}

internal sealed class StderrLoggerFactory : ILoggerFactory
{
    public void AddProvider(ILoggerProvider provider)
    {
    }

    public ILogger CreateLogger(string categoryName) => new StderrLogger(categoryName);

    public void Dispose()
    {
    }

    private sealed class StderrLogger(string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Console.Error.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} {logLevel} {category}: {formatter(state, exception)}");
    }
}
