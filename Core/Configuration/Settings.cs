namespace Coracle.Core.Configuration;

/// <summary>
/// Every setting Coracle knows, in the order appliance.toml documents them. Flag names follow K3s.
/// </summary>
internal static class Settings
{
    public static readonly Setting DataDir = new("", "data-dir", SettingKind.String, "",
        "Folder for state (default /var/lib/coracle as root, ~/.coracle otherwise)");
    public static readonly Setting NodeName = new("", "node-name", SettingKind.String, "",
        "Node name (default: the host name)");
    public static readonly Setting NodeIp = new("", "node-ip", SettingKind.IpList, Array.Empty<string>(),
        "IP addresses to advertise for the node (default: the default route's address)");
    public static readonly Setting NodeExternalIp = new("", "node-external-ip", SettingKind.IpList, Array.Empty<string>(),
        "External IP addresses of the node (its ExternalIP in status.addresses, set by the server's cloud-node controller)");
    public static readonly Setting Token = new("", "token", SettingKind.String, "",
        "Shared secret used to join nodes (generated on the first server start)") { Secret = true };
    public static readonly Setting Disable = new("", "disable", SettingKind.StringList, Array.Empty<string>(),
        "Plugins not to run, by name (repeat or comma-separate); coracle plugins list shows them");
    public static readonly Setting ComponentsDir = new("", "components-dir", SettingKind.String, "/usr/lib/coracle/bin",
        "Folder holding the Kubernetes binaries and other components (CORACLE_K8S_BIN also overrides it)");
    public static readonly Setting SystemDefaultRegistry = new("", "system-default-registry", SettingKind.String, "",
        "Registry all system images come from (pause, coredns, local-path-provisioner, metrics-server), HOST[:PORT][/PATH] like registry.local:5000; an image set explicitly wins; airgap tarballs must carry the prefixed names");
    public static readonly Setting LogFormat = new("", "log-format", SettingKind.String, "text",
        "Log format") { Choices = ["text", "json"] };
    public static readonly Setting LogLevel = new("", "log-level", SettingKind.String, "info",
        "Minimum log level") { Choices = ["trace", "debug", "info", "warn", "error"] };

