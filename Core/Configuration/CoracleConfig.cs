using System.Net;
using Coracle.Plugins;

namespace Coracle.Core.Configuration;

/// <summary>The effective configuration of one node, after defaults, file, environment and flags. Immutable.</summary>
internal sealed record CoracleConfig
{
    public required string Role { get; init; }
    public string? ConfigFile { get; init; }
    public required string DataDir { get; init; }
    public required string NodeName { get; init; }
    public IReadOnlyList<string> NodeIps { get; init; } = [];

    /// <summary>The node's ExternalIP addresses (<c>--node-external-ip</c>).</summary>
    public IReadOnlyList<string> NodeExternalIps { get; init; } = [];
    public string Token { get; init; } = "";
    public IReadOnlyList<string> Disable { get; init; } = [];
    public required string ComponentsDir { get; init; }
    public string LogFormat { get; init; } = "text";
    public string LogLevel { get; init; } = "info";
    public required IPNetwork ClusterCidr { get; init; }
    public required IPNetwork ServiceCidr { get; init; }
    public required IPAddress ClusterDns { get; init; }
    public string ClusterDomain { get; init; } = "cluster.local";
    public string DatastoreEndpoint { get; init; } = "";

    /// <summary><c>--cluster-init</c>: the embedded etcd datastore when no <see cref="DatastoreEndpoint"/> is given.</summary>
    public bool ClusterInit { get; init; }
    public IReadOnlyList<string> TlsSans { get; init; } = [];
    public string WriteKubeconfig { get; init; } = "";
    public UnixFileMode WriteKubeconfigMode { get; init; }
    public int HttpsListenPort { get; init; }
    public int SupervisorPort { get; init; }
    public string ServerUrl { get; init; } = "";
    public TimeSpan CertLifetime { get; init; } = TimeSpan.FromDays(365);
    public TimeSpan CaCertLifetime { get; init; } = TimeSpan.FromDays(3650);
    public bool SecretsEncryption { get; init; }
    public string SecretsEncryptionProvider { get; init; } = "aescbc";

    /// <summary>Scheduled snapshots: cron expression (UTC), how many to keep, their folder (empty: DATA/server/db/snapshots), off.</summary>
    public string EtcdSnapshotScheduleCron { get; init; } = "0 */12 * * *";
    public int EtcdSnapshotRetention { get; init; } = 5;
    public string EtcdSnapshotDir { get; init; } = "";
    public bool EtcdDisableSnapshots { get; init; }

    /// <summary><c>--cluster-reset</c> and the snapshot it restores (empty: none).</summary>
    public bool ClusterReset { get; init; }
    public string ClusterResetRestorePath { get; init; } = "";

    /// <summary>The snapshot folder: <see cref="EtcdSnapshotDir"/>, or <c>DATA/server/db/snapshots</c>.</summary>
    public string SnapshotDir => EtcdSnapshotDir.Length > 0 ? EtcdSnapshotDir : Path.Combine(DataDir, "server", "db", "snapshots");
    public IReadOnlyList<string> KubeApiserverArgs { get; init; } = [];
    public IReadOnlyList<string> KubeControllerManagerArgs { get; init; } = [];
    public IReadOnlyList<string> KubeSchedulerArgs { get; init; } = [];

    /// <summary>No cloud-node controller (<c>--disable-cloud-controller</c>); on an agent, the server's value.</summary>
    public bool DisableCloudController { get; init; }
    public IReadOnlyList<string> KubeletArgs { get; init; } = [];
    public IReadOnlyList<string> KubeProxyArgs { get; init; } = [];
    public IReadOnlyList<string> NodeLabels { get; init; } = [];
    public IReadOnlyList<string> NodeTaints { get; init; } = [];
    public bool ProtectKernelDefaults { get; init; }

    /// <summary>The kubelet's podLogsDir (<c>pod-logs-dir</c>).</summary>
    public string PodLogsDir { get; init; } = "/var/log/pods";
    public IReadOnlyList<int> TunnelAllowedPorts { get; init; } = [10250];

    /// <summary>The loopback port of the agent's API server load balancer (<c>--lb-server-port</c>).</summary>
    public int LbServerPort { get; init; } = 6444;
    public required string PauseImage { get; init; }

    /// <summary>The registry system images come from (<c>--system-default-registry</c>); empty for their own.</summary>
    public string SystemDefaultRegistry { get; init; } = "";
    public IReadOnlyList<string> PluginDirs { get; init; } = [];
    public string Cni { get; init; } = "";
    public string Ingress { get; init; } = "";
    public string LoadBalancer { get; init; } = "";
    public string Runtime { get; init; } = "";
    public IReadOnlyList<string> Enable { get; init; } = [];
    public required RestartPolicy Restart { get; init; }
    public TimeSpan StopTimeout { get; init; }
    /// <summary>
    /// Each plugin's options by plugin name: the effective value of every setting it declares (defaults included), or
    /// its <c>[plugins.NAME]</c> table as written when it declares none.
    /// </summary>
    public IReadOnlyDictionary<string, Dictionary<string, string>> PluginOptions { get; init; } =
        new Dictionary<string, Dictionary<string, string>>();

    /// <summary>The options of plugin <paramref name="name"/> (empty when it has none).</summary>
    public IReadOnlyDictionary<string, string> OptionsOf(string name) =>
        PluginOptions.TryGetValue(name, out var options) ? options : new Dictionary<string, string>();

    /// <summary>Where each setting's value came from, for <c>config check</c> and error messages.</summary>
    public IReadOnlyDictionary<Setting, SourcedValue> Sources { get; init; } = new Dictionary<Setting, SourcedValue>();

    public string RunDir => Path.Combine(DataDir, "run");

    public string StatusSocket => Path.Combine(RunDir, "coracle.sock");

    /// <summary>The settings plugins see.</summary>
    public NodeSettings ToNodeSettings() => new()
    {
        Role = Role,
        NodeName = NodeName,
        NodeIps = NodeIps,
        DataDir = DataDir,
        RunDir = RunDir,
        ComponentsDir = ComponentsDir,
        Architecture = System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant(),
        ClusterCidr = ClusterCidr.ToString(),
        ServiceCidr = ServiceCidr.ToString(),
        ClusterDns = ClusterDns.ToString(),
        ClusterDomain = ClusterDomain,
        DatastoreEndpoint = DatastoreEndpoint,
        PauseImage = PauseImage,
        SystemDefaultRegistry = SystemDefaultRegistry,
        ServerUrl = ServerUrl,
        ControllerKubeconfig = Role == "server"
            ? Path.Combine(Identity.ServerIdentity.CredDir(DataDir), Identity.ServerIdentity.ControllerKubeconfigFile)
            : Path.Combine(Join.AgentJoin.AgentDir(DataDir), Identity.ServerIdentity.ControllerKubeconfigFile),
    };
}
