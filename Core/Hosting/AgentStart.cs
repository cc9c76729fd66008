using System.Diagnostics;
using System.Net;
using Coracle.Core.Agent;
using Coracle.Core.Configuration;
using Coracle.Core.Identity;
using Coracle.Core.Join;
using Coracle.Core.Logging;
using Coracle.Core.Supervision;
using Coracle.Core.Tunnel;
using Coracle.Plugins;
using Microsoft.Extensions.Logging;

namespace Coracle.Core.Hosting;

/// <summary>
/// <c>coracle agent</c>, applied from a checked plan as a flat list of named steps: data dir lock; join server; status;
/// configure plugins; host settings; load balancer; tunnel; kubernetes components; node addresses; fleet updates; certificate renewal; start supervisor. The join's answer (the cluster's
/// networks, DNS and cluster-wide plugin settings) makes a new configuration for every later step; nothing is mutated.
/// </summary>
internal sealed class AgentStart(StartPlan plan, ILoggerFactory loggers)
{
    public async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        // More pool threads for the start-up burst only, put back once every component is ready (StartupThreadPool).
        using var threadPool = StartupThreadPool.Raise();
        var local = new NodeSteps(plan, plan.Config, loggers);
        local.Starting(clock.ElapsedMilliseconds);

        using var dataDirLock = local.Step("data dir", () => DataDirLock.Acquire(plan.Config.DataDir, plan.Config.RunDir));
        var agent = await local.StepAsync("join server", () => AgentJoin.JoinAsync(plan.Config, local.Log, cancellationToken));
        var node = local.With(Joined(plan.Config, agent.Cluster, plan.Catalog!.Settings));
        var config = node.Config;