    public static readonly Setting ClusterCidr = new("server", "cluster-cidr", SettingKind.Cidr, "10.42.0.0/16",
        "Pod network; each node gets a /24 from it") { ServerOnly = true };
    public static readonly Setting ServiceCidr = new("server", "service-cidr", SettingKind.Cidr, "10.43.0.0/16",
        "Service network") { ServerOnly = true };
    public static readonly Setting ClusterDns = new("server", "cluster-dns", SettingKind.IpAddress, "10.43.0.10",
        "Cluster DNS service address (inside service-cidr)") { ServerOnly = true };
    public static readonly Setting ClusterDomain = new("server", "cluster-domain", SettingKind.String, "cluster.local",
        "Cluster domain") { ServerOnly = true };
    public static readonly Setting DatastoreEndpoint = new("server", "datastore-endpoint", SettingKind.String, "",
        "Datastore: empty for the default, else SCHEME://... for the installed datastore plugin serving that scheme (coracle plugins list)") { ServerOnly = true, Secret = true };
    public static readonly Setting ClusterInit = new("server", "cluster-init", SettingKind.Boolean, "false",
        "Start an embedded etcd (the etcd datastore plugin) as the first member of a cluster other servers join; not with datastore-endpoint (docs/ha.md)") { ServerOnly = true };
    public static readonly Setting TlsSan = new("server", "tls-san", SettingKind.StringList, Array.Empty<string>(),
        "Extra host names or IPs for the API server certificate") { ServerOnly = true };
    public static readonly Setting WriteKubeconfig = new("server", "write-kubeconfig", SettingKind.String, "/etc/coracle/coracle.yaml",
        "Where the admin kubeconfig is written") { ServerOnly = true };
    public static readonly Setting WriteKubeconfigMode = new("server", "write-kubeconfig-mode", SettingKind.FileMode, "0600",
        "File mode of the admin kubeconfig") { ServerOnly = true };
    public static readonly Setting HttpsListenPort = new("server", "https-listen-port", SettingKind.Integer, 6443L,
        "kube-apiserver's HTTPS port") { ServerOnly = true };
    public static readonly Setting SupervisorPort = new("server", "supervisor-port", SettingKind.Integer, 9345L,
        "HTTPS port of the join API and agent tunnel") { ServerOnly = true };
    public static readonly Setting EgressSelectorMode = new("server", "egress-selector-mode", SettingKind.String, "agent",
        "How kube-apiserver reaches kubelets, pods and services (K3s's modes, docs/cluster-identity.md): agent = kubelets through the agents' tunnels; pod = also pods through their node's tunnel; cluster = also Service IPs; disabled = no egress selector") { ServerOnly = true, Choices = ["agent", "pod", "cluster", "disabled"] };
    public static readonly Setting CertLifetime = new("server", "cert-lifetime", SettingKind.Duration, "8760h",
        "Lifetime of issued leaf certificates; they are renewed, at start and while running, within 120 days of expiry (a third of a shorter lifetime)") { ServerOnly = true };
    public static readonly Setting CaCertLifetime = new("server", "ca-cert-lifetime", SettingKind.Duration, "87600h",
        "Lifetime of the certificate authorities Coracle creates") { ServerOnly = true };
    public static readonly Setting SecretsEncryption = new("server", "secrets-encryption", SettingKind.Boolean, "false",
        "Encrypt Secrets at rest: kube-apiserver gets an encryption configuration (DATA/server/cred/encryption-config.json, 0600); 'coracle secrets-encrypt status|rotate-keys' manage its keys (docs/secrets-encryption.md)") { ServerOnly = true };
    public static readonly Setting SecretsEncryptionProvider = new("server", "secrets-encryption-provider", SettingKind.String, "aescbc",
        "Cipher of new encryption keys, as in K3s: aescbc is AES-CBC with PKCS#7 padding, secretbox is XSalsa20-Poly1305") { ServerOnly = true, Choices = ["aescbc", "secretbox"] };
    public static readonly Setting EtcdSnapshotScheduleCron = new("server", "etcd-snapshot-schedule-cron", SettingKind.String, "0 */12 * * *",
        "When the server snapshots its datastore, as a 5-field cron expression in UTC (K3s's flag; docs/ha.md)") { ServerOnly = true };
    public static readonly Setting EtcdSnapshotRetention = new("server", "etcd-snapshot-retention", SettingKind.Integer, 5L,
        "Scheduled snapshots kept (the newest; older ones are deleted)") { ServerOnly = true };
    public static readonly Setting EtcdSnapshotDir = new("server", "etcd-snapshot-dir", SettingKind.String, "",
        "Folder of datastore snapshots (default DATA/server/db/snapshots, mode 0700)") { ServerOnly = true };
    public static readonly Setting EtcdDisableSnapshots = new("server", "etcd-disable-snapshots", SettingKind.Boolean, "false",
        "No scheduled snapshots ('coracle etcd-snapshot save' still works)") { ServerOnly = true };
    public static readonly Setting ClusterReset = new("server", "cluster-reset", SettingKind.Boolean, "false",
        "Start the datastore as a one-member cluster of its data, or of cluster-reset-restore-path's snapshot; the old data is moved aside, never deleted (docs/ha.md)") { ServerOnly = true };
    public static readonly Setting ClusterResetRestorePath = new("server", "cluster-reset-restore-path", SettingKind.String, "",
        "Snapshot file to restore with --cluster-reset; a corrupt or foreign file is refused and nothing changes") { ServerOnly = true };
    public static readonly Setting KubeApiserverArg = new("server", "kube-apiserver-arg", SettingKind.ArgList, Array.Empty<string>(),
        "Extra kube-apiserver flag NAME=VALUE, one per occurrence (values may hold commas); they override Coracle's defaults") { ServerOnly = true };
    public static readonly Setting KubeControllerManagerArg = new("server", "kube-controller-manager-arg", SettingKind.ArgList, Array.Empty<string>(),
        "Extra kube-controller-manager flag NAME=VALUE, one per occurrence") { ServerOnly = true };
    public static readonly Setting KubeSchedulerArg = new("server", "kube-scheduler-arg", SettingKind.ArgList, Array.Empty<string>(),
        "Extra kube-scheduler flag NAME=VALUE, one per occurrence") { ServerOnly = true };
    public static readonly Setting DisableCloudController = new("server", "disable-cloud-controller", SettingKind.Boolean, "false",
        "Do not run the cloud-node controller (node addresses, providerID, the uninitialized taint); kubelets then run without --cloud-provider=external and set their own addresses (no ExternalIP)") { ServerOnly = true };

