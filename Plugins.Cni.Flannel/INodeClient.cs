namespace Coracle.Plugins.Cni.Flannel;

/// <summary>
/// The few Kubernetes Node operations the lease source needs. A seam: <see cref="KubernetesNodeClient"/> talks to
/// kube-apiserver through the KubernetesClient package; unit tests fake it.
/// </summary>
internal interface INodeClient
{
    /// <summary>The named node, or null when it does not exist.</summary>
    Task<NodeInfo?> GetNodeAsync(string name, CancellationToken cancellationToken);

    /// <summary>Merges <paramref name="annotations"/> into the node's annotations (a merge patch).</summary>
    Task PatchAnnotationsAsync(string name, IReadOnlyDictionary<string, string> annotations, CancellationToken cancellationToken);

    /// <summary>All nodes and the list's resource version.</summary>
    Task<(IReadOnlyList<NodeInfo> Nodes, string ResourceVersion)> ListNodesAsync(CancellationToken cancellationToken);

    /// <summary>Node changes after <paramref name="resourceVersion"/>, until the server ends the watch.</summary>
    IAsyncEnumerable<NodeChange> WatchNodesAsync(string resourceVersion, CancellationToken cancellationToken);
}

/// <summary>What the lease source reads from a Node.</summary>
internal sealed record NodeInfo(string Name, string? PodCidr, IReadOnlyDictionary<string, string> Annotations);

/// <summary>A watch event.</summary>
/// <param name="Deleted">True for DELETED, false for ADDED and MODIFIED.</param>
/// <param name="Node">The node as the event carries it.</param>
internal sealed record NodeChange(bool Deleted, NodeInfo Node);
