using Coracle.Node.Tests.Support;

namespace Coracle.Node.Tests.Node;

/// <summary>
/// Three <c>coracle server</c>s on embedded etcd (issue 19's HA case), real Kubernetes 1.32 and Debian's etcd 3.4, each in
/// its own network namespace (prefix <c>etcdha-</c>): the first (<c>cluster-init</c>) is the hub, the other two each
/// sit on a LAN with it and route to each other through it. The second and third join with <c>--server</c> and the
/// server token alone (no <c>--cluster-init</c>, as with K3s), become etcd members through the join API, and each serves
/// the API. Then the second is killed -9 (the other two keep quorum and serve writes), restarted (it rejoins with its
/// data) and the third is stopped and removed from the members with <c>coracle etcd member remove</c>.
/// </summary>
[Trait("Category", "Integration")]
[Collection(RealClusterCollection.Name)]
public sealed class EtcdHaNodeTests : IDisposable
{
    private readonly string _id = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(2));
    private readonly string _root = Directory.CreateTempSubdirectory("coracle-etcdha-").FullName;
    private readonly string[] _netns;
    private readonly NodeHarness?[] _nodes = new NodeHarness?[3];

    public EtcdHaNodeTests()
    {
        _netns = ["etcdha-a-" + _id, "etcdha-b-" + _id, "etcdha-c-" + _id];
    }

    [K8sFact(NeedsRoot = true)]
    public async Task ThreeServers_EmbeddedEtcd_WriteOneReadOthersSurviveAKillRejoinAndRemoveAMember()
    {
        var subnet = System.Security.Cryptography.RandomNumberGenerator.GetInt32(1, 250);
        NodeHarness.CreateNetns(_netns[0], $"10.209.{subnet}.1", $"10.209.{subnet}.2");
        var (firstIp, secondIp, firstIp2, thirdIp) = ($"10.210.{subnet}.1", $"10.210.{subnet}.2", $"10.211.{subnet}.1", $"10.211.{subnet}.2");
        NodeHarness.CreateLan(_netns[0], _netns[1], "hab-" + _id, "hb-" + _id, firstIp, secondIp);
        NodeHarness.CreateLan(_netns[0], _netns[2], "hac-" + _id, "hc-" + _id, firstIp2, thirdIp);
        NodeHarness.Bash(_netns[0], "sysctl -qw net.ipv4.ip_forward=1");

        var image = NodeHarness.LayOutImage(_root);
        var first = _nodes[0] = new NodeHarness(_root, image, "ha1-" + _id, _netns[0], firstIp);
        var second = _nodes[1] = new NodeHarness(_root, image, "ha2-" + _id, _netns[1], secondIp);
        var third = _nodes[2] = new NodeHarness(_root, image, "ha3-" + _id, _netns[2], thirdIp);

        // 1. The first server initialises the etcd cluster (in its config file, so its node commands see it too).
        File.AppendAllText(first.ConfigFile, "[server]\ncluster-init = true\n");
        first.StartServer();
        await WaitAsync(() => first.NodeReady(first.Name), $"node {first.Name} Ready", TimeSpan.FromMinutes(3));
        var token = File.ReadAllText(Path.Combine(first.DataDir, "server", "token")).Trim();
        var join = new[] { "--server", $"https://{firstIp}:9345", "--token", token };

        // 2. The others join one after the other (etcd adds one learner at a time) with --server and the token only.
        foreach (var node in new[] { second, third })
        {
            node.StartServer(join);
            await WaitAsync(() => node.NodeReady(node.Name), $"node {node.Name} Ready through its own kube-apiserver", TimeSpan.FromMinutes(4));
            Assert.Equal("ready", node.Component("etcd").State);
            Assert.False(File.Exists(Path.Combine(node.DataDir, "server", "db", "state.db")), $"{node.Name} opened a SQLite datastore");
        }

        await WaitAsync(() => Members(first) is { Code: 0 } m && m.Voting.SetEquals([first.Name, second.Name, third.Name]),
            () => $"three voting members, all healthy (member list: {Members(first).Output})", TimeSpan.FromMinutes(2));

        // 3. Write through one, read through the others.
        first.Kubectl("create", "configmap", "written-on-first", "--from-literal=k=one");
        foreach (var node in new[] { second, third })
        {
            await WaitAsync(() => node.TryKubectl("get", "configmap", "written-on-first", "-o", "jsonpath={.data.k}") is (0, "one"), $"the ConfigMap read through {node.Name}");
        }

        // 4. kill -9 the second: the first and third keep quorum, and writes go on.
        second.Signal(9);
        third.Kubectl("create", "configmap", "written-while-second-down", "--from-literal=k=two");
        Assert.Equal("two", first.Jsonpath("configmap", "written-while-second-down", "{.data.k}"));
        var down = Members(first);
        Assert.Contains("quorum: yes (3 voting members)", down.Output, StringComparison.Ordinal);
        Assert.Equal("no", down.Healthy.GetValueOrDefault(second.Name));

        // 5. The second comes back with its data (the join values are ignored now) and catches up.
        second.StartServer(join);
        await WaitAsync(() => second.TryKubectl("get", "configmap", "written-while-second-down", "-o", "jsonpath={.data.k}") is (0, "two"),
            "the write made while the second was down, read through the restarted second", TimeSpan.FromMinutes(3));
        await WaitAsync(() => Members(first).Healthy.GetValueOrDefault(second.Name) == "yes", () => $"the second healthy again ({Members(first).Output})");

        // 6. Remove the third cleanly: stop it, remove its member; the two left keep quorum.
        third.Signal(15);
        var removed = first.Coracle("etcd", "member", "remove", third.Name);
        Assert.True(removed.ExitCode == 0, removed.Stdout + removed.Stderr);
        Assert.Equal($"member {third.Name} removed", removed.Stdout.Trim());
        var after = Members(first);
        Assert.Equal(0, after.Code);
        Assert.True(after.Voting.SetEquals([first.Name, second.Name]), after.Output);
        Assert.Contains("quorum: yes (2 voting members)", after.Output, StringComparison.Ordinal);
        second.Kubectl("create", "configmap", "written-after-remove", "--from-literal=k=three");
        Assert.Equal("three", first.Jsonpath("configmap", "written-after-remove", "{.data.k}"));
    }

    /// <summary><c>coracle etcd member list</c> on <paramref name="node"/>: exit code, voting members that are healthy, each member's HEALTHY column.</summary>
    private static (int Code, HashSet<string> Voting, Dictionary<string, string> Healthy, string Output) Members(NodeHarness node)
    {
        var (code, stdout, stderr) = node.Coracle("etcd", "member", "list");
        var rows = stdout.Split('\n').Skip(1).Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)).Where(f => f.Length == 5).ToList();
        return (code,
            rows.Where(f => f[3] == "no" && f[4] == "yes").Select(f => f[0]).ToHashSet(StringComparer.Ordinal),
            rows.ToDictionary(f => f[0], f => f[4], StringComparer.Ordinal),
            stdout + stderr);
    }

    private Task WaitAsync(Func<bool> condition, string what, TimeSpan? timeout = null) => WaitAsync(condition, () => what, timeout);

    private Task WaitAsync(Func<bool> condition, Func<string> what, TimeSpan? timeout = null) =>
        ClusterWait.UntilAsync(condition, what, "etcdha", _id, _nodes[0], _nodes[2] ?? _nodes[1], timeout);

    public void Dispose() =>
        NodeHarness.TearDown([], [_nodes[2], _nodes[1], _nodes[0]], [_netns[2], _netns[1], _netns[0]], _root);
}
