using System.Diagnostics;
using System.Runtime.InteropServices;
using Coracle.Core.Addons;
using Coracle.Core.Composition;
using Coracle.Core.Configuration;
using Coracle.Core.Identity;
using Coracle.Core.Join;
using Coracle.Core.Kubernetes;
using Coracle.Core.Logging;
using Coracle.Core.Node;
using Coracle.Core.Status;
using Coracle.Core.Supervision;
using Coracle.Core.Tunnel;
using Coracle.Plugins;
using Microsoft.Extensions.Logging;

namespace Coracle.Core.Hosting;

/// <summary>
/// The steps <see cref="ServerStart"/> and <see cref="AgentStart"/> share, over one immutable configuration: naming and
/// reporting a step, the supervisor with the status socket and run record, configuring the selected plugins, the host
/// settings and the Kubernetes components, and running until a signal.
/// </summary>
internal sealed class NodeSteps
{
    private readonly StartPlan _plan;
    private readonly CoracleConfig _config;
    private readonly ILoggerFactory _loggers;
    private readonly ILogger _log;

    /// <summary>The one host model (cgroup version and driver, systemd, swap), decided once and handed to every plugin.</summary>
    private readonly HostFacts _host;
    private readonly Dictionary<string, string> _addonsOff = new(StringComparer.Ordinal);

    /// <summary>Steps over <paramref name="config"/> (the plan's, or an agent's after it joined), for a plan without errors.</summary>
    public NodeSteps(StartPlan plan, CoracleConfig config, ILoggerFactory loggers, HostFacts? host = null, PluginSelection? selection = null)
    {
        if (plan.Errors.Count > 0 || plan.Selection is null || plan.Catalog is null)
        {
            throw new ArgumentException("a plan with errors cannot be applied", nameof(plan));
        }

        _plan = plan;
        _config = config;
        _loggers = loggers;
        _log = loggers.CreateLogger("coracle");
        _host = host ?? HostFacts.Detect("/");
        _selection = selection ?? plan.Selection;
    }

    private readonly PluginSelection _selection;

    public CoracleConfig Config => _config;

    public ILogger Log => _log;

    public HostFacts Host => _host;

    public PluginSelection Selection => _selection;

    /// <summary>
    /// On a server that joined another: what the cluster's datastore plugin returned for it (<see cref="NodeSettings.DatastoreJoin"/>),
    /// set before step <c>configure plugins</c>; empty otherwise.
    /// </summary>
    public IReadOnlyDictionary<string, string> DatastoreJoin { get; set; } = new Dictionary<string, string>();

    /// <summary>On a server that joined another: that server's URL, shown by <c>coracle status</c>; null otherwise.</summary>
    public string? JoinedFrom { get; set; }

    /// <summary>What the manifests controller publishes about each add-on for <c>coracle status</c> (empty on an agent).</summary>
    public AddonBoard Addons { get; } = new();

    /// <summary>
    /// The add-on plugins that are off on this server (their <c>NAME.yaml</c> was removed in step <c>configure plugins</c>),
    /// name → why: <c>coracle status</c> lists them as disabled.
    /// </summary>
    public IReadOnlyDictionary<string, string> AddonsOff => _addonsOff;

    /// <summary>
    /// The same steps over another configuration (an agent's, once the server told it the cluster's). An agent selects again over the joined configuration: it runs the load balancer and ingress its server runs
    /// (<see cref="PluginSelector.AgentFollowsServer"/>), which its own plan could not know. When that selection fails (the
    /// server's plugin is not installed in this image), the plan's stays and the plugins the server does not run are off.
    /// </summary>
    public NodeSteps With(CoracleConfig config)
    {
        var selection = _selection;
        if (config.Role == "agent")
        {
            try
            {
                selection = PluginSelector.Select(_plan.Catalog!.Entries, config, PluginComposition.Architecture);
            }
            catch (CompositionException ex)
            {
                _log.AgentCannotFollow(string.Join("; ", ex.Messages));
            }
        }

        return new(_plan, config, _loggers, _host, selection);
    }

