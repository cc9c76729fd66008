namespace Coracle.Node.Tests.Support;

/// <summary>
/// The real-cluster tests run one at a time: each starts kube-apiserver, a kubelet and containerd on this 2-core
/// machine, and their checks (an ordered stop within the stop timeout, no leftover pod namespaces) assume that no
/// other cluster runs beside them.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class RealClusterCollection
{
    public const string Name = "real cluster";
}
