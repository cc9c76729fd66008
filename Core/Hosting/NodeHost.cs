using System.Diagnostics;
using System.Runtime.InteropServices;
using Coracle.Core.Composition;
using Coracle.Core.Configuration;
using Coracle.Core.Logging;
using Coracle.Core.Status;
using Coracle.Core.Supervision;
using Coracle.Plugins;
using Microsoft.Extensions.Logging;

namespace Coracle.Core.Hosting;

/// <summary>
/// <c>coracle server</c> / <c>coracle agent</c>: a flat list of named steps, then the supervisor runs until
/// SIGINT or SIGTERM, then everything stops in reverse order.
/// </summary>
internal sealed class NodeHost
{
    /// <summary>The Kubernetes binaries each role runs, in start order.</summary>
    public static IReadOnlyDictionary<string, string[]> KubernetesComponents { get; } = new Dictionary<string, string[]>
    {
        ["server"] = ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy"],
        ["agent"] = ["kubelet", "kube-proxy"],
    };

    private readonly CoracleConfig _config;
    private readonly ILoggerFactory _loggers;
    private readonly ILogger _log;

    public NodeHost(CoracleConfig config, ILoggerFactory loggers)
    {
        _config = config;
        _loggers = loggers;
        _log = loggers.CreateLogger("coracle");
    }

    public async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var startedAt = DateTimeOffset.UtcNow;
        var version = VersionInfo.Version;
        _log.Starting(version, _config.Role, _config.DataDir, _config.ConfigFile ?? "(none; defaults)");

        _log.Step("data dir");
        FileUtil.PrivateDirectory(_config.DataDir);
        FileUtil.PrivateDirectory(_config.RunDir);

        _log.Step("compose plugins");
        var (catalog, selection) = PluginComposition.Compose(_config);
        var active = selection.Decisions.Where(d => d.Selected).Select(d => $"{d.Entry.Point}={d.Entry.Name}");
        _log.Composed(string.Join(", ", active), catalog.Entries.Count, clock.ElapsedMilliseconds);

        var supervisor = new Supervisor(_loggers);
        await using var status = new StatusServer(_config.StatusSocket, () => Snapshot(supervisor, selection, startedAt, version), _log);

        _log.Step("configure plugins");
        ConfigurePlugins(selection, supervisor);

        _log.Step("kubernetes components");
        ReportKubernetesComponents(supervisor);

