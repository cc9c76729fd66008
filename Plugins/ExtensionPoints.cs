namespace Coracle.Plugins;

/// <summary>The names of the extension points a plugin can fill. They appear in metadata, config and errors.</summary>
public static class ExtensionPoints
{
    /// <summary>The etcd v3 API the Kubernetes API server stores its state in. Exactly one is active.</summary>
    public const string Datastore = "datastore";

    /// <summary>The CRI container runtime. Exactly one is active.</summary>
    public const string ContainerRuntime = "runtime";

    /// <summary>Extra runtime handlers (for example NVIDIA). Any number are active.</summary>
    public const string RuntimeHandler = "runtime-handler";

    /// <summary>Node networking. Zero or one is active.</summary>
    public const string Cni = "cni";

    /// <summary>The ingress controller. Zero or one is active.</summary>
    public const string Ingress = "ingress";

    /// <summary>The service load balancer. Zero or one is active.</summary>
    public const string LoadBalancer = "loadbalancer";

    /// <summary>
    /// Packaged cluster add-ons (K3s's coredns, local-storage, metrics-server), server only. Every installed one is active
    /// unless <c>--disable NAME</c> turns it off.
    /// </summary>
    public const string Addon = "addon";

    /// <summary>Every extension point, in start-up order.</summary>
    public static IReadOnlyList<string> All { get; } =
        [Datastore, ContainerRuntime, RuntimeHandler, Cni, Ingress, LoadBalancer, Addon];
}
