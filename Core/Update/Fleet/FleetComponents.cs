using Coracle.Core.Configuration;
using Coracle.Core.Hosting;
using Coracle.Core.Kubernetes;
using Coracle.Core.Supervision;
using Coracle.Plugins;
using Microsoft.Extensions.Logging;

namespace Coracle.Core.Update.Fleet;

/// <summary>
/// Registers the <c>ApplianceUpdate</c> controller (<see cref="FleetController"/>) with the supervisor as the component
/// <c>fleet-updates</c> (step <c>fleet updates</c>), on a server and on an agent. Both act as the node controllers' user
/// <c>system:coracle-controller</c> (its ClusterRole grants exactly what the controller needs, <see cref="ClusterRbac"/>).
/// </summary>
internal static class FleetComponents
{
    public const string Name = "fleet-updates";

    /// <summary>A server's: at its own kube-apiserver; the pre-update snapshot of its datastore is taken before the switch.</summary>
    public static void RegisterServer(Supervisor supervisor, StartPlan plan, CoracleConfig config, KubernetesPaths paths, ILoggerFactory loggers) =>
        Register(supervisor, config, new Uri($"https://127.0.0.1:{config.HttpsListenPort}"), paths.Tls("server-ca.crt"),
            paths.Tls("client-coracle-controller.crt"), paths.Tls("client-coracle-controller.key"), new DatastorePreUpdateSnapshot(plan, config), [WellKnownComponents.KubeApiServer], loggers);

    /// <summary>An agent's: at the server's kube-apiserver, with the credentials the join issued.</summary>
    public static void RegisterAgent(Supervisor supervisor, CoracleConfig config, Uri apiServer, string agentDir, ILoggerFactory loggers) =>
        Register(supervisor, config, apiServer, Path.Combine(agentDir, "server-ca.crt"), Path.Combine(agentDir, "client-coracle-controller.crt"),
            Path.Combine(agentDir, "client-coracle-controller.key"), new NoSnapshot("no server runs on this node, so there is no datastore to snapshot"), [], loggers);

    private static void Register(Supervisor supervisor, CoracleConfig config, Uri api, string ca, string cert, string key, IPreUpdateSnapshot snapshot,
        IReadOnlyList<string> dependsOn, ILoggerFactory loggers)
    {
        // Without a kubelet there is no Node to update.
        if (!supervisor.Snapshot().Any(c => c.Name == "kubelet" && c.State != ComponentState.Unavailable))
        {
            return;
        }

        var log = loggers.CreateLogger(Name);
        var node = SlotNode.ForThisProcess(
            (string)config.Sources[Settings.UpdateCa].Value,
            (int)Math.Clamp((long)config.Sources[Settings.UpdateTrialAttempts].Value, 1, 100),
            (int)Math.Max(1, ((TimeSpan)config.Sources[Settings.UpdateTrialDeadline].Value).TotalSeconds),
            snapshot,
            log);
        var controller = new FleetController(new FleetConnection(api, ca, cert, key), config.NodeName, node, log, TimeProvider.System);
        supervisor.Add(new InProcessComponent
        {
            Name = Name,
            DependsOn = [.. dependsOn, "kubelet"],
            Readiness = new CustomProbe(_ => Task.FromResult(controller.Ready)),
            Restart = config.Restart,
            StopTimeout = config.StopTimeout,
            RestartOnCertificateRenewal = true,
            Run = controller.RunAsync,
        });
    }
}