    public static readonly Setting Server = new("agent", "server", SettingKind.String, "",
        "Server to join, https://HOST:9345: an agent's server, or on a server another server of the cluster (it then joins as a server, with the server token; docs/ha.md)");
    public static readonly Setting PauseImage = new("agent", "pause-image", SettingKind.String, "docker.io/rancher/mirrored-pause:3.6",
        "Pod sandbox image (import it as an airgap tarball); the default comes from system-default-registry when that is set");
    public static readonly Setting KubeletArg = new("agent", "kubelet-arg", SettingKind.ArgList, Array.Empty<string>(),
        "Extra kubelet flag NAME=VALUE, one per occurrence (feature-gates=A=true,B=false works); they override Coracle's defaults");
    public static readonly Setting KubeProxyArg = new("agent", "kube-proxy-arg", SettingKind.ArgList, Array.Empty<string>(),
        "Extra kube-proxy flag NAME=VALUE, one per occurrence");
    public static readonly Setting NodeLabel = new("agent", "node-label", SettingKind.ArgList, Array.Empty<string>(),
        "Label KEY=VALUE the node registers with, one per occurrence");
    public static readonly Setting NodeTaint = new("agent", "node-taint", SettingKind.ArgList, Array.Empty<string>(),
        "Taint KEY=VALUE:EFFECT (or KEY:EFFECT) the node registers with, one per occurrence; EFFECT is NoSchedule, PreferNoSchedule or NoExecute");
    public static readonly Setting ProtectKernelDefaults = new("agent", "protect-kernel-defaults", SettingKind.Boolean, "false",
        "The kubelet refuses to start when kernel tunables differ from its defaults instead of changing them (CIS hardening)");
    public static readonly Setting PodLogsDir = new("agent", "pod-logs-dir", SettingKind.String, "/var/log/pods",
        "Folder of the pods' log files (the kubelet's podLogsDir; log shippers read /var/log/pods, as on K3s); several nodes on one machine need one each, or each kubelet deletes the others' logs");
    public static readonly Setting LbServerPort = new("agent", "lb-server-port", SettingKind.Integer, 6444L,
        "Loopback port of the agent's load balancer for the API servers (K3s's flag): the agent's kubelet, kube-proxy and controllers reach every server of the cluster through it, failing over when one is down (docs/ha.md)");
    public static readonly Setting TunnelAllowedPorts = new("agent", "tunnel-allowed-ports", SettingKind.StringList, new[] { "10250" },
        "Local ports the server may reach through the agent's tunnel (the kubelet's by default)");

    public static readonly Setting PluginDirs = new("plugins", "plugin-dir", SettingKind.StringList, Array.Empty<string>(),
        "Extra folders to load plugins from (besides plugins/ beside the executable)");
    public static readonly Setting Cni = new("plugins", "cni", SettingKind.String, "",
        "CNI plugin by name, or none; empty: the installed one marked default (coracle plugins list)");
    public static readonly Setting Ingress = new("plugins", "ingress", SettingKind.String, "",
        "Ingress plugin by name, or none; empty: the installed one marked default");
    public static readonly Setting LoadBalancer = new("plugins", "load-balancer", SettingKind.String, "",
        "Service load balancer plugin by name, or none; empty: the installed one marked default");
    public static readonly Setting Runtime = new("plugins", "runtime", SettingKind.String, "",
        "Container runtime plugin by name; empty: the installed one marked default");
    public static readonly Setting Enable = new("plugins", "enable", SettingKind.StringList, Array.Empty<string>(),
        "Extra plugins to activate beside the defaults (runtime handlers are active when installed)");

