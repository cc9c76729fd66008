using Coracle.Core.Configuration;
using Coracle.Core.Identity;
using Coracle.Core.Logging;
using Coracle.Core.Supervision;
using Coracle.Plugins;
using Microsoft.Extensions.Logging;

namespace Coracle.Core.Kubernetes;

/// <summary>
/// Registers <see cref="NodeDeclaration"/> (every node whose kubelet runs) and, on a server, <see cref="CloudNodeController"/>
/// (unless <c>--disable-cloud-controller</c>) with the supervisor (step <c>node addresses</c>).
/// </summary>
internal static class CloudNodeComponents
{
    public const string DeclarationName = "node-declaration";

    public const string ControllerName = "cloud-node";

    /// <summary>
    /// A server's: its Node is declared with the admin credentials (with <see cref="CloudNode.EtcdLabel"/> too when
    /// <paramref name="datastoreMember"/>: its datastore is a member of a clustered one); the controller runs beside kube-apiserver.
    /// </summary>
    public static void RegisterServer(Supervisor supervisor, CoracleConfig config, KubernetesPaths paths, ILoggerFactory loggers, bool datastoreMember = false)
    {
        var api = new Uri($"https://127.0.0.1:{config.HttpsListenPort}");
        var (ca, cert, key) = (paths.Tls("server-ca.crt"), paths.Tls("client-admin.crt"), paths.Tls("client-admin.key"));
        var labels = new SortedDictionary<string, string>(CloudNode.ServerLabels.ToDictionary(), StringComparer.Ordinal);
        if (datastoreMember)
        {
            labels[CloudNode.EtcdLabel] = "true";
        }

        RegisterDeclaration(supervisor, config, () => new KubeApi(api, ca, cert, key, TimeSpan.FromSeconds(15)), labels, loggers, [WellKnownComponents.KubeApiServer]);
        var log = loggers.CreateLogger(ControllerName);
        if (config.DisableCloudController)
        {
            log.CloudNodeDisabled();
            return;
        }

        var controller = new CloudNodeController(api, ca, cert, key, log);
        supervisor.Add(new InProcessComponent
        {
            Name = ControllerName,
            DependsOn = [WellKnownComponents.KubeApiServer],
            Readiness = new CustomProbe(_ => Task.FromResult(controller.Ready)),
            Restart = config.Restart,
            StopTimeout = config.StopTimeout,
            RestartOnCertificateRenewal = true,
            Run = controller.RunAsync,
        });
    }

    /// <summary>An agent's: its Node is declared with the node controllers' credentials, at the server's kube-apiserver.</summary>
    public static void RegisterAgent(Supervisor supervisor, CoracleConfig config, Uri apiServer, string agentDir, ILoggerFactory loggers) =>
        RegisterDeclaration(supervisor, config, () => new KubeApi(apiServer, Path.Combine(agentDir, "server-ca.crt"),
            Path.Combine(agentDir, "client-coracle-controller.crt"), Path.Combine(agentDir, "client-coracle-controller.key"), TimeSpan.FromSeconds(15)),
            new Dictionary<string, string>(), loggers, []);

    private static void RegisterDeclaration(
        Supervisor supervisor, CoracleConfig config, Func<KubeApi> connect, IReadOnlyDictionary<string, string> labels, ILoggerFactory loggers, IReadOnlyList<string> dependsOn)
    {
        // Without a kubelet there is no Node to declare.
        if (!supervisor.Snapshot().Any(c => c.Name == "kubelet" && c.State != ComponentState.Unavailable))
        {
            return;
        }

        var internalIps = ClusterCertificates.NodeAddresses(config).Take(2).Select(a => a.ToString());
        var declaration = new NodeDeclaration(connect, config.NodeName, CloudNode.OwnAnnotations(internalIps, config.NodeExternalIps), labels,
            loggers.CreateLogger(DeclarationName));
        supervisor.Add(new InProcessComponent
        {
            Name = DeclarationName,
            DependsOn = [.. dependsOn, "kubelet"],
            Readiness = new CustomProbe(_ => Task.FromResult(declaration.Declared)),
            Restart = config.Restart,
            StopTimeout = config.StopTimeout,
            RestartOnCertificateRenewal = true,
            Run = declaration.RunAsync,
        });
    }
}