        using var stopping = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx => Stop(ctx, stopping, "SIGTERM"));
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, ctx => Stop(ctx, stopping, "SIGINT"));

        _log.Step("start supervisor");
        supervisor.Start(stopping.Token);
        _log.SupervisorRunning(supervisor.Count, clock.ElapsedMilliseconds);

        try
        {
            await Task.Delay(Timeout.Infinite, stopping.Token);
        }
        catch (OperationCanceledException)
        {
        }

        await supervisor.StopAsync();
        _log.Stopped();
        return ExitCodes.Ok;
    }

    private void Stop(PosixSignalContext context, CancellationTokenSource stopping, string signal)
    {
        context.Cancel = true;
        _log.SignalReceived(signal);
        stopping.Cancel();
    }

    private void ConfigurePlugins(PluginSelection selection, Supervisor supervisor)
    {
        var node = _config.ToNodeSettings();
        var manifests = new ManifestSink(Path.Combine(_config.DataDir, "server", "manifests"));
        var certificates = new NodeCertificates(Path.Combine(_config.DataDir, _config.Role == "server" ? "server/tls" : "agent"));

        PluginContext ContextFor(PluginEntry entry) => new(
            node,
            _config.PluginOptions.TryGetValue(entry.Name, out var options) ? options : new Dictionary<string, string>(),
            FileUtil.PrivateDirectory(Path.Combine(_config.DataDir, "plugins", entry.Name)),
            _loggers.CreateLogger(entry.Name),
            _loggers,
            supervisor,
            manifests,
            certificates);

        T? Create<T>(PluginEntry? entry)
            where T : class
        {
            if (entry is null)
            {
                return null;
            }

            if (!entry.Metadata.Implemented)
            {
                _log.NotImplemented(entry.Point, entry.Name);
                supervisor.ReportUnavailable(entry.Name, $"{entry.Point} plugin {entry.Name} is not implemented in this build");
                return null;
            }

            return (T)entry.Create();
        }

        void Guard(PluginEntry entry, Action action)
        {
            try
            {
                action();
            }
            catch (PluginConfigException ex)
            {
                var where = _config.ConfigFile is null ? $"[plugins.{entry.Name}] {ex.Key}" : $"{_config.ConfigFile}: [plugins.{entry.Name}] {ex.Key}";
                throw new ConfigException(where, ex.Message);
            }
            catch (Exception ex) when (ex is not ConfigException)
            {
                throw new InvalidOperationException($"{entry.Point} plugin {entry.Name} failed to configure: {ex.Message}", ex);
            }
        }

        foreach (var point in ExtensionPoints.All)
        {
            if (!selection.Active(point).Any() && point != ExtensionPoints.RuntimeHandler)
            {
                _log.PointEmpty(point);
            }
        }

        if (selection.Single(ExtensionPoints.Datastore) is { } ds && Create<IDatastore>(ds) is { } datastore)
        {
            Guard(ds, () => datastore.Configure(ContextFor(ds)));
        }

        var handlers = new List<RuntimeHandler>();
        foreach (var entry in selection.Active(ExtensionPoints.RuntimeHandler))
        {
            if (Create<IRuntimeHandlerProvider>(entry) is { } provider)
            {
                Guard(entry, () => handlers.AddRange(provider.Discover(ContextFor(entry))));
            }
        }

        CniSettings? cniSettings = null;
        if (selection.Single(ExtensionPoints.Cni) is { } cniEntry && Create<ICniPlugin>(cniEntry) is { } cni)
        {
            Guard(cniEntry, () => cniSettings = cni.Configure(ContextFor(cniEntry)));
        }

        if (selection.Single(ExtensionPoints.ContainerRuntime) is { } rt && Create<IContainerRuntime>(rt) is { } runtime)
        {
            Guard(rt, () => runtime.Configure(ContextFor(rt), new RuntimeOptions
            {
                Handlers = handlers,
                CniBinDir = cniSettings?.BinDir,
                CniConfDir = cniSettings?.ConfDir,
            }));
        }

        if (selection.Single(ExtensionPoints.Ingress) is { } ing && Create<IIngressController>(ing) is { } ingress)
        {
            Guard(ing, () => ingress.Configure(ContextFor(ing)));
        }

        if (selection.Single(ExtensionPoints.LoadBalancer) is { } lbEntry && Create<IServiceLoadBalancer>(lbEntry) is { } lb)
        {
            Guard(lbEntry, () => lb.Configure(ContextFor(lbEntry)));
        }
    }

    private void ReportKubernetesComponents(Supervisor supervisor)
    {
        foreach (var name in KubernetesComponents[_config.Role])
        {
            var path = Path.Combine(_config.ComponentsDir, name);
            supervisor.ReportUnavailable(name, File.Exists(path)
                ? $"found {path}, but this build does not run Kubernetes components yet"
                : $"binary not found in {_config.ComponentsDir} (set components-dir or CORACLE_K8S_BIN)");
        }
    }

    private NodeStatus Snapshot(Supervisor supervisor, PluginSelection selection, DateTimeOffset startedAt, string version) => new(
        _config.Role,
        _config.NodeName,
        version,
        Environment.ProcessId,
        startedAt,
        supervisor.Snapshot().Select(c => new ComponentView(c.Name, c.Kind, c.State.ToString().ToLowerInvariant(), c.Pid, c.Restarts, c.Since, c.Detail)).ToList(),
        PluginViews(selection));

    public static List<PluginView> PluginViews(PluginSelection selection) =>
        selection.Decisions.Select(d => new PluginView(
            d.Entry.Name,
            d.Entry.Point,
            d.Entry.Version,
            d.Entry.Metadata.Architectures.Count == 0 ? "any" : string.Join("/", d.Entry.Metadata.Architectures),
            d.Selected,
            d.Why,
            d.Entry.Folder)).ToList();
}