    public static readonly Setting RestartBackoff = new("supervisor", "restart-backoff", SettingKind.Duration, "1s",
        "First wait before restarting a component; doubles each time");
    public static readonly Setting RestartMaxBackoff = new("supervisor", "restart-max-backoff", SettingKind.Duration, "30s",
        "Longest wait between restarts");
    public static readonly Setting CrashLoopLimit = new("supervisor", "crash-loop-limit", SettingKind.Integer, 10L,
        "Restarts within crash-loop-window before a component is marked failed");
    public static readonly Setting CrashLoopWindow = new("supervisor", "crash-loop-window", SettingKind.Duration, "5m",
        "Window for crash-loop-limit");
    public static readonly Setting StopTimeout = new("supervisor", "stop-timeout", SettingKind.Duration, "10s",
        "Graceful stop time before a component is killed (kube-apiserver gets at least 30s)");

    public static readonly Setting UpdateCa = new("update", "update-ca", SettingKind.String, "/etc/coracle/update-ca.pem",
        "PEM file of the update CA certificates: a bundle is applied only when its signer's certificate chains to one of them (docs/updates.md)");
    public static readonly Setting UpdateTrialDeadline = new("update", "update-trial-deadline", SettingKind.Duration, "5m",
        "Time a new slot has to become healthy after it starts on trial; otherwise that start counts as failed");
    public static readonly Setting UpdateTrialAttempts = new("update", "update-trial-attempts", SettingKind.Integer, 3L,
        "Failed trial starts of a new slot before the boot guard switches back to the good slot");

    public static IReadOnlyList<Setting> All { get; } =
    [
        DataDir, NodeName, NodeIp, NodeExternalIp, Token, Disable, ComponentsDir, SystemDefaultRegistry, LogFormat, LogLevel,
        ClusterCidr, ServiceCidr, ClusterDns, ClusterDomain, DatastoreEndpoint, ClusterInit, TlsSan, WriteKubeconfig,
        WriteKubeconfigMode, HttpsListenPort, SupervisorPort, EgressSelectorMode, CertLifetime, CaCertLifetime,
        SecretsEncryption, SecretsEncryptionProvider,
        EtcdSnapshotScheduleCron, EtcdSnapshotRetention, EtcdSnapshotDir, EtcdDisableSnapshots, ClusterReset, ClusterResetRestorePath,
        KubeApiserverArg, KubeControllerManagerArg, KubeSchedulerArg, DisableCloudController,
        Server, PauseImage, KubeletArg, KubeProxyArg, NodeLabel, NodeTaint, ProtectKernelDefaults, PodLogsDir, LbServerPort, TunnelAllowedPorts,
        PluginDirs, Cni, Ingress, LoadBalancer, Runtime, Enable,
        RestartBackoff, RestartMaxBackoff, CrashLoopLimit, CrashLoopWindow, StopTimeout,
        UpdateCa, UpdateTrialDeadline, UpdateTrialAttempts,
    ];

    /// <summary>
    /// Coracle's settings and <paramref name="pluginSettings"/> by section, in the order appliance.toml documents them:
    /// the top level, Coracle's sections, then each plugin's <c>[plugins.NAME]</c> table by name. Empty sections are left out.
    /// </summary>
    public static IEnumerable<(string Section, IReadOnlyList<Setting> Settings)> BySection(IReadOnlyList<Setting> pluginSettings)
    {
        var pluginSections = pluginSettings.Select(s => s.Section).Distinct().Order(StringComparer.Ordinal);
        foreach (var section in new[] { "" }.Concat(Sections).Concat(pluginSections))
        {
            var settings = All.Concat(pluginSettings).Where(s => s.Section == section).ToList();
            if (settings.Count > 0)
            {
                yield return (section, settings);
            }
        }
    }

    /// <summary>The TOML sections that exist; <c>[plugins.NAME]</c> tables hold plugin options.</summary>
    public static IReadOnlyList<string> Sections { get; } = ["server", "agent", "plugins", "supervisor", "update"];
}
