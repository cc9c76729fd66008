namespace Coracle.Core.Tunnel;

/// <summary>
/// K3s's <c>egress-selector-mode</c>: which of kube-apiserver's "cluster" connections (kubelets, pods, services) the
/// egress proxy carries through the agents' tunnels. Every mode but <see cref="Disabled"/> refuses addresses that are
/// neither a node, a pod nor a service of this cluster.
/// </summary>
internal enum EgressMode
{
    /// <summary>Kubelets through the agents' tunnels; pods and services dialled from this server (its CNI and kube-proxy). K3s's default.</summary>
    Agent,

    /// <summary>Also pods, through the tunnel of the node whose podCIDR holds the pod's address (directly for this server's own pods).</summary>
    Pod,

    /// <summary>Also Service cluster IPs, resolved to one ready endpoint and routed like a pod; endpoints outside every podCIDR by their EndpointSlice node.</summary>
    Cluster,

    /// <summary>No egress selector: kube-apiserver dials everything itself; the agents' kubelets (bound to 127.0.0.1) are unreachable.</summary>
    Disabled,
}
