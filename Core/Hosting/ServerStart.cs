using System.Diagnostics;
using Coracle.Core.Addons;
using Coracle.Core.Composition;
using Coracle.Core.Configuration;
using Coracle.Core.Identity;
using Coracle.Core.Join;
using Coracle.Core.Kubernetes;
using Coracle.Core.Logging;
using Coracle.Core.Secrets;
using Coracle.Core.Snapshots;
using Coracle.Core.Supervision;
using Coracle.Core.Tunnel;
using Coracle.Plugins;
using Microsoft.Extensions.Logging;

namespace Coracle.Core.Hosting;

/// <summary>
/// <c>coracle server</c>, applied from a checked plan as a flat list of named steps: data dir lock; join cluster (with
/// <c>--server</c>, docs/ha.md); cluster reset; datastore migration (docs/ha.md); certificates, token
/// and kubeconfigs; secrets encryption; status; configure plugins; datastore migration component; snapshots; host settings; join api and egress proxy; kubernetes components; cluster
/// rbac; node password; manifests; node addresses; fleet updates; etcd members; certificate renewal; start supervisor. Then it runs until SIGTERM or SIGINT and stops everything in reverse order.
/// </summary>
internal sealed class ServerStart(StartPlan plan, ILoggerFactory loggers)
{
    public async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        // More pool threads for the start-up burst only, put back once every component is ready (StartupThreadPool).
        using var threadPool = StartupThreadPool.Raise();
        var node = new NodeSteps(plan, plan.Config, loggers);
        var config = node.Config;
        node.Starting(clock.ElapsedMilliseconds);

        // The plan is checked; from here on the disk changes, and the first change is taking the data dir's lock, so a
        // second node on a live data dir changes nothing.
        using var dataDirLock = node.Step("data dir", () => DataDirLock.Acquire(config.DataDir, config.RunDir));
        var joined = await node.StepAsync("join cluster", () => JoinClusterAsync(config, node.Log, cancellationToken));
        if (joined is not null)
        {
            node.DatastoreJoin = joined.DatastoreJoin;
            node.JoinedFrom = joined.Server;
        }

        node.Step("cluster reset", () => ServerSnapshots.ClusterReset(plan, config, node.Log, DateTimeOffset.UtcNow));
        var migration = node.Step("datastore migration", () => DatastoreMigration.Prepare(plan, config, joined is not null || config.ServerUrl.Length > 0, node.Log));
        var identity = node.Step("certificates, token and kubeconfigs", () => ServerIdentity.Prepare(config, node.Log));
        var encryptionConfig = node.Step("secrets encryption", () => SecretsEncryption.Prepare(config, node.Log));
        await using var run = node.Step("status", () => node.OpenRun(DateTimeOffset.UtcNow));
        var plugins = node.Step("configure plugins", () => node.ConfigurePlugins(run.Supervisor));
        if (migration is not null)
        {
            plugins = node.Step("datastore migration component", () => migration.Register(run.Supervisor, plugins));
        }

        node.Step("snapshots", () => ServerSnapshots.RegisterScheduler(run.Supervisor, plan, config, plugins.Datastore, loggers, node.Log));
        var kubeletHost = node.Step("host settings", () => node.PrepareHost(plugins.Runtime));
        // The join API checks node passwords against Secrets only when kube-apiserver is registered in the next step
        // (the closure is read once the supervisor runs, after every step); without one, its local file is the store.
        KubernetesPaths? apiserver = null;
        var joinLog = loggers.CreateLogger("join-api");
        var passwords = NodePasswords.ForServer(config, () => apiserver is not null, joinLog);
        var egressSocket = node.Step("join api and egress proxy", () => RegisterJoinApi(node, run.Supervisor, identity, new TunnelRegistry(), passwords, joinLog));
        apiserver = node.Step("kubernetes components", () => node.RegisterKubernetesComponents(run.Supervisor, plugins, egressSocket, kubeletHost, encryptionConfig));
        if (apiserver is not null)
        {
            node.Step("cluster rbac", () => node.RegisterClusterRbac(run.Supervisor, apiserver));
            node.Step("node password", () => RegisterNodePassword(node, run.Supervisor, passwords));
            node.Step("manifests", () => RegisterManifests(node, run.Supervisor, apiserver));
            var datastoreMember = plugins.Datastore is not null && node.Selection.Single(ExtensionPoints.Datastore) is { } store && plan.Instance(store) is IDatastoreCluster;
            node.Step("node addresses", () => CloudNodeComponents.RegisterServer(run.Supervisor, config, apiserver, loggers, datastoreMember));
            node.Step("fleet updates", () => Update.Fleet.FleetComponents.RegisterServer(run.Supervisor, plan, config, apiserver, loggers));
            if (datastoreMember && config.DatastoreEndpoint.Length == 0
                && node.Selection.Single(ExtensionPoints.Datastore) is { } members && plan.Instance(members) is IDatastoreCluster cluster)
            {
                // docs/ha.md "Members follow Nodes" and "Quorum" (embedded members only: an external cluster's members are not Nodes).
                node.Step("etcd members", () => EtcdMembersController.Register(run.Supervisor, config, apiserver, cluster,
                    config.ToNodeSettings() with { DatastoreJoin = node.DatastoreJoin }, config.OptionsOf(members.Name), loggers));
            }
        }