        await using var run = node.Step("status", () => node.OpenRun(DateTimeOffset.UtcNow));
        var plugins = node.Step("configure plugins", () => node.ConfigurePlugins(run.Supervisor));
        var kubeletHost = node.Step("host settings", () => node.PrepareHost(plugins.Runtime));
        var servers = node.Step("load balancer", () => RegisterLoadBalancer(config, run.Supervisor, agent));
        node.Step("tunnel", () => RegisterTunnels(config, run.Supervisor, agent, servers));
        node.Step("kubernetes components", () => node.RegisterKubernetesComponents(run.Supervisor, plugins, egressSocket: null, kubeletHost));
        var apiServer = AgentJoin.LoadBalancerUrl(config);
        node.Step("node addresses", () => Kubernetes.CloudNodeComponents.RegisterAgent(run.Supervisor, config, apiServer, agent.Directory, loggers));
        node.Step("fleet updates", () => Update.Fleet.FleetComponents.RegisterAgent(run.Supervisor, config, apiServer, agent.Directory, loggers));
        node.Step("certificate renewal", () => node.RegisterCertificateRenewal(run.Supervisor, [agent.Directory], ct => RenewDueAsync(agent.Directory, local.Log, ct)));
        // A slot on trial after an update is marked good once the node is healthy (docs/updates.md).
        using var updateGate = Update.UpdateGate.StartIfOnTrial(run.Supervisor.Snapshot, node.Log);
        var code = await node.RunUntilStoppedAsync(run.Supervisor, clock, cancellationToken, threadPool);
        return updateGate is { Failed: true } ? ExitCodes.RuntimeFailure : code;
    }

    /// <summary>
    /// The agent's configuration once the server answered: the cluster's networks and DNS, and the server's value of
    /// every cluster-wide plugin setting (source <c>server</c>) that a plugin installed here declares.
    /// </summary>
    public static CoracleConfig Joined(CoracleConfig config, ClusterConfigResponse cluster, IReadOnlyList<Setting> pluginSettings)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(cluster);
        var sources = new Dictionary<Setting, SourcedValue>(config.Sources);
        var options = config.PluginOptions.ToDictionary(p => p.Key, p => new Dictionary<string, string>(p.Value, StringComparer.OrdinalIgnoreCase), StringComparer.OrdinalIgnoreCase);
        foreach (var (plugin, values) in cluster.PluginSettings)
        {
            foreach (var (key, text) in values)
            {
                var setting = pluginSettings.FirstOrDefault(s => s.ClusterWide && s.Plugin == plugin && s.Key == key);
                if (setting is null)
                {
                    continue; // a plugin this agent does not carry
                }

                var value = SettingParser.Parse(setting, [text], out var error);
                if (error is null)
                {
                    sources[setting] = new SourcedValue(value, "server");
                    if (!options.TryGetValue(plugin, out var table))
                    {
                        options[plugin] = table = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
                    }

                    table[key] = Setting.PlainText(value);
                }
            }
        }

        return config with
        {
            ClusterCidr = IPNetwork.Parse(cluster.ClusterCidr),
            ServiceCidr = IPNetwork.Parse(cluster.ServiceCidr),
            ClusterDns = IPAddress.Parse(cluster.ClusterDns),
            ClusterDomain = cluster.ClusterDomain,
            DisableCloudController = cluster.DisableCloudController,
            PluginOptions = options,
            Sources = sources,
            // The agent runs the service load balancer the server runs, or none (PluginSelector.AgentFollowsServer).
            LoadBalancer = cluster.LoadBalancer.Length == 0 ? "none" : cluster.LoadBalancer,
            Ingress = cluster.Ingress.Length == 0 ? "none" : cluster.Ingress,
        };
    }

    /// <summary>
    /// When any of the agent's certificates is due, joins again (the same recipe as at start: new keys, CSRs signed by
    /// the server, kubeconfigs rewritten); returns the names that were due.
    /// </summary>
    private async Task<IReadOnlyList<string>> RenewDueAsync(string directory, ILogger log, CancellationToken cancellationToken)
    {
        var due = AgentCertificates.Due(directory, DateTimeOffset.UtcNow);
        if (due.Count > 0)
        {
            log.AgentCertificatesDue(string.Join(", ", due));
            await AgentJoin.JoinAsync(plan.Config, log, cancellationToken);
        }

        return due;
    }

    /// <summary>
    /// Step <c>load balancer</c>: the API server load balancer on <c>127.0.0.1:--lb-server-port</c> and the watch of the
    /// <c>default/kubernetes</c> Endpoints that tells it (and the tunnels) every server of the cluster.
    /// </summary>
    private ServerList RegisterLoadBalancer(CoracleConfig config, Supervisor supervisor, AgentIdentity agent)
    {
        var log = loggers.CreateLogger(LoadBalancerComponent);
        var joined = new Uri(agent.Cluster.ServerUrl);
        var servers = ServerList.Load(Path.Combine(agent.Directory, "load-balancer.json"), ServerList.Format(joined.Host.Trim('[', ']'), joined.Port), log);
        var balancer = new ApiLoadBalancer(new IPEndPoint(IPAddress.Loopback, config.LbServerPort), servers, log);
        var endpoints = new ApiServerEndpoints(AgentJoin.LoadBalancerUrl(config), Path.Combine(agent.Directory, "server-ca.crt"),
            Path.Combine(agent.Directory, "client-coracle-controller.crt"), Path.Combine(agent.Directory, "client-coracle-controller.key"), servers, log);
        // coracle status shows the servers it knows.
        void Report(IReadOnlyList<string> list) => supervisor.ReportDetail(LoadBalancerComponent, $"127.0.0.1:{config.LbServerPort} to {string.Join(", ", list)}");
        servers.Changed += Report;
        supervisor.Add(new InProcessComponent
        {
            Name = LoadBalancerComponent,
            Run = async ct =>
            {
                using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
                var balancing = balancer.RunAsync(stop.Token);
                Report(servers.Servers);
                if (await Task.WhenAny(balancer.Bound, balancing) == balancing)
                {
                    await balancing; // it could not listen: the one-line reason
                }

                try
                {
                    await endpoints.RunAsync(stop.Token);
                }
                finally
                {
                    await stop.CancelAsync();
                    await balancing;
                }
            },
            Readiness = new CustomProbe(_ => Task.FromResult(balancer.Listening)),
            Restart = config.Restart,
            StopTimeout = config.StopTimeout,
            RestartOnCertificateRenewal = true,
        });
        return servers;
    }

    private void RegisterTunnels(CoracleConfig config, Supervisor supervisor, AgentIdentity agent, ServerList servers)
    {
        var addresses = ClusterCertificates.NodeAddresses(config).Select(a => a.ToString()).ToList();
        var tunnelLog = loggers.CreateLogger("tunnel");
        var podNetwork = new NodePodNetwork(AgentJoin.LoadBalancerUrl(config), Path.Combine(agent.Directory, "server-ca.crt"),
            Path.Combine(agent.Directory, "client-coracle-controller.crt"), Path.Combine(agent.Directory, "client-coracle-controller.key"), config.NodeName, tunnelLog);
        var nodePassword = AgentJoin.EnsureNodePassword(config.DataDir, config.NodeName, tunnelLog);
        var tunnels = new AgentTunnels(servers, agent.Server,
            url => new TunnelClient(url, agent.ServerCa, agent.Token, config.NodeName, addresses, config.TunnelAllowedPorts, podNetwork, tunnelLog, nodePassword: nodePassword)
            {
                RunsPodNetwork = false,
            },
            podNetwork, tunnelLog);
        supervisor.Add(new InProcessComponent
        {
            Name = "tunnel",
            Run = tunnels.RunAsync,
            Readiness = new CustomProbe(_ => Task.FromResult(tunnels.Connected)),
            Restart = config.Restart,
            StopTimeout = config.StopTimeout,
            RestartOnCertificateRenewal = true,
        });
    }

    /// <summary>The agent's API server load balancer component (and its log category).</summary>
    internal const string LoadBalancerComponent = "load-balancer";
}
