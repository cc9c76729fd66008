using System.Globalization;
using Coracle.Core.Configuration;

namespace Coracle.Core.Kubernetes;

/// <summary>Files and endpoints the Kubernetes components' command lines refer to.</summary>
internal sealed record KubernetesPaths
{
    public required string TlsDir { get; init; }
    public required string CredDir { get; init; }
    public required IReadOnlyList<string> DatastoreServers { get; init; }
    public Plugins.TlsFiles? DatastoreTls { get; init; }
    public string? EgressSelectorConfigFile { get; init; }

    /// <summary>kube-apiserver's EncryptionConfiguration (<c>--secrets-encryption</c>, Core/Secrets); null: Secrets stored as written.</summary>
    public string? EncryptionProviderConfigFile { get; init; }
    /// <summary>The CRI socket the container runtime plugin reported (<c>RuntimeEndpoint.CriSocket</c>); empty until it did.</summary>
    public string CriSocket { get; init; } = "";
    public string AdvertiseAddress { get; init; } = "";
    public string NodeIp { get; init; } = "";

    /// <summary>The kubelet's configuration file; null leaves the settings it holds to the kubelet's defaults.</summary>
    public string? KubeletConfigFile { get; init; }

    /// <summary>Where the kubelet serves its API: 0.0.0.0 on a server, 127.0.0.1 on an agent (reached through the tunnel).</summary>
    public string KubeletAddress { get; init; } = "0.0.0.0";

    /// <summary>FlexVolume plugins (kube-controller-manager's <c>--flex-volume-plugin-dir</c>, the kubelet's <c>volumePluginDir</c>).</summary>
    public string? VolumePluginDir { get; init; }

    /// <summary>The kubelet's and kube-proxy's folder of certificates and kubeconfigs (server/tls + server/cred, or agent/).</summary>
    public string? NodeCredDir { get; init; }

    public string Tls(string file) => Path.Combine(TlsDir, file);

    public string Cred(string file) => Path.Combine(CredDir, file);

    public string Node(string file) => Path.Combine(NodeCredDir ?? TlsDir, file);

    public string NodeCred(string file) => Path.Combine(NodeCredDir ?? CredDir, file);
}

/// <summary>
/// Command lines of the Kubernetes components, configured the way K3s configures them (Kubernetes 1.32): a map of
/// defaults merged with the user's extra args (<c>--kube-apiserver-arg</c> and friends), which win.
/// </summary>
internal static class ComponentArgs
{
    public static SortedDictionary<string, string> ApiServerDefaults(CoracleConfig c, KubernetesPaths p)
    {
        var args = new SortedDictionary<string, string>(StringComparer.Ordinal)
        {
            ["allow-privileged"] = "true",
            ["anonymous-auth"] = "false",
            ["api-audiences"] = $"https://kubernetes.default.svc.{c.ClusterDomain},coracle",
            ["authorization-mode"] = "Node,RBAC",
            ["bind-address"] = "0.0.0.0",
            ["cert-dir"] = p.Tls("temporary-certs"),
            ["client-ca-file"] = p.Tls("client-ca.crt"),
            ["enable-admission-plugins"] = "NodeRestriction",
            ["enable-aggregator-routing"] = "true",
            ["etcd-servers"] = string.Join(",", p.DatastoreServers),
            ["kubelet-certificate-authority"] = p.Tls("server-ca.crt"),
            ["kubelet-client-certificate"] = p.Tls("client-kube-apiserver.crt"),
            ["kubelet-client-key"] = p.Tls("client-kube-apiserver.key"),
            ["kubelet-preferred-address-types"] = "InternalIP,ExternalIP,Hostname",
            ["profiling"] = "false",
            ["proxy-client-cert-file"] = p.Tls("client-auth-proxy.crt"),
            ["proxy-client-key-file"] = p.Tls("client-auth-proxy.key"),
            ["requestheader-allowed-names"] = "system:auth-proxy",
            ["requestheader-client-ca-file"] = p.Tls("request-header-ca.crt"),
            ["requestheader-extra-headers-prefix"] = "X-Remote-Extra-",
            ["requestheader-group-headers"] = "X-Remote-Group",
            ["requestheader-username-headers"] = "X-Remote-User",
            ["secure-port"] = c.HttpsListenPort.ToString(CultureInfo.InvariantCulture),
            ["service-account-issuer"] = $"https://kubernetes.default.svc.{c.ClusterDomain}",
            ["service-account-key-file"] = p.Tls("service.key"),
            ["service-account-signing-key-file"] = p.Tls("service.key"),
            ["service-cluster-ip-range"] = c.ServiceCidr.ToString(),
            ["service-node-port-range"] = "30000-32767",

            // Without it kube-apiserver's graceful shutdown waits (up to a minute) for every open watch to end by
            // itself: an operator's `kubectl get -w`, or any client still watching, would hold the node's stop.
            // With it, watches are ended as the server stops accepting requests and drained for at most this long.
            ["shutdown-watch-termination-grace-period"] = "5s",
            ["storage-backend"] = "etcd3",
            ["tls-cert-file"] = p.Tls("serving-kube-apiserver.crt"),
            ["tls-private-key-file"] = p.Tls("serving-kube-apiserver.key"),
        };
        if (p.AdvertiseAddress.Length > 0)
        {
            args["advertise-address"] = p.AdvertiseAddress;
        }

        if (p.EgressSelectorConfigFile is not null)
        {
            args["egress-selector-config-file"] = p.EgressSelectorConfigFile;
        }

        if (p.EncryptionProviderConfigFile is not null)
        {
            // Reloaded when the file changes, so 'coracle secrets-encrypt rotate-keys' needs no restart.
            args["encryption-provider-config"] = p.EncryptionProviderConfigFile;
            args["encryption-provider-config-automatic-reload"] = "true";
        }

        if (p.DatastoreTls is { } tls)
        {
            args["etcd-cafile"] = tls.CaFile;
            args["etcd-certfile"] = tls.CertFile;
            args["etcd-keyfile"] = tls.KeyFile;
        }

        return args;
    }

