namespace Coracle.Plugins;

/// <summary>The node-wide settings every plugin may read. Immutable.</summary>
public sealed record NodeSettings
{
    /// <summary><c>server</c> or <c>agent</c>.</summary>
    public required string Role { get; init; }

    /// <summary>The node's name (defaults to the host name).</summary>
    public required string NodeName { get; init; }

    /// <summary>The node's addresses, first one preferred (<c>--node-ip</c>). May be empty: detect it.</summary>
    public IReadOnlyList<string> NodeIps { get; init; } = [];

    /// <summary>The data dir (<c>--data-dir</c>), for example <c>/var/lib/coracle</c>.</summary>
    public required string DataDir { get; init; }

    /// <summary>Runtime state (sockets, pid files), for example <c>/run/coracle</c>.</summary>
    public required string RunDir { get; init; }

    /// <summary>The folder holding Kubernetes binaries and other components the image ships.</summary>
    public required string ComponentsDir { get; init; }

    /// <summary>The process architecture as .NET names it (<c>x64</c>, <c>arm64</c>).</summary>
    public required string Architecture { get; init; }

    /// <summary>The pod network (<c>--cluster-cidr</c>), for example <c>10.42.0.0/16</c>.</summary>
    public required string ClusterCidr { get; init; }

    /// <summary>The service network (<c>--service-cidr</c>), for example <c>10.43.0.0/16</c>.</summary>
    public required string ServiceCidr { get; init; }

    /// <summary>The cluster DNS service address (<c>--cluster-dns</c>).</summary>
    public required string ClusterDns { get; init; }

    /// <summary>The cluster domain (<c>--cluster-domain</c>).</summary>
    public required string ClusterDomain { get; init; }

    /// <summary>The datastore endpoint as the user gave it (<c>--datastore-endpoint</c>); empty for the default.</summary>
    public string DatastoreEndpoint { get; init; } = "";

    /// <summary>
    /// The pod sandbox image (<c>--pause-image</c>); already taken from <see cref="SystemDefaultRegistry"/> when the
    /// operator did not set it.
    /// </summary>
    public required string PauseImage { get; init; }

    /// <summary>
    /// The registry every system image comes from (<c>--system-default-registry</c>, K3s's flag): <c>HOST[:PORT][/PATH]</c>,
    /// for example <c>registry.local:5000</c>; empty for the images' own registries. Plugins apply it with
    /// <see cref="SystemImage"/> to the images they name themselves, not to one the operator set.
    /// </summary>
    public string SystemDefaultRegistry { get; init; } = "";

    /// <summary>
    /// The server URL this node joins (<c>--server</c>): an agent's server, or on a server the server it joined as another
    /// server of the cluster; empty on a first (or only) server.
    /// </summary>
    public string ServerUrl { get; init; } = "";

    /// <summary>
    /// On a server that joined another: what the serving server's datastore plugin returned from
    /// <see cref="IDatastoreCluster.AddMemberAsync"/> for it (for etcd, the initial cluster). Empty on a first server, on
    /// agents, and for datastores that are not clusters.
    /// </summary>
    public IReadOnlyDictionary<string, string> DatastoreJoin { get; init; } = new Dictionary<string, string>();

    /// <summary>
    /// A kubeconfig for the node's in-process controllers (a CNI's subnet leases, a service load balancer): user
    /// <c>system:coracle-controller</c>, which may list, watch and patch Nodes; read Services, Endpoints, EndpointSlices,
    /// Pods, Secrets, Ingresses and IngressClasses cluster-wide; publish Service and Ingress status; create IngressClasses
    /// and Events. A kubelet's own credentials read only its own Node (Kubernetes 1.32's node authorizer).
    /// Empty when the host provides none.
    /// </summary>
    public string ControllerKubeconfig { get; init; } = "";

    /// <summary>
    /// The cgroup driver of this host, decided once by the host for every component: <c>systemd</c> on a unified
    /// cgroup v2 host whose PID 1 is systemd, else <c>cgroupfs</c>. A container runtime must use the same one as the
    /// kubelet, or pods fail.
    /// </summary>
    public string CgroupDriver { get; init; } = "cgroupfs";

    /// <summary>
    /// <paramref name="image"/> taken from <see cref="SystemDefaultRegistry"/>: its registry host replaced, or the registry
    /// put in front when it names none (K3s's rule: a first path component is a registry host when it contains <c>.</c> or
    /// <c>:</c> or is <c>localhost</c>). With <c>registry.local:5000</c>,
    /// <c>docker.io/rancher/mirrored-coredns-coredns:1.12.0</c> becomes <c>registry.local:5000/rancher/mirrored-coredns-coredns:1.12.0</c>
    /// and <c>rancher/mirrored-pause:3.6</c> becomes <c>registry.local:5000/rancher/mirrored-pause:3.6</c>. Unchanged when
    /// no system default registry is set. Use it for the images a plugin names by default; an image the operator chose wins.
    /// </summary>
    /// <param name="image">An image reference, <c>[HOST[:PORT]/]PATH[:TAG][@DIGEST]</c>.</param>
    public string SystemImage(string image) => WithRegistry(SystemDefaultRegistry, image);

    /// <summary>
    /// <paramref name="image"/> with its registry host replaced by <paramref name="registry"/> (or <paramref name="registry"/>
    /// put in front when the image names no host); unchanged when <paramref name="registry"/> is empty. See <see cref="SystemImage"/>.
    /// </summary>
    /// <param name="registry">A registry, <c>HOST[:PORT][/PATH]</c>, or empty.</param>
    /// <param name="image">An image reference.</param>
    public static string WithRegistry(string registry, string image)
    {
        ArgumentNullException.ThrowIfNull(registry);
        ArgumentNullException.ThrowIfNull(image);
        registry = registry.TrimEnd('/');
        if (registry.Length == 0 || image.Length == 0)
        {
            return image;
        }

        var slash = image.IndexOf('/', StringComparison.Ordinal);
        var path = slash > 0 && IsRegistryHost(image[..slash]) ? image[(slash + 1)..] : image;
        return registry + "/" + path;
    }

    /// <summary>True when <paramref name="component"/>, an image reference's first path component, is a registry host.</summary>
    private static bool IsRegistryHost(string component) =>
        component.Contains('.', StringComparison.Ordinal) || component.Contains(':', StringComparison.Ordinal) || component == "localhost";
}
