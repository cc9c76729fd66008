using YamlDotNet.Serialization;

namespace Coracle.Plugins.Cni.Calico;

/// <summary>
/// Calico's manifests: the tigera operator's essentials (namespace, the operator.tigera.io CRDs it is configured
/// through, service account, RBAC, deployment) and the <c>Installation</c> and <c>APIServer</c> resources describing
/// the network. Built as objects and serialized, so the YAML is always well formed.
/// </summary>
public static class CalicoManifests
{
    /// <summary>The operator manifest's file name.</summary>
    public const string OperatorFile = "calico-operator.yaml";

    /// <summary>The installation manifest's file name.</summary>
    public const string InstallationFile = "calico-installation.yaml";

    /// <summary>The operator's namespace.</summary>
    public const string OperatorNamespace = "tigera-operator";

    /// <summary>Renders the operator manifest (several YAML documents).</summary>
    public static string RenderOperator(CalicoSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var labels = new Dictionary<string, object> { ["k8s-app"] = "tigera-operator" };
        var documents = new List<object>
        {
            new Dictionary<string, object>
            {
                ["apiVersion"] = "v1",
                ["kind"] = "Namespace",
                ["metadata"] = new Dictionary<string, object>
                {
                    ["name"] = OperatorNamespace,
                    ["labels"] = new Dictionary<string, object> { ["name"] = OperatorNamespace, ["pod-security.kubernetes.io/enforce"] = "privileged" },
                },
            },
            Crd("installations", "Installation", "InstallationList"),
            Crd("apiservers", "APIServer", "APIServerList"),
            Crd("tigerastatuses", "TigeraStatus", "TigeraStatusList"),
            new Dictionary<string, object>
            {
                ["apiVersion"] = "v1",
                ["kind"] = "ServiceAccount",
                ["metadata"] = new Dictionary<string, object> { ["name"] = "tigera-operator", ["namespace"] = OperatorNamespace },
            },
            new Dictionary<string, object>
            {
                // The operator creates and manages every Calico component, so it needs broad rights (as upstream's manifest grants).
                ["apiVersion"] = "rbac.authorization.k8s.io/v1",
                ["kind"] = "ClusterRole",
                ["metadata"] = new Dictionary<string, object> { ["name"] = "tigera-operator" },
                ["rules"] = new List<object>
                {
                    new Dictionary<string, object>
                    {
                        ["apiGroups"] = new List<object> { "*" },
                        ["resources"] = new List<object> { "*" },
                        ["verbs"] = new List<object> { "*" },
                    },
                },
            },
            new Dictionary<string, object>
            {
                ["apiVersion"] = "rbac.authorization.k8s.io/v1",
                ["kind"] = "ClusterRoleBinding",
                ["metadata"] = new Dictionary<string, object> { ["name"] = "tigera-operator" },
                ["subjects"] = new List<object>
                {
                    new Dictionary<string, object> { ["kind"] = "ServiceAccount", ["name"] = "tigera-operator", ["namespace"] = OperatorNamespace },
                },
                ["roleRef"] = new Dictionary<string, object>
                {
                    ["kind"] = "ClusterRole", ["name"] = "tigera-operator", ["apiGroup"] = "rbac.authorization.k8s.io",
                },
            },
            new Dictionary<string, object>
            {
                ["apiVersion"] = "apps/v1",
                ["kind"] = "Deployment",
                ["metadata"] = new Dictionary<string, object> { ["name"] = "tigera-operator", ["namespace"] = OperatorNamespace, ["labels"] = labels },
                ["spec"] = new Dictionary<string, object>
                {
                    ["replicas"] = 1,
                    ["selector"] = new Dictionary<string, object> { ["matchLabels"] = labels },
                    ["template"] = new Dictionary<string, object>
                    {
                        ["metadata"] = new Dictionary<string, object> { ["labels"] = labels },
                        ["spec"] = new Dictionary<string, object>
                        {
                            ["serviceAccountName"] = "tigera-operator",
                            ["hostNetwork"] = true,
                            ["dnsPolicy"] = "ClusterFirstWithHostNet",
                            ["tolerations"] = new List<object> { new Dictionary<string, object> { ["effect"] = "NoExecute", ["operator"] = "Exists" }, new Dictionary<string, object> { ["effect"] = "NoSchedule", ["operator"] = "Exists" } },
                            ["nodeSelector"] = new Dictionary<string, object> { ["kubernetes.io/os"] = "linux" },
                            ["containers"] = new List<object>
                            {
                                new Dictionary<string, object>
                                {
                                    ["name"] = "tigera-operator",
                                    ["image"] = settings.OperatorImage,
                                    ["imagePullPolicy"] = "IfNotPresent",
                                    ["command"] = new List<object> { "operator" },
                                    ["env"] = new List<object>
                                    {
                                        Env("WATCH_NAMESPACE", ""),
                                        Env("OPERATOR_NAME", "tigera-operator"),
                                        // The API server is reached directly: pods on the host network cannot use the service IP before Calico runs.
                                        Env("KUBERNETES_SERVICE_HOST", "127.0.0.1"),
                                        Env("KUBERNETES_SERVICE_PORT", "6443"),
                                    },
                                },
                            },
                        },
                    },
                },
            },
        };
        return Serialize(documents);
    }

