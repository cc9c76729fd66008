using Coracle.Node.Tests.Support;

namespace Coracle.Node.Tests.Node;

/// <summary>
/// <c>coracle server --cluster-init</c> on a real single-server cluster (CORACLE_K8S_BIN, containerd, flannel, in its own
/// network namespace), added to a server that first ran on SQLite: the restart migrates every key into the embedded etcd
/// (K3s's behaviour) before kube-apiserver starts; the etcd plugin supervises Debian's etcd with mutual TLS, kube-apiserver stores the cluster in it,
/// the node is Ready, <c>coracle etcd-snapshot save</c> takes an etcd snapshot and <c>coracle etcd member list</c> shows
/// the one member.
/// </summary>
[Trait("Category", "Integration")]
[Collection(RealClusterCollection.Name)]
public sealed class EmbeddedEtcdNodeTests : IDisposable
{
    private readonly string _id = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(3));
    private readonly string _root = Directory.CreateTempSubdirectory("coracle-etcdh-").FullName;
    private readonly string _netns;
    private NodeHarness? _node;

    public EmbeddedEtcdNodeTests()
    {
        _netns = "etcdh-" + _id;
    }

    [K8sFact(NeedsRoot = true)]
    public async Task ServerClusterInit_SingleServer_NodeReadyOnEmbeddedEtcd()
    {
        var subnet = NodeHarness.FreeSubnet();
        var nodeIp = $"10.205.{subnet}.2";
        NodeHarness.CreateNetns(_netns, $"10.205.{subnet}.1", nodeIp);
        var node = _node = new NodeHarness(_root, NodeHarness.LayOutImage(_root), "etcdh-" + _id, _netns, nodeIp);

        // First on the default SQLite, only until kube-apiserver takes a ConfigMap; then stopped (SIGTERM).
        node.StartServer();
        await node.WaitForAsync(() => node.TryKubectl("create", "configmap", "before-migration", "--from-literal=k=sqlite").ExitCode == 0,
            "kube-apiserver on SQLite taking ConfigMap before-migration", TimeSpan.FromMinutes(3));
        node.Signal(15);
        var stateDb = Path.Combine(node.DataDir, "server", "db", "state.db");
        Assert.True(File.Exists(stateDb));

        // In the config file, as K3s's config.yaml: the node commands (etcd-snapshot, etcd member) read it too. The restart
        // migrates SQLite into the embedded etcd before kube-apiserver starts (issue 19 item 5).
        File.AppendAllText(node.ConfigFile, "[server]\ncluster-init = true\n");
        node.StartServer();
        await node.WaitForAsync(() => node.NodeReady(node.Name), $"node {node.Name} Ready", TimeSpan.FromMinutes(3));
        Assert.Equal("ready", node.Component("etcd").State);
        Assert.Contains("embedded etcd member " + node.Name, node.Log, StringComparison.Ordinal);
        Assert.True(Directory.Exists(Path.Combine(node.DataDir, "server", "db", "etcd", "member")));
        Assert.False(File.Exists(stateDb));
        Assert.Equal("sqlite", node.Jsonpath("configmap", "before-migration", "{.data.k}"));
        Assert.Matches($@"migrated \d+ keys \(revision \d+\) from SQLite {System.Text.RegularExpressions.Regex.Escape(stateDb)} to embedded etcd; the SQLite file is kept as {System.Text.RegularExpressions.Regex.Escape(stateDb)}\.migrated", node.Log);
        Assert.True(File.Exists(stateDb + ".migrated"));
        Assert.False(File.Exists(Path.Combine(node.DataDir, "server", "datastore-migration.json")));
        Assert.Equal("ready", node.Component("datastore-migration").State);

        node.Kubectl("create", "configmap", "on-etcd", "--from-literal=k=v");
        Assert.Equal("v", node.Jsonpath("configmap", "on-etcd", "{.data.k}"));

        // etcdctl with the datastore-client certificate sees kube-apiserver's keys on the node IP's client URL.
        var tls = Path.Combine(node.DataDir, "server", "tls");
        var get = NodeHarness.Bash(_netns, $"ETCDCTL_API=3 etcdctl --endpoints https://{nodeIp}:2379 --cacert {tls}/etcd-server-ca.crt --cert {tls}/datastore-client.crt --key {tls}/datastore-client.key get /registry/configmaps/default/on-etcd --keys-only");
        Assert.True(get.ExitCode == 0, get.Stdout + get.Stderr);
        Assert.Contains("/registry/configmaps/default/on-etcd", get.Stdout, StringComparison.Ordinal);

        var (code, saved, errors) = node.Coracle("etcd-snapshot", "save", "--name", "etcd");
        Assert.True(code == 0, saved + errors);
        var snapshot = Assert.Single(Directory.GetFiles(Path.Combine(node.DataDir, "server", "db", "snapshots"), $"etcd-{node.Name}-*"), f => !f.EndsWith(".json", StringComparison.Ordinal));
        Assert.Equal(32, new FileInfo(snapshot).Length % 512);

        var members = node.Coracle("etcd", "member", "list");
        Assert.True(members.ExitCode == 0, members.Stdout + members.Stderr);
        Assert.Contains(node.Name, members.Stdout, StringComparison.Ordinal);
        Assert.Contains($"https://{nodeIp}:2380", members.Stdout, StringComparison.Ordinal);

        // Restore on etcd (issue 19, item 4): a ConfigMap written after the snapshot, then --cluster-reset
        // --cluster-reset-restore-path: the snapshot's data is back, the later write gone, the old etcd data moved aside.
        node.Kubectl("create", "configmap", "after-snapshot", "--from-literal=k=later");
        node.Signal(15);
        node.StartServer("--cluster-reset", "--cluster-reset-restore-path", snapshot);
        await node.WaitForAsync(() => node.Log.Contains("cluster reset: restored ", StringComparison.Ordinal), "the etcd restore", TimeSpan.FromMinutes(1));
        await node.WaitForAsync(() => node.NodeReady(node.Name), "node Ready on the restored etcd", TimeSpan.FromMinutes(3));
        Assert.Equal("v", node.Jsonpath("configmap", "on-etcd", "{.data.k}"));
        Assert.Contains("NotFound", node.TryKubectl("get", "configmap", "after-snapshot").Output, StringComparison.Ordinal);
        Assert.Single(Directory.GetDirectories(Path.Combine(node.DataDir, "server", "db"), "etcd-old-*"));

        // --cluster-reset alone: etcd starts once with --force-new-cluster on its own data, which stays.
        node.Kubectl("create", "configmap", "before-reset", "--from-literal=k=kept");
        node.Signal(15);
        node.StartServer("--cluster-reset");
        await node.WaitForAsync(() => node.Log.Contains("starts once with --force-new-cluster", StringComparison.Ordinal), "the reset", TimeSpan.FromMinutes(1));
        await node.WaitForAsync(() => node.NodeReady(node.Name), "node Ready after the reset", TimeSpan.FromMinutes(3));
        Assert.Equal("kept", node.Jsonpath("configmap", "before-reset", "{.data.k}"));
        var one = node.Coracle("etcd", "member", "list");
        Assert.True(one.ExitCode == 0, one.Stdout + one.Stderr);
        Assert.Contains(node.Name, one.Stdout, StringComparison.Ordinal);
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
