using System.Diagnostics;
using System.Runtime.InteropServices;
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
/// <c>coracle server</c> / <c>coracle agent</c>: a flat list of named steps, then the supervisor runs until
/// SIGINT or SIGTERM, then everything stops in reverse order.
/// </summary>
internal sealed class NodeHost
{
    /// <summary>The Kubernetes binaries each role runs, in start order.</summary>
    public static IReadOnlyDictionary<string, string[]> KubernetesComponents => Kubernetes.KubernetesComponents.ByRole;

    private readonly StartPlan _plan;
    private CoracleConfig _config;
    private readonly ILoggerFactory _loggers;
    private readonly ILogger _log;

    /// <summary>The one host model: cgroup version and driver, systemd, swap — decided here, handed to every plugin.</summary>
    private readonly HostFacts _host = HostFacts.Detect("/");

    /// <summary>Applies <paramref name="plan"/>, which must hold no errors.</summary>
    public NodeHost(StartPlan plan, ILoggerFactory loggers)
    {
        if (plan.Errors.Count > 0 || plan.Selection is null)
        {
            throw new ArgumentException("a plan with errors cannot be applied", nameof(plan));
        }

        _plan = plan;
        _config = plan.Config;
        _loggers = loggers;
        _log = loggers.CreateLogger("coracle");
    }

    public async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var startedAt = DateTimeOffset.UtcNow;
        var version = VersionInfo.Version;
        _log.Starting(version, _config.Role, _config.DataDir, _config.ConfigFile ?? "(none; defaults)");

        // The plan (configuration, plugin selection, plugin options) is checked; from here on the disk changes, and the
        // first change is taking the data dir's lock, so a second node on a live data dir changes nothing.
        var selection = _plan.Selection!;
        var active = selection.Decisions.Where(d => d.Selected).Select(d => $"{d.Entry.Point}={d.Entry.Name}");
        _log.Composed(string.Join(", ", active), _plan.Catalog!.Entries.Count, clock.ElapsedMilliseconds);

        using var dataDirLock = Step("data dir", () => DataDirLock.Acquire(_config.DataDir, _config.RunDir));

        ServerIdentity? identity = null;
        if (_config.Role == "server")
        {
            identity = Step("certificates, token and kubeconfigs", () => ServerIdentity.Prepare(_config, _log));
        }

        AgentIdentity? agent = null;
        if (_config.Role == "agent")
        {
            _log.Step("join server");
            agent = await AgentJoin.JoinAsync(_config, _log, cancellationToken);
            _config = _config with
            {
                ClusterCidr = System.Net.IPNetwork.Parse(agent.Cluster.ClusterCidr),
                ServiceCidr = System.Net.IPNetwork.Parse(agent.Cluster.ServiceCidr),
                ClusterDns = System.Net.IPAddress.Parse(agent.Cluster.ClusterDns),
                ClusterDomain = agent.Cluster.ClusterDomain,
                FlannelBackend = agent.Cluster.FlannelBackend,
            };
        }

        var supervisor = new Supervisor(_loggers, logDir: Path.Combine(_config.DataDir, "logs"));
        await using var status = new StatusServer(_config.StatusSocket, () => Snapshot(supervisor, selection, startedAt, version), _log);
        using var record = RunRecord.Claim(RunRecord.PathForThisProcess(), _config.DataDir, _log);

        var (datastoreEndpoint, runtimeEndpoint, runtimeComponents) = Step("configure plugins", () => ConfigurePlugins(selection, supervisor));
        var kubeletHost = Step("host settings", () => PrepareHost(runtimeEndpoint));

        var tunnels = new TunnelRegistry();
        string? egressSocket = null;
        if (identity is not null)
        {
            _log.Step("join api and egress proxy");
            egressSocket = RegisterJoinApi(supervisor, identity, tunnels);
        }
        else if (agent is not null)
        {
            _log.Step("tunnel");
            RegisterTunnelClient(supervisor, agent);
        }

        Step("kubernetes components", () =>
        {
            RegisterKubernetesComponents(supervisor, datastoreEndpoint, runtimeEndpoint, runtimeComponents, egressSocket, kubeletHost);
            return true;
        });

