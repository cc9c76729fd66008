namespace Coracle.Node.Tests.Support;

/// <summary>
/// Inside one test process the real-cluster tests run one at a time: each starts kube-apiserver, a kubelet and
/// containerd on a 2-core machine. scripts/test.sh may run two classes at once in separate processes, so a test checks
/// only its own node's state (its processes, mounts, pod namespaces and networks, NodeHarness.FreeSubnet), never the
/// host's as a whole.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class RealClusterCollection
{
    public const string Name = "real cluster";
}