    public static SortedDictionary<string, string> ControllerManagerDefaults(CoracleConfig c, KubernetesPaths p)
    {
        var kubeconfig = p.Cred("controller.kubeconfig");
        var args = new SortedDictionary<string, string>(StringComparer.Ordinal)
        {
            ["allocate-node-cidrs"] = "true",
            ["authentication-kubeconfig"] = kubeconfig,
            ["authorization-kubeconfig"] = kubeconfig,
            ["bind-address"] = "127.0.0.1",
            ["cluster-cidr"] = c.ClusterCidr.ToString(),
            ["cluster-signing-kube-apiserver-client-cert-file"] = p.Tls("client-ca.crt"),
            ["cluster-signing-kube-apiserver-client-key-file"] = p.Tls("client-ca.key"),
            ["cluster-signing-kubelet-client-cert-file"] = p.Tls("client-ca.crt"),
            ["cluster-signing-kubelet-client-key-file"] = p.Tls("client-ca.key"),
            ["cluster-signing-kubelet-serving-cert-file"] = p.Tls("server-ca.crt"),
            ["cluster-signing-kubelet-serving-key-file"] = p.Tls("server-ca.key"),
            ["cluster-signing-legacy-unknown-cert-file"] = p.Tls("server-ca.crt"),
            ["cluster-signing-legacy-unknown-key-file"] = p.Tls("server-ca.key"),
            ["configure-cloud-routes"] = "false",
            ["controllers"] = "*,tokencleaner,-service,-route,-cloud-node-lifecycle",
            // Client-side rate limit (kube-controller-manager's own defaults: 20 per second, bursts of 30). With
            // use-service-account-credentials each of its 38 controllers first gets and creates its service account and
            // asks for a token on one shared client; at 20/s that took 4.5 s on a fresh cluster, and the node-ipam
            // controller hands the node its podCIDR (which flannel waits for) only after the last one started. A burst of
            // 200 covers those requests; docs/benchmarks.md has the measurement. --kube-controller-manager-arg overrides.
            ["kube-api-burst"] = "200",
            ["kube-api-qps"] = "50",
            ["kubeconfig"] = kubeconfig,
            ["profiling"] = "false",
            ["root-ca-file"] = p.Tls("server-ca.crt"),
            ["secure-port"] = "10257",
            ["service-account-private-key-file"] = p.Tls("service.key"),
            ["service-cluster-ip-range"] = c.ServiceCidr.ToString(),
            ["tls-cert-file"] = p.Tls("serving-kube-controller-manager.crt"),
            ["tls-private-key-file"] = p.Tls("serving-kube-controller-manager.key"),
            ["use-service-account-credentials"] = "true",
        };
        if (p.VolumePluginDir is not null)
        {
            args["flex-volume-plugin-dir"] = p.VolumePluginDir;
        }

        return args;
    }

