using Coracle.Node.Tests.Support;

namespace Coracle.Node.Tests.Node;

/// <summary>
/// Backup and restore on a real single-server cluster (CORACLE_K8S_BIN, containerd, flannel, in its own network
/// namespace): a ConfigMap and a pod, <c>coracle etcd-snapshot save</c>, a second ConfigMap, then a restart with
/// <c>--cluster-reset --cluster-reset-restore-path</c>: the first ConfigMap is there, the second gone, the old database
/// moved aside, the node Ready and the pod running again. Cleaned up by <c>coracle killall</c>.
/// </summary>
[Trait("Category", "Integration")]
[Collection(RealClusterCollection.Name)]
public sealed class SnapshotRestoreTests : IDisposable
{
    private const string Busybox = "docker.io/library/busybox:coracle";
    private readonly string _id = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(3));
    private readonly string _root = Directory.CreateTempSubdirectory("coracle-snap-").FullName;
    private readonly string _netns;
    private NodeHarness? _node;

    public SnapshotRestoreTests()
    {
        _netns = "cor-s-" + _id;
    }

    [K8sFact(NeedsRoot = true)]
    public async Task ClusterResetRestorePath_SnapshotThenMoreWrites_LaterObjectsGonePodsBack()
    {
        var subnet = NodeHarness.FreeSubnet();
        var nodeIp = $"10.204.{subnet}.2";
        NodeHarness.CreateNetns(_netns, $"10.204.{subnet}.1", nodeIp);
        var node = _node = new NodeHarness(_root, NodeHarness.LayOutImage(_root), "snap-" + _id, _netns, nodeIp);
        Coracle.Plugins.Runtime.Containerd.ImageBuilder.WriteArchive(Path.Combine(node.ImagesDir, "busybox.tar.gz"), Busybox, [], ["sh"]);

        node.StartServer();
        await node.WaitForAsync(() => node.NodeReady(node.Name), $"node {node.Name} Ready", TimeSpan.FromMinutes(3));
        Assert.Equal("ready", node.Component("etcd-snapshot").State);
        node.Kubectl("create", "configmap", "first", "--from-literal=k=before-snapshot");
        node.Apply($$"""
            apiVersion: v1
            kind: Pod
            metadata: {name: bb}
            spec:
              terminationGracePeriodSeconds: 1
              containers:
              - {name: bb, image: "{{Busybox}}", imagePullPolicy: Never, command: ["sh", "-c", "sleep 100000"]}
            """);
        await node.WaitForAsync(() => node.Jsonpath("pod", "bb", "{.status.phase}") == "Running", "pod bb Running");

        var (code, saved, errors) = node.Coracle("etcd-snapshot", "save", "--name", "before");
        Assert.True(code == 0, saved + errors);
        var snapshotDir = Path.Combine(node.DataDir, "server", "db", "snapshots");
        var snapshot = Assert.Single(Directory.GetFiles(snapshotDir, $"before-{node.Name}-*"), f => !f.EndsWith(".json", StringComparison.Ordinal));
        Assert.Contains(Path.GetFileName(snapshot), node.Coracle("etcd-snapshot", "ls").Stdout, StringComparison.Ordinal);

        node.Kubectl("create", "configmap", "second", "--from-literal=k=after-snapshot");
        node.Kubectl("delete", "pod", "bb", "--wait=true");

        node.Signal(15);
        node.StartServer("--cluster-reset", "--cluster-reset-restore-path", snapshot);
        await node.WaitForAsync(() => node.Log.Contains("cluster reset: restored ", StringComparison.Ordinal), "the restore", TimeSpan.FromMinutes(1));
        await node.WaitForAsync(() => node.NodeReady(node.Name), "node Ready after the restore", TimeSpan.FromMinutes(3));

        Assert.Equal("before-snapshot", node.Jsonpath("configmap", "first", "{.data.k}"));
        Assert.Contains("NotFound", node.TryKubectl("get", "configmap", "second").Output, StringComparison.Ordinal);
        await node.WaitForAsync(() => node.TryKubectl("get", "pod", "bb", "-o", "jsonpath={.status.phase}").Output == "Running", "pod bb Running again", TimeSpan.FromMinutes(3));
        var aside = Assert.Single(Directory.GetDirectories(Path.Combine(node.DataDir, "server"), "db-old-*"));
        Assert.True(File.Exists(Path.Combine(aside, "state.db")));

        // The flags left in place: a restart does not restore the same snapshot again.
        node.Kubectl("create", "configmap", "third", "--from-literal=k=after-restore");
        node.Signal(15);
        node.StartServer("--cluster-reset", "--cluster-reset-restore-path", snapshot);
        await node.WaitForAsync(() => node.Log.Contains("not restoring it again", StringComparison.Ordinal), "the refusal to restore twice", TimeSpan.FromMinutes(1));
        await node.WaitForAsync(() => node.NodeReady(node.Name), "node Ready after the second start", TimeSpan.FromMinutes(3));
        Assert.Equal("after-restore", node.Jsonpath("configmap", "third", "{.data.k}"));
        Assert.Single(Directory.GetDirectories(Path.Combine(node.DataDir, "server"), "db-old-*"));
    }

    public void Dispose()
    {
        _node?.Dispose();
        NodeHarness.DeleteNetns(_netns);
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
            // Leftover mounts are reported by the node tests themselves.
        }
    }
}