    /// <summary>Renders the Installation (and the default APIServer).</summary>
    public static string RenderInstallation(CalicoSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var documents = new List<object>
        {
            new Dictionary<string, object>
            {
                ["apiVersion"] = "operator.tigera.io/v1",
                ["kind"] = "Installation",
                ["metadata"] = new Dictionary<string, object> { ["name"] = "default" },
                ["spec"] = new Dictionary<string, object>
                {
                    ["cni"] = new Dictionary<string, object> { ["type"] = "Calico", ["ipam"] = new Dictionary<string, object> { ["type"] = "Calico" } },
                    ["calicoNetwork"] = new Dictionary<string, object>
                    {
                        ["bgp"] = settings.Encapsulation == "VXLAN" ? "Disabled" : "Enabled",
                        ["mtu"] = settings.Mtu,
                        // K3s's Calico guide: pods need IP forwarding for service traffic to work.
                        ["containerIPForwarding"] = "Enabled",
                        ["nodeAddressAutodetectionV4"] = Autodetection(settings),
                        ["ipPools"] = new List<object>
                        {
                            new Dictionary<string, object>
                            {
                                ["name"] = "default-ipv4-ippool",
                                ["cidr"] = settings.ClusterCidr,
                                ["blockSize"] = settings.BlockSize,
                                ["encapsulation"] = settings.Encapsulation,
                                ["natOutgoing"] = "Enabled",
                                ["nodeSelector"] = "all()",
                            },
                        },
                    },
                },
            },
            new Dictionary<string, object>
            {
                ["apiVersion"] = "operator.tigera.io/v1",
                ["kind"] = "APIServer",
                ["metadata"] = new Dictionary<string, object> { ["name"] = "default" },
                ["spec"] = new Dictionary<string, object>(),
            },
        };
        return Serialize(documents);
    }

    /// <summary>
    /// How calico-node picks each node's address: the Kubernetes InternalIP when <c>--node-ip</c> was given (the kubelet
    /// advertises it), the interface when <c>--calico-iface</c> was, otherwise the first found.
    /// </summary>
    public static Dictionary<string, object> Autodetection(CalicoSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        if (settings.NodeIp.Length > 0)
        {
            return new Dictionary<string, object> { ["kubernetes"] = "NodeInternalIP" };
        }

        return settings.Interface.Length > 0
            ? new Dictionary<string, object> { ["interface"] = settings.Interface }
            : new Dictionary<string, object> { ["firstFound"] = true };
    }

    private static Dictionary<string, object> Env(string name, string value) => new() { ["name"] = name, ["value"] = value };

    private static Dictionary<string, object> Crd(string plural, string kind, string listKind) => new()
    {
        ["apiVersion"] = "apiextensions.k8s.io/v1",
        ["kind"] = "CustomResourceDefinition",
        ["metadata"] = new Dictionary<string, object> { ["name"] = $"{plural}.operator.tigera.io" },
        ["spec"] = new Dictionary<string, object>
        {
            ["group"] = "operator.tigera.io",
            ["scope"] = "Cluster",
            ["names"] = new Dictionary<string, object>
            {
                ["kind"] = kind, ["listKind"] = listKind, ["plural"] = plural, ["singular"] = kind.ToLowerInvariant(),
            },
            ["versions"] = new List<object>
            {
                new Dictionary<string, object>
                {
                    ["name"] = "v1",
                    ["served"] = true,
                    ["storage"] = true,
                    ["subresources"] = new Dictionary<string, object> { ["status"] = new Dictionary<string, object>() },
                    // Upstream ships the full schema; the operator validates the spec itself.
                    ["schema"] = new Dictionary<string, object>
                    {
                        ["openAPIV3Schema"] = new Dictionary<string, object>
                        {
                            ["type"] = "object",
                            ["x-kubernetes-preserve-unknown-fields"] = true,
                        },
                    },
                },
            },
        },
    };

    private static string Serialize(IEnumerable<object> documents)
    {
        var serializer = new SerializerBuilder().Build();
        return string.Join("---\n", documents.Select(serializer.Serialize));
    }
}
