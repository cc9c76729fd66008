using Coracle.Core.Configuration;
using Coracle.Core.Hosting;
using Coracle.Core.Logging;
using Coracle.Plugins;
using Microsoft.Extensions.Logging;

namespace Coracle.Core.Kubernetes;

/// <summary>
/// Registers the Kubernetes components whose binaries exist in the components folder with the supervisor, each with
/// its merged arguments (logged) and readiness probe; a missing binary is reported as unavailable.
/// </summary>
internal static class KubernetesComponents
{
    /// <summary>The Kubernetes binaries each role runs, in start order.</summary>
    public static IReadOnlyDictionary<string, string[]> ByRole { get; } = new Dictionary<string, string[]>
    {
        ["server"] = ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy"],
        ["agent"] = ["kubelet", "kube-proxy"],
    };

    /// <summary>Builds the component specs without registering them (tests check the arguments).</summary>
    public static IReadOnlyList<ProcessComponent> Build(
        CoracleConfig c, KubernetesPaths p, string? datastoreComponent, string? runtimeComponent, Func<string, bool> binaryExists, Action<string, string> unavailable,
        IReadOnlyList<string>? kubeletAlsoWaitsFor = null)
    {
        var specs = new List<ProcessComponent>();
        var server = c.Role == "server";
        var apiUrl = $"https://127.0.0.1:{c.HttpsListenPort}";
        foreach (var name in ByRole[c.Role])
        {
            var binary = Path.Combine(c.ComponentsDir, name);
            if (!binaryExists(binary))
            {
                unavailable(name, $"binary not found in {c.ComponentsDir} (set components-dir or CORACLE_K8S_BIN)");
                continue;
            }

            IReadOnlyList<string> args;
            ReadinessProbe probe;
            var dependsOn = new List<string>();
            switch (name)
            {
                case "kube-apiserver":
                    if (p.DatastoreServers.Count == 0)
                    {
                        unavailable(name, "no datastore endpoint: the datastore plugin is not available");
                        continue;
                    }

                    args = ComponentArgs.Merge(ComponentArgs.ApiServerDefaults(c, p), c.KubeApiserverArgs);
                    probe = AdminProbe(new Uri(apiUrl + "/readyz"), p);
                    if (datastoreComponent is not null)
                    {
                        dependsOn.Add(datastoreComponent);
                    }

                    break;
                case "kube-controller-manager":
                    args = ComponentArgs.Merge(ComponentArgs.ControllerManagerDefaults(c, p), c.KubeControllerManagerArgs);
                    probe = AdminProbe(new Uri("https://127.0.0.1:10257/healthz"), p);
                    dependsOn.Add("kube-apiserver");
                    break;
                case "kube-scheduler":
                    args = ComponentArgs.Merge(ComponentArgs.SchedulerDefaults(p), c.KubeSchedulerArgs);
                    probe = AdminProbe(new Uri("https://127.0.0.1:10259/healthz"), p);
                    dependsOn.Add("kube-apiserver");
                    break;
                case "kubelet":
                    args = ComponentArgs.Merge(ComponentArgs.KubeletDefaults(c.NodeName, c.PauseImage, p, c.NodeLabels, !c.DisableCloudController), c.KubeletArgs);
                    probe = new HttpProbe(new Uri("http://127.0.0.1:10248/healthz"));
                    if (runtimeComponent is not null)
                    {
                        dependsOn.Add(runtimeComponent);
                    }

                    // Everything else the runtime plugin runs (the airgap import of the pause image) comes first too.
                    dependsOn.AddRange((kubeletAlsoWaitsFor ?? []).Where(d => !dependsOn.Contains(d)));

                    break;
                default:
                    args = ComponentArgs.Merge(ComponentArgs.KubeProxyDefaults(c.NodeName, c.ClusterCidr.ToString(), p), c.KubeProxyArgs);
                    probe = new HttpProbe(new Uri("http://127.0.0.1:10256/healthz"));
                    break;
            }

            if (server && name is "kubelet" or "kube-proxy" && specs.Any(s => s.Name == "kube-apiserver"))
            {
                dependsOn.Add("kube-apiserver");
            }

            specs.Add(new ProcessComponent
            {
                Name = name,
                FileName = binary,
                Arguments = args,
                DependsOn = dependsOn,
                Readiness = probe with { Interval = TimeSpan.FromSeconds(1), Timeout = TimeSpan.FromSeconds(5) },
                Restart = c.Restart,
                RestartOnCertificateRenewal = true,
                StopTimeout = name == WellKnownComponents.KubeApiServer && c.StopTimeout < ApiServerMinimumStopTimeout ? ApiServerMinimumStopTimeout : c.StopTimeout,
                WorkingDirectory = c.DataDir,
            });
        }

        return specs;
    }

    /// <summary>
    /// kube-apiserver's graceful shutdown drains its requests and stops the watch cache of every resource, which takes
    /// seconds on a busy 2-core board; it gets at least this long before it is killed, whatever <c>stop-timeout</c> says.
    /// </summary>
    public static readonly TimeSpan ApiServerMinimumStopTimeout = TimeSpan.FromSeconds(30);

    public static void Register(ISupervisor supervisor, ILogger log, IReadOnlyList<ProcessComponent> specs)
    {
        foreach (var spec in specs)
        {
            log.KubernetesArguments(spec.Name, string.Join(' ', spec.Arguments));
            supervisor.Add(spec);
        }
    }

    private static HttpProbe AdminProbe(Uri url, KubernetesPaths p) => new(url)
    {
        CaFile = p.Tls("server-ca.crt"),
        ClientCertFile = p.Tls("client-admin.crt"),
        ClientKeyFile = p.Tls("client-admin.key"),
    };

    /// <summary>
    /// kube-apiserver's egress selector (K3s's <c>egress-selector-mode</c> agent, pod or cluster; with <c>disabled</c> there is
    /// none): all "cluster" traffic (kubelets, pods, services) goes through HTTP CONNECT on the egress proxy's unix socket,
    /// which routes it by the mode (Core/Tunnel/EgressRoutes.cs). Like K3s it names only <c>cluster</c>: a <c>Direct</c>
    /// <c>etcd</c> selection would make kube-apiserver dial its etcd endpoints as TCP, which breaks <c>unix://</c> ones
    /// ("dial tcp: missing address").
    /// </summary>
    public static string EgressSelectorConfiguration(string udsPath) =>
        $"""
        apiVersion: apiserver.k8s.io/v1beta1
        kind: EgressSelectorConfiguration
        egressSelections:
        - name: cluster
          connection:
            proxyProtocol: HTTPConnect
            transport:
              uds:
                udsName: "{udsPath}"

        """;

    public static string WriteEgressSelectorConfiguration(string dataDir, string udsPath)
    {
        var path = Path.Combine(dataDir, "server", "etc", "egress-selector-config.yaml");
        FileUtil.WriteAtomic(path, EgressSelectorConfiguration(udsPath), UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return path;
    }
}