        node.Step("certificate renewal", () => node.RegisterCertificateRenewal(run.Supervisor, [identity.Certificates.Directory], _ => Task.FromResult(ServerIdentity.RenewDue(config, node.Log))));

        // A slot on trial after an update is marked good once the node is healthy (docs/updates.md).
        using var updateGate = Update.UpdateGate.StartIfOnTrial(run.Supervisor.Snapshot, node.Log);
        var code = await node.RunUntilStoppedAsync(run.Supervisor, clock, cancellationToken, threadPool);
        return updateGate is { Failed: true } ? ExitCodes.RuntimeFailure : code;
    }

    /// <summary>
    /// The manifests controller (K3s's deploy controller): applies <c>DATA/server/manifests</c> as Addons while this
    /// server holds the Lease <c>kube-system/coracle-manifests</c> (docs/addons.md).
    /// </summary>
    private void RegisterManifests(NodeSteps node, Supervisor supervisor, KubernetesPaths paths)
    {
        const string Name = "manifests";
        var config = node.Config;
        var service = new ManifestsService(
            new ManifestsOptions { Folder = ManifestSink.FolderFor(config.DataDir), Identity = config.NodeName, Off = node.AddonsOff },
            loggers.CreateLogger(Name),
            report: detail => supervisor.ReportDetail(Name, detail),
            board: node.Addons);
        supervisor.Add(new InProcessComponent
        {
            Name = Name,
            DependsOn = [WellKnownComponents.KubeApiServer],
            Readiness = new CustomProbe(_ => Task.FromResult(service.Ready)),
            Restart = config.Restart,
            StopTimeout = config.StopTimeout,
            RestartOnCertificateRenewal = true,
            Run = async cancellationToken =>
            {
                using var api = new KubeApi(new Uri($"https://127.0.0.1:{config.HttpsListenPort}"), paths.Tls("server-ca.crt"),
                    paths.Tls("client-admin.crt"), paths.Tls("client-admin.key"));
                await service.RunAsync(api, cancellationToken);
            },
        });
    }

    /// <summary>
    /// Step <c>join cluster</c>: with <c>--server</c> (or after an earlier join) this server joins the cluster of another
    /// (<see cref="ServerJoin"/>); its datastore's peer URLs go with the request when the datastore is a cluster.
    /// </summary>
    private Task<JoinedCluster?> JoinClusterAsync(CoracleConfig config, ILogger log, CancellationToken cancellationToken)
    {
        var entry = plan.Selection!.Single(ExtensionPoints.Datastore);
        var peerUrls = config.ServerUrl.Length > 0 && entry is not null && plan.Instance(entry) is IDatastoreCluster cluster
            ? cluster.PeerUrls(config.ToNodeSettings(), config.OptionsOf(entry.Name))
            : [];
        return ServerJoin.EnsureAsync(config, entry?.Name ?? "", peerUrls, log, cancellationToken);
    }

    /// <summary>
    /// This server's datastore as servers joining it need it: a plugin that serves the default (empty) endpoint keeps the
    /// cluster in a file of this server and cannot be shared, unless it is a cluster itself (<see cref="IDatastoreCluster"/>),
    /// which adds the joining server as a member.
    /// </summary>
    private ServerJoinDatastore? JoinDatastore(NodeSteps node)
    {
        if (node.Selection.Single(ExtensionPoints.Datastore) is not { } entry)
        {
            return null;
        }

        var cluster = plan.Instance(entry) as IDatastoreCluster;
        var settings = node.Config.ToNodeSettings() with { DatastoreJoin = node.DatastoreJoin };
        var options = node.Config.OptionsOf(entry.Name);
        return new ServerJoinDatastore(
            entry.Name,
            Embedded: cluster is null && entry.Metadata.EndpointSchemes.Contains(""),
            AddMember: cluster is null ? null : (name, urls, ct) => cluster.AddMemberAsync(settings, options, name, urls, ct));
    }

    /// <summary>
    /// This server's own node name held with its node password, as an agent's is (<see cref="ServerNodePassword"/>);
    /// <paramref name="passwords"/> is the join API's store, so both write one local cache.
    /// </summary>
    private void RegisterNodePassword(NodeSteps node, Supervisor supervisor, NodePasswords passwords)
    {
        const string Name = "node-password";
        var config = node.Config;
        var check = new ServerNodePassword(passwords, config.DataDir, config.NodeName, loggers.CreateLogger(Name));
        supervisor.Add(new InProcessComponent
        {
            Name = Name,
            DependsOn = [WellKnownComponents.KubeApiServer],
            Readiness = new CustomProbe(_ => Task.FromResult(check.Decided)),
            Restart = config.Restart,
            StopTimeout = config.StopTimeout,
            Run = cancellationToken => check.RunAsync((detail, degraded) => supervisor.ReportHealth(Name, detail, degraded), cancellationToken),
        });
    }

    private string? RegisterJoinApi(NodeSteps node, Supervisor supervisor, ServerIdentity identity, TunnelRegistry tunnels, NodePasswords passwords, ILogger joinLog)
    {
        var config = node.Config;
        var join = new JoinServer(config, identity.Certificates, identity.Token, new JoinTokenStore(config.DataDir), tunnels, passwords, joinLog)
        {
            LoadBalancer = PluginSelector.ServerRuns(node.Selection, config, ExtensionPoints.LoadBalancer),
            Ingress = PluginSelector.ServerRuns(node.Selection, config, ExtensionPoints.Ingress),
            Datastore = JoinDatastore(node),
        };
        supervisor.Add(new InProcessComponent
        {
            Name = "join-api",
            Run = join.RunAsync,
            Readiness = new TcpProbe("127.0.0.1", config.SupervisorPort),
            Restart = config.Restart,
            StopTimeout = config.StopTimeout,
            RestartOnCertificateRenewal = true,
        });

        // egress-selector-mode disabled: no egress selector configuration, so nothing would use the proxy.
        var mode = EgressModes.From(config);
        if (mode == EgressMode.Disabled)
        {
            node.Log.EgressMode(EgressModes.Name(mode), EgressModes.Describe(mode));
            return null;
        }

        var socket = Path.Combine(config.DataDir, "server", "egress.sock");
        var localNames = new List<string> { config.NodeName, "localhost" };
        localNames.AddRange(ClusterCertificates.NodeAddresses(config).Select(a => a.ToString()));
        var egressLog = loggers.CreateLogger("egress-proxy");
        var tls = ClusterCertificates.TlsDir(config.DataDir);
        var watcher = new EgressTableWatcher(new Uri($"https://127.0.0.1:{config.HttpsListenPort}"), Path.Combine(tls, "server-ca.crt"),
            Path.Combine(tls, "client-admin.crt"), Path.Combine(tls, "client-admin.key"), egressLog);
        var proxy = new EgressProxy(socket, tunnels, new EgressRoutes(mode, config.NodeName, localNames), watcher, egressLog);
        supervisor.Add(new InProcessComponent
        {
            Name = "egress-proxy",
            Run = proxy.RunAsync,
            Readiness = new UnixSocketProbe(socket),

            // Its Node/Service/EndpointSlice watches would hold kube-apiserver's graceful shutdown.
            StopsBefore = [WellKnownComponents.KubeApiServer],
            Restart = config.Restart,
            StopTimeout = config.StopTimeout,
            RestartOnCertificateRenewal = true,
        });
        return socket;
    }
}