    /// <summary>Logs the start and what the plan selected.</summary>
    public void Starting(long elapsedMs)
    {
        _log.Starting(VersionInfo.Version, _config.Role, _config.DataDir, _config.ConfigFile ?? "(none; defaults)");
        var active = Selection.Decisions.Where(d => d.Selected).Select(d => $"{d.Entry.Point}={d.Entry.Name}");
        _log.Composed(string.Join(", ", active), _plan.Catalog!.Entries.Count, elapsedMs);
    }

    /// <summary>One named start-up step: logged, and any failure reported as <c>NAME: what went wrong</c>.</summary>
    public T Step<T>(string name, Func<T> body)
    {
        _log.Step(name);
        try
        {
            return body();
        }
        catch (Exception ex) when (IsStepFailure(ex))
        {
            throw new StepFailedException(name, ex);
        }
    }

    /// <inheritdoc cref="Step{T}(string, Func{T})"/>
    public void Step(string name, Action body) => Step(name, () =>
    {
        body();
        return true;
    });

    /// <inheritdoc cref="Step{T}(string, Func{T})"/>
    public async Task<T> StepAsync<T>(string name, Func<Task<T>> body)
    {
        _log.Step(name);
        try
        {
            return await body();
        }
        catch (Exception ex) when (IsStepFailure(ex))
        {
            throw new StepFailedException(name, ex);
        }
    }

    private static bool IsStepFailure(Exception ex) =>
        ex is not (ConfigException or CompositionException or StepFailedException or OperationCanceledException or OutOfMemoryException
            or Join.JoinException or Identity.TokenFormatException);

    /// <summary>The host's own pid record (<c>DATA/run/pids/coracle.pid</c>).</summary>
    public const string HostPidName = "coracle";

    /// <summary>The supervisor, the status socket and the run record (step <c>status</c>).</summary>
    public NodeRun OpenRun(DateTimeOffset startedAt)
    {
        // Every process the node starts is recorded (DATA/run/pids), the host too, so killall stops exactly these.
        var pids = PidRecords.DirFor(_config.RunDir);
        var supervisor = new Supervisor(_loggers, logDir: Path.Combine(_config.DataDir, "logs"), pidDir: pids);
        PidRecords.Record(pids, HostPidName, Environment.ProcessId);
        var status = new StatusServer(_config.StatusSocket, () => Snapshot(supervisor, Selection, startedAt, VersionInfo.Version), _log);
        var record = RunRecord.Claim(RunRecord.PathForThisProcess(), _config.DataDir, _log);
        return new NodeRun(supervisor, status, record, pids);
    }