        using var stopping = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx => Stop(ctx, stopping, "SIGTERM"));
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, ctx => Stop(ctx, stopping, "SIGINT"));

        // Components are not tied to the signal token: a signal cancels them all at once, while StopAsync below stops
        // them one by one in reverse dependency order (kube-apiserver before the datastore it needs to shut down).
        Step("start supervisor", () =>
        {
            supervisor.Start(CancellationToken.None);
            return true;
        });
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

    /// <summary>One named start-up step: logged, and any failure reported as <c>NAME: what went wrong</c>.</summary>
    private T Step<T>(string name, Func<T> body)
    {
        _log.Step(name);
        try
        {
            return body();
        }
        catch (Exception ex) when (ex is not (ConfigException or CompositionException or StepFailedException or OperationCanceledException or OutOfMemoryException))
        {
            throw new StepFailedException(name, ex);
        }
    }

    private void Stop(PosixSignalContext context, CancellationTokenSource stopping, string signal)
    {
        context.Cancel = true;
        _log.SignalReceived(signal);
        stopping.Cancel();
    }

    /// <summary>
    /// Kernel and cgroup settings the node components need: <c>net.ipv4.ip_forward=1</c> (the old value kept for
    /// killall), the kubelet's cgroup root and configuration file, and <c>DATA/run/node.json</c> for the tools.
    /// </summary>
    private KubeletHost PrepareHost(RuntimeEndpoint? runtime)
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

        var host = new KubeletHost(facts.CgroupDriver, cgroupRoot, Path.Combine(_config.DataDir, "agent", "libexec", "kubernetes", "kubelet-plugins", "volume", "exec"));
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

    private (DatastoreEndpoint? Datastore, RuntimeEndpoint? Runtime, IReadOnlyList<string> RuntimeComponents) ConfigurePlugins(PluginSelection selection, Supervisor supervisor)
    {
        DatastoreEndpoint? datastoreEndpoint = null;
        RuntimeEndpoint? runtimeEndpoint = null;
        var runtimeSupervisor = new RecordingSupervisor(supervisor);
        var node = _config.ToNodeSettings() with { CgroupDriver = _host.CgroupDriver };
        var manifests = new ManifestSink(Path.Combine(_config.DataDir, "server", "manifests"));
        var certificates = new NodeCertificates(Path.Combine(_config.DataDir, _config.Role == "server" ? "server/tls" : "agent"));

        PluginContext ContextFor(PluginEntry entry, ISupervisor? recording = null) => new(
            node,
            _config.PluginOptions.TryGetValue(entry.Name, out var options) ? options : new Dictionary<string, string>(),
            FileUtil.PrivateDirectory(Path.Combine(_config.DataDir, "plugins", entry.Name)),
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
            if (!selection.Active(point).Any() && point != ExtensionPoints.RuntimeHandler)
            {
                _log.PointEmpty(point);
            }
        }

        if (selection.Single(ExtensionPoints.Datastore) is { } ds && Create<IDatastore>(ds) is { } datastore)
        {
            Guard(ds, () => datastoreEndpoint = datastore.Configure(ContextFor(ds)));
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

        return (datastoreEndpoint, runtimeEndpoint, runtimeSupervisor.Added);
    }

    private string? RegisterJoinApi(Supervisor supervisor, ServerIdentity identity, TunnelRegistry tunnels)
    {
        var join = new JoinServer(_config, identity.Certificates, identity.Token, new JoinTokenStore(_config.DataDir), tunnels, _loggers.CreateLogger("join-api"));
        supervisor.Add(new InProcessComponent
        {
            Name = "join-api",
            Run = join.RunAsync,
            Readiness = new TcpProbe("127.0.0.1", _config.SupervisorPort),
            Restart = _config.Restart,
            StopTimeout = _config.StopTimeout,
        });

        // egress-selector-mode disabled: no egress selector configuration, so nothing would use the proxy.
        var mode = EgressModes.From(_config);
        if (mode == EgressMode.Disabled)
        {
            _log.EgressMode(EgressModes.Name(mode), EgressModes.Describe(mode));
            return null;
        }

        var socket = Path.Combine(_config.DataDir, "server", "egress.sock");
        var localNames = new List<string> { _config.NodeName, "localhost" };
        localNames.AddRange(ClusterCertificates.NodeAddresses(_config).Select(a => a.ToString()));
        var egressLog = _loggers.CreateLogger("egress-proxy");
        var tls = ClusterCertificates.TlsDir(_config.DataDir);
        var watcher = new EgressTableWatcher(new Uri($"https://127.0.0.1:{_config.HttpsListenPort}"), Path.Combine(tls, "server-ca.crt"),
            Path.Combine(tls, "client-admin.crt"), Path.Combine(tls, "client-admin.key"), egressLog);
        var proxy = new EgressProxy(socket, tunnels, new EgressRoutes(mode, _config.NodeName, localNames), watcher, egressLog);
        supervisor.Add(new InProcessComponent
        {
            Name = "egress-proxy",
            Run = proxy.RunAsync,
            Readiness = new UnixSocketProbe(socket),

            // Its Node/Service/EndpointSlice watches would hold kube-apiserver's graceful shutdown.
            StopsBefore = [WellKnownComponents.KubeApiServer],
            Restart = _config.Restart,
            StopTimeout = _config.StopTimeout,
        });
        return socket;
    }

    private void RegisterTunnelClient(Supervisor supervisor, AgentIdentity agent)
    {
        var addresses = ClusterCertificates.NodeAddresses(_config).Select(a => a.ToString()).ToList();
        var tunnelLog = _loggers.CreateLogger("tunnel");
        var podNetwork = new NodePodNetwork(new Uri(agent.Cluster.ServerUrl), Path.Combine(agent.Directory, "server-ca.crt"),
            Path.Combine(agent.Directory, "client-coracle-controller.crt"), Path.Combine(agent.Directory, "client-coracle-controller.key"), _config.NodeName, tunnelLog);
        var client = new TunnelClient(agent.Server, agent.ServerCa, agent.Token, _config.NodeName, addresses, _config.TunnelAllowedPorts, podNetwork, tunnelLog);
        supervisor.Add(new InProcessComponent
        {
            Name = "tunnel",
            Run = client.RunAsync,
            Readiness = new CustomProbe(_ => Task.FromResult(client.Connected)),
            Restart = _config.Restart,
            StopTimeout = _config.StopTimeout,
        });
    }

    private void RegisterKubernetesComponents(
        Supervisor supervisor, DatastoreEndpoint? datastore, RuntimeEndpoint? runtime, IReadOnlyList<string> runtimeComponents, string? egressSocket, KubeletHost kubeletHost)
    {
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
            CriSocket = runtime?.CriSocket ?? "/run/containerd/containerd.sock",
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
        if (server && specs.Any(s => s.Name == "kube-apiserver"))
        {
            RegisterClusterRbac(supervisor, paths);
        }
    }

    /// <summary>The cluster roles Coracle's own controllers need, applied once kube-apiserver answers.</summary>
    private void RegisterClusterRbac(Supervisor supervisor, KubernetesPaths paths)
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