    public static SortedDictionary<string, string> SchedulerDefaults(KubernetesPaths p)
    {
        var kubeconfig = p.Cred("scheduler.kubeconfig");
        return new SortedDictionary<string, string>(StringComparer.Ordinal)
        {
            ["authentication-kubeconfig"] = kubeconfig,
            ["authorization-kubeconfig"] = kubeconfig,
            ["bind-address"] = "127.0.0.1",
            ["kubeconfig"] = kubeconfig,
            ["profiling"] = "false",
            ["secure-port"] = "10259",
            ["tls-cert-file"] = p.Tls("serving-kube-scheduler.crt"),
            ["tls-private-key-file"] = p.Tls("serving-kube-scheduler.key"),
        };
    }

    /// <summary>
    /// The kubelet's flags. Everything Kubernetes 1.32 wants in the configuration file (serving, authentication, cluster
    /// DNS, the CRI endpoint, cgroups) is in <see cref="KubeletConfig"/>; these are what remain flags.
    /// </summary>
    /// <param name="externalCloudProvider">
    /// <c>--cloud-provider=external</c>, as K3s runs it: the kubelet registers with the taint
    /// <c>node.cloudprovider.kubernetes.io/uninitialized</c> and the annotation <c>alpha.kubernetes.io/provided-node-ip</c>,
    /// and leaves status.addresses to the server's cloud-node controller once it has set them (<see cref="CloudNode"/>).
    /// </param>
    public static SortedDictionary<string, string> KubeletDefaults(
        string nodeName, string pauseImage, KubernetesPaths p, IReadOnlyList<string>? nodeLabels = null, bool externalCloudProvider = false)
    {
        var args = new SortedDictionary<string, string>(StringComparer.Ordinal)
        {
            ["hostname-override"] = nodeName,
            ["kubeconfig"] = p.NodeCred("kubelet.kubeconfig"),
            // Deprecated but still honoured in 1.32: keeps the image garbage collector off the sandbox image, which an
            // offline node cannot pull again.
            ["pod-infra-container-image"] = pauseImage,
        };
        if (p.NodeIp.Length > 0)
        {
            args["node-ip"] = p.NodeIp;
        }

        if (p.KubeletConfigFile is not null)
        {
            args["config"] = p.KubeletConfigFile;
        }

        if (externalCloudProvider)
        {
            args["cloud-provider"] = "external";
        }

        if (NodeRegistration.KubeletNodeLabels(nodeLabels ?? []) is { } labels)
        {
            args["node-labels"] = labels;
        }

        return args;
    }

    public static SortedDictionary<string, string> KubeProxyDefaults(string nodeName, string clusterCidr, KubernetesPaths p) =>
        new(StringComparer.Ordinal)
        {
            ["cluster-cidr"] = clusterCidr,
            ["conntrack-max-per-core"] = "0",
            ["conntrack-tcp-timeout-close-wait"] = "0s",
            ["conntrack-tcp-timeout-established"] = "0s",
            ["healthz-bind-address"] = "127.0.0.1:10256",
            ["hostname-override"] = nodeName,
            ["kubeconfig"] = p.NodeCred("kubeproxy.kubeconfig"),
            ["proxy-mode"] = "iptables",
        };

    /// <summary>
    /// Merges user extra args (<c>NAME=VALUE</c>, <c>--NAME=VALUE</c> or a bare <c>NAME</c> meaning <c>true</c>) over the
    /// defaults and renders <c>--NAME=VALUE</c> in name order, as K3s does.
    /// </summary>
    public static IReadOnlyList<string> Merge(IReadOnlyDictionary<string, string> defaults, IEnumerable<string> extra)
    {
        var merged = new SortedDictionary<string, string>(defaults.ToDictionary(kv => kv.Key, kv => kv.Value), StringComparer.Ordinal);
        foreach (var arg in extra)
        {
            var trimmed = arg.TrimStart('-');
            var eq = trimmed.IndexOf('=', StringComparison.Ordinal);
            if (eq < 0)
            {
                merged[trimmed] = "true";
            }
            else
            {
                merged[trimmed[..eq]] = trimmed[(eq + 1)..];
            }
        }

        return merged.Select(kv => $"--{kv.Key}={kv.Value}").ToList();
    }
}