    /// <summary>
    /// Starts the supervisor, waits for SIGTERM or SIGINT, then stops every component in reverse order. A
    /// <paramref name="threadPool"/> raised at start is put back once every component is ready (<see cref="StartupThreadPool"/>).
    /// </summary>
    public async Task<int> RunUntilStoppedAsync(Supervisor supervisor, Stopwatch clock, CancellationToken cancellationToken, StartupThreadPool? threadPool = null)
    {
        using var stopping = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx => Stop(ctx, supervisor, stopping, "SIGTERM"));
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, ctx => Stop(ctx, supervisor, stopping, "SIGINT"));

        // Components are not tied to the signal token: a signal cancels them all at once, while StopAsync below stops
        // them one by one in reverse dependency order (kube-apiserver before the datastore it needs to shut down).
        Step("start supervisor", () => supervisor.Start(CancellationToken.None));
        _log.SupervisorRunning(supervisor.Count, clock.ElapsedMilliseconds);
        _ = threadPool?.RestoreWhenSettledAsync(supervisor.Snapshot, _log);

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

    private void Stop(PosixSignalContext context, Supervisor supervisor, CancellationTokenSource stopping, string signal)
    {
        context.Cancel = true;
        _log.SignalReceived(signal);

        // The components that handle the signal themselves (Kestrel hosts) may end before StopAsync reaches them.
        supervisor.BeginShutdown();
        stopping.Cancel();
    }

    /// <summary>
    /// Kernel and cgroup settings the node components need: <c>net.ipv4.ip_forward=1</c> (the old value kept for
    /// killall), the kubelet's cgroup root and configuration file, and <c>DATA/run/node.json</c> for the tools.
    /// </summary>
    public KubeletHost PrepareHost(RuntimeEndpoint? runtime)
    {
        // Only a node that runs a kubelet changes the host; without the binary nothing is started, so nothing is touched.
        var kubeletRuns = File.Exists(Path.Combine(_config.ComponentsDir, "kubelet"));
        var facts = _host;
        var cgroupRoot = KubeletArg("cgroup-root") ?? CgroupRoot.For(facts, _config.NodeName);
        if (kubeletRuns)
        {
            var originals = Sysctls.Apply(Sysctls.Load(_config.RunDir));
            Sysctls.Save(_config.RunDir, originals);
            foreach (var (key, value) in Sysctls.Wanted)
            {
                _log.SysctlSet(key.Replace('/', '.'), value, originals.GetValueOrDefault(key, "?"));
            }

            var created = CgroupRoot.Ensure(facts, cgroupRoot);
            _log.HostDetected(facts.CgroupV2Unified ? "v2" : "v1", facts.CgroupDriver, cgroupRoot, created.Count, facts.SwapOn);
        }
        else
        {
            cgroupRoot = "/";
        }

        var host = new KubeletHost(facts.CgroupDriver, cgroupRoot, Path.Combine(_config.DataDir, "agent", "libexec", "kubernetes", "kubelet-plugins", "volume", "exec"))
        {
            Taints = _config.NodeTaints.Select(NodeRegistration.ParseTaint).OfType<NodeTaint>().ToList(),
            ProtectKernelDefaults = _config.ProtectKernelDefaults,
            PodLogsDir = _config.PodLogsDir,
        };
        new NodeState
        {
            Role = _config.Role,
            NodeName = _config.NodeName,
            CriSocket = runtime?.CriSocket,
            CgroupDriver = facts.CgroupDriver,
            CgroupRoot = cgroupRoot,
            KubeletRootDir = KubeletArg("root-dir") ?? "/var/lib/kubelet",
            ClusterCidr = _config.ClusterCidr.ToString(),
        }.Save(_config.RunDir);
        return host;
    }

    /// <summary>The value of a user's <c>--kubelet-arg NAME=VALUE</c>, the last one winning.</summary>
    private string? KubeletArg(string name) =>
        _config.KubeletArgs.Select(a => a.TrimStart('-')).LastOrDefault(a => a.StartsWith(name + "=", StringComparison.Ordinal))?[(name.Length + 1)..];

    public ConfiguredPlugins ConfigurePlugins(Supervisor supervisor)
    {
        var selection = Selection;
        DatastoreEndpoint? datastoreEndpoint = null;
        RuntimeEndpoint? runtimeEndpoint = null;
        var runtimeSupervisor = new RecordingSupervisor(supervisor);
        var node = _config.ToNodeSettings() with { CgroupDriver = _host.CgroupDriver, DatastoreJoin = DatastoreJoin };
        var manifests = new ManifestSink(ManifestSink.FolderFor(_config.DataDir));
        var certificates = new NodeCertificates(Path.Combine(_config.DataDir, _config.Role == "server" ? "server/tls" : "agent"));

        PluginContext ContextFor(PluginEntry entry, ISupervisor? recording = null) => new(
            node,
            _config.OptionsOf(entry.Name),
            FileUtil.PrivateDirectory(Path.Combine(_config.DataDir, "plugins", entry.Name)),
            entry.Folders.ToDictionary(f => f.Name, f => FileUtil.PrivateDirectory(f.Under(_config.DataDir)), StringComparer.Ordinal),
            _loggers.CreateLogger(entry.Name),
            _loggers,
            recording ?? supervisor,
            manifests,
            certificates);

        T? Create<T>(PluginEntry? entry)
            where T : class
        {
            if (entry is null)
            {
                return null;
            }

            if (PluginSelector.TurnedOffBy(entry, _config) is { } off)
            {
                // An agent's plugin that the server's cluster-wide setting switches off (the server selected without it).
                _log.TurnedOffByServer(entry.Point, entry.Name, off.Flag, Setting.PlainText(_config.Sources[off].Value));
                return null;
            }

            if (NotTheServers(entry))
            {
                _log.TurnedOffByServer(entry.Point, entry.Name, PluginSelector.FollowedSetting(entry.Point).Flag, PluginSelector.FollowedValue(_config, entry.Point));
                return null;
            }

            if (!entry.Metadata.Implemented)
            {
                _log.NotImplemented(entry.Point, entry.Name);
                supervisor.ReportUnavailable(entry.Name, $"{entry.Point} plugin {entry.Name} is not implemented in this build");
                return null;
            }

            return (T)_plan.Instance(entry);
        }

        void Guard(PluginEntry entry, Action action)
        {
            try
            {
                action();
            }
            catch (PluginConfigException ex)
            {
                throw new ConfigException(StartPlan.OptionPlace(_config, entry, ex.Key), ex.Message);
            }
            catch (Exception ex) when (ex is not ConfigException)
            {
                throw new InvalidOperationException($"{entry.Point} plugin {entry.Name} failed to configure: {ex.Message}", ex);
            }
        }

        foreach (var point in ExtensionPoints.All)
        {
            if (!selection.Active(point).Any() && point is not (ExtensionPoints.RuntimeHandler or ExtensionPoints.Addon))
            {
                _log.PointEmpty(point);
            }
        }

        if (selection.Single(ExtensionPoints.Datastore) is { } ds && Create<IDatastore>(ds) is { } datastore)
        {
            Guard(ds, () => datastoreEndpoint = datastore.Configure(ContextFor(ds)));

            // Everything the Kubernetes components need waits for the datastore: it opens now, while the other plugins
            // and the remaining steps are configured, instead of after the last step (docs/benchmarks.md).
            if (datastoreEndpoint?.ComponentName is { } datastoreComponent)
            {
                supervisor.StartEarly(datastoreComponent);
            }
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
            Guard(rt, () => runtimeEndpoint = runtime.Configure(ContextFor(rt, runtimeSupervisor), new RuntimeOptions
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

        TakeBackWhatIsOff(selection, manifests, node);

        // Add-ons, server only. An active one writes its NAME.yaml; one that is off (--disable NAME, a TurnsOff value, not
        // implemented) has that file removed, so the manifests controller deletes its objects from the cluster.
        var addons = selection.Decisions.Where(d => d.Entry.Point == ExtensionPoints.Addon && _config.Role == "server");
        foreach (var decision in addons.OrderBy(d => d.Entry.Name, StringComparer.Ordinal))
        {
            var entry = decision.Entry;
            if (decision.Selected && Create<IAddon>(entry) is { } addon)
            {
                Guard(entry, () => addon.Configure(ContextFor(entry)));
                continue;
            }

            var file = entry.Name + ".yaml";
            manifests.Remove(file);
            var why = decision.Selected ? "not implemented in this build" : decision.Why;
            _addonsOff[entry.Name] = why;
            _log.AddonOff(entry.Name, why, file);
        }

        return new ConfiguredPlugins(datastoreEndpoint, runtimeEndpoint, runtimeSupervisor.Added);
    }

    /// <summary>
    /// An ingress or service load balancer that is off this run (<c>--disable traefik</c>, another one chosen) takes back
    /// what an earlier run put in place: on a server its <c>NAME.yaml</c> manifest is removed, so the manifests controller
    /// deletes its objects, and its cleanup (<see cref="IPluginCleanup"/>) removes its host state, such as forwarding rules.
    /// Only these two points: a runtime's or CNI's cleanup would also hit a runtime or network the operator runs themselves.
    /// </summary>
    private void TakeBackWhatIsOff(PluginSelection selection, ManifestSink manifests, NodeSettings node)
    {
        var off = selection.Decisions.Where(d => d.Entry.Point is ExtensionPoints.Ingress or ExtensionPoints.LoadBalancer
            && (!d.Selected || PluginSelector.TurnedOffBy(d.Entry, _config) is not null || NotTheServers(d.Entry)));
        foreach (var decision in off.OrderBy(d => d.Entry.Name, StringComparer.Ordinal))
        {
            var entry = decision.Entry;
            if (_config.Role == "server")
            {
                manifests.Remove(entry.Name + ".yaml");
            }

            if (entry.Metadata.HasCleanup && entry.Metadata.Implemented && entry.Create() is IPluginCleanup cleanup)
            {
                var log = _loggers.CreateLogger(entry.Name);
                _log.PluginOffCleanup(entry.Point, entry.Name, decision.Selected ? "turned off by the server's settings" : decision.Why);
                try
                {
                    cleanup.CleanupAsync(node, _config.OptionsOf(entry.Name), log, CancellationToken.None).GetAwaiter().GetResult();
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    throw new InvalidOperationException($"{entry.Point} plugin {entry.Name} is off, and removing what an earlier run set up failed: {ex.Message}; run coracle killall, then start again", ex);
                }
            }
        }
    }

    /// <summary>An agent's plugin of a point it runs as the server decides (load balancer, ingress), which the server does not run.</summary>
    private bool NotTheServers(PluginEntry entry) =>
        _config.Role != "server" && PluginSelector.AgentFollowsServer.Contains(entry.Point)
        && !string.Equals(PluginSelector.FollowedValue(_config, entry.Point), entry.Name, StringComparison.OrdinalIgnoreCase);

    /// <summary>The Kubernetes components of the role (step <c>kubernetes components</c>); true when kube-apiserver is among them.</summary>
    public KubernetesPaths? RegisterKubernetesComponents(
        Supervisor supervisor, ConfiguredPlugins plugins, string? egressSocket, KubeletHost kubeletHost, string? encryptionConfig = null)
    {
        var (datastore, runtime, runtimeComponents) = plugins;
        var server = _config.Role == "server";
        var nodeIps = ClusterCertificates.NodeAddresses(_config);
        var paths = new KubernetesPaths
        {
            TlsDir = ClusterCertificates.TlsDir(_config.DataDir),
            CredDir = ServerIdentity.CredDir(_config.DataDir),
            NodeCredDir = server ? null : AgentJoin.AgentDir(_config.DataDir),
            DatastoreServers = datastore?.Servers ?? [],
            DatastoreTls = datastore?.Tls ?? (datastore?.Servers.Any(s => s.StartsWith("https://", StringComparison.Ordinal)) == true
                ? new TlsFiles(
                    Path.Combine(ClusterCertificates.TlsDir(_config.DataDir), "datastore-client.crt"),
                    Path.Combine(ClusterCertificates.TlsDir(_config.DataDir), "datastore-client.key"),
                    Path.Combine(ClusterCertificates.TlsDir(_config.DataDir), "datastore-ca.crt"))
                : null),
            EgressSelectorConfigFile = server && egressSocket is not null ? Kubernetes.KubernetesComponents.WriteEgressSelectorConfiguration(_config.DataDir, egressSocket) : null,
            EncryptionProviderConfigFile = server ? encryptionConfig : null,
            CriSocket = runtime?.CriSocket ?? "",
            AdvertiseAddress = nodeIps.Count > 0 ? nodeIps[0].ToString() : "",
            NodeIp = string.Join(",", nodeIps.Take(2).Select(a => a.ToString())),
            KubeletAddress = server ? "0.0.0.0" : "127.0.0.1",
            VolumePluginDir = kubeletHost.VolumePluginDir,
        };
        var serving = KubeletServing.For(paths, _config.ClusterDns.ToString(), _config.ClusterDomain, KubeletConfig.ResolvConf());
        paths = paths with { KubeletConfigFile = KubeletConfig.Write(Path.Combine(_config.DataDir, "agent", "etc", "kubelet.conf.yaml"), kubeletHost, serving) };
        var specs = Kubernetes.KubernetesComponents.Build(
            _config,
            paths,
            datastore?.ComponentName,
            runtime?.ComponentName,
            File.Exists,
            supervisor.ReportUnavailable,
            runtimeComponents.Where(n => n != runtime?.ComponentName).ToList());
        Kubernetes.KubernetesComponents.Register(supervisor, _log, specs);
        return specs.Any(s => s.Name == WellKnownComponents.KubeApiServer) ? paths : null;
    }

    /// <summary>
    /// Certificate renewal while the node runs (<see cref="Identity.CertificateRenewer"/>): <paramref name="renewDue"/>
    /// renews what is due; then every component that loads certificates only at start is restarted, in start order.
    /// </summary>
    public void RegisterCertificateRenewal(Supervisor supervisor, IReadOnlyList<string> directories, Func<CancellationToken, Task<IReadOnlyList<string>>> renewDue)
    {
        var renewer = new Identity.CertificateRenewer(directories, renewDue,
            (reason, ct) => supervisor.RestartAsync(s => s.RestartOnCertificateRenewal, reason, TimeSpan.FromMinutes(2), ct),
            _loggers.CreateLogger("certificates"));
        supervisor.Add(new InProcessComponent
        {
            Name = "certificates",
            Run = renewer.RunAsync,
            Readiness = new CustomProbe(_ => Task.FromResult(renewer.Ready)),
            Restart = _config.Restart,
            StopTimeout = _config.StopTimeout,
        });
    }

    /// <summary>The cluster roles Coracle's own controllers need, applied once kube-apiserver answers.</summary>
    public void RegisterClusterRbac(Supervisor supervisor, KubernetesPaths paths)
    {
        var applied = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var log = _loggers.CreateLogger("cluster-rbac");
        supervisor.Add(new InProcessComponent
        {
            Name = "cluster-rbac",
            DependsOn = ["kube-apiserver"],
            Readiness = new CustomProbe(_ => Task.FromResult(applied.Task.IsCompleted)),
            Restart = _config.Restart,
            StopTimeout = _config.StopTimeout,
            Run = async cancellationToken =>
            {
                await ClusterRbac.ApplyAsync(new Uri($"https://127.0.0.1:{_config.HttpsListenPort}"), paths.Tls("server-ca.crt"),
                    paths.Tls("client-admin.crt"), paths.Tls("client-admin.key"), log, TimeProvider.System, cancellationToken);
                applied.TrySetResult();
                await Task.Delay(Timeout.Infinite, cancellationToken);
            },
        });
    }

    private NodeStatus Snapshot(Supervisor supervisor, PluginSelection selection, DateTimeOffset startedAt, string version) => new(
        _config.Role,
        _config.NodeName,
        version,
        Environment.ProcessId,
        startedAt,
        supervisor.Snapshot().Select(c => new ComponentView(c.Name, c.Kind, c.State.ToString().ToLowerInvariant(), c.Pid, c.Restarts, c.Since, c.Detail)).ToList(),
        PluginViews(selection),
        Addons.Rows.Select(a => new AddonView(a.Name, a.Source, a.State, a.Objects, a.PodsReady, a.PodsWanted, a.MissingImages, a.Detail)).ToList(),
        JoinedFrom);

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

/// <summary>What configuring the plugins produced for the Kubernetes components.</summary>
internal sealed record ConfiguredPlugins(DatastoreEndpoint? Datastore, RuntimeEndpoint? Runtime, IReadOnlyList<string> RuntimeComponents);

/// <summary>The supervisor with the status socket and the run record, released together when the node stops.</summary>
internal sealed class NodeRun(Supervisor supervisor, StatusServer status, RunRecord? record, string pidDir) : IAsyncDisposable
{
    public Supervisor Supervisor => supervisor;

    public async ValueTask DisposeAsync()
    {
        // A start-up step failed after a component started early (the datastore): it stops here. After a run the
        // components are already stopped, and stopping them again changes nothing.
        await supervisor.StopAsync();
        await status.DisposeAsync();
        record?.Dispose();
        PidRecords.Remove(pidDir, NodeSteps.HostPidName, Environment.ProcessId);
    }
}
