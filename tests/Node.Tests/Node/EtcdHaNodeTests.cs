using Coracle.Node.Tests.Support;

namespace Coracle.Node.Tests.Node;

/// <summary>
/// Three <c>coracle server</c>s on embedded etcd (issue 19's HA case), real Kubernetes 1.32 and Debian's etcd 3.4, each in
/// its own network namespace (prefix <c>etcdha-</c>): the first (<c>cluster-init</c>) is the hub, the other two each
/// sit on a LAN with it and route to each other through it. The second and third join with <c>--server</c> and the
/// server token alone (no <c>--cluster-init</c>, as with K3s), become etcd members through the join API, and each serves
/// the API. Then the second is killed -9 (the other two keep quorum and serve writes), restarted (it rejoins with its
/// data). The etcd-members component reports the degraded-but-quorate state in the first's Node conditions. The third
/// is stopped and its Node deleted: its member is removed by the servers themselves. Then the second is killed -9 again:
/// the first alone has lost quorum and its <c>coracle status</c> says so; the second comes back and everything recovers.
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
    public async Task ThreeServers_EmbeddedEtcd_WriteOneReadOthers_SurviveAKill_DeletedNodeLosesItsMember_QuorumLossShownAndRecovered()
    {
        var subnet = NodeHarness.FreeSubnet();
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

        // The degraded-but-quorate state is on the first's Node (etcd-members checks every 10 s) and in its status.
        await WaitAsync(() => Condition(first, first.Name, "EtcdMembersHealthy").Contains($"False MembersUnhealthy 2 of 3 etcd members healthy; unhealthy: {second.Name} (", StringComparison.Ordinal),
            () => $"EtcdMembersHealthy on {first.Name} naming {second.Name} (now: {Condition(first, first.Name, "EtcdMembersHealthy")})");
        Assert.Equal("True QuorumReached 2 of 3 voting members healthy, a majority is 2: one more down stops writes", Condition(first, first.Name, "EtcdQuorum"));
        Assert.Contains($"3 members, 2 healthy, quorum (unhealthy: {second.Name})", Status(first), StringComparison.Ordinal);

        // 5. The second comes back with its data (the join values are ignored now) and catches up.
        second.StartServer(join);
        await WaitAsync(() => second.TryKubectl("get", "configmap", "written-while-second-down", "-o", "jsonpath={.data.k}") is (0, "two"),
            "the write made while the second was down, read through the restarted second", TimeSpan.FromMinutes(3));
        await WaitAsync(() => Members(first).Healthy.GetValueOrDefault(second.Name) == "yes", () => $"the second healthy again ({Members(first).Output})");

        await WaitAsync(() => Condition(first, first.Name, "EtcdMembersHealthy") == "True AllMembersHealthy 3 of 3 etcd members healthy",
            () => $"EtcdMembersHealthy back on {first.Name} (now: {Condition(first, first.Name, "EtcdMembersHealthy")})");
        Assert.Equal("True MemberNotLearner Node is a voting member of the etcd cluster", Condition(first, second.Name, "EtcdIsVoter"));

        // 6. Remove the third the K3s way: stop it and delete its Node. Every server put the finalizer coracle.dev/etcd-member
        //    on the etcd Nodes; a server removes the member by itself, then drops it, so kubectl returns once the member is gone.
        Assert.Contains("coracle.dev/etcd-member", first.Jsonpath("node", third.Name, "{.metadata.finalizers}"), StringComparison.Ordinal);
        third.Signal(15);
        first.Kubectl("delete", "node", third.Name, "--timeout=120s");
        var after = Members(first);
        Assert.Equal(0, after.Code);
        Assert.True(after.Voting.SetEquals([first.Name, second.Name]), after.Output);
        Assert.Contains("quorum: yes (2 voting members)", after.Output, StringComparison.Ordinal);
        Assert.Contains($"etcd member {third.Name} removed: its node was deleted", first.Log + second.Log, StringComparison.Ordinal);
        var again = first.Coracle("etcd", "member", "remove", third.Name);
        Assert.Equal((1, "", $"coracle: error: etcd member remove: no member named '{third.Name}'; 'coracle etcd member list' shows the members"),
            (again.ExitCode, again.Stdout, again.Stderr.Trim()));

        // 7. kill -9 the second: one of two voting members left, quorum lost; the survivor's status says so (component degraded).
        second.Signal(9);
        await WaitAsync(() => first.Component("etcd-members").State == "degraded", () => $"etcd-members degraded on {first.Name} ({Status(first)})");
        Assert.Contains("quorum LOST: a majority of the 2 voting members cannot be reached", Status(first), StringComparison.Ordinal);
        var degraded = first.Coracle("status", "--data-dir", first.DataDir);
        Assert.Equal((1, "coracle: error: status: etcd-members is degraded; its DETAIL column says why"), (degraded.ExitCode, degraded.Stderr.Trim()));
        Assert.Equal(1, Members(first).Code);

        // 8. The second comes back: quorum and the conditions recover, writes go on.
        second.StartServer(join);
        await WaitAsync(() => Status(first).Contains("2 members, 2 healthy, quorum", StringComparison.Ordinal) && first.Component("etcd-members").State == "ready",
            () => $"etcd-members ready again on {first.Name} ({Status(first)})", TimeSpan.FromMinutes(3));
        await WaitAsync(() => Condition(first, first.Name, "EtcdMembersHealthy") == "True AllMembersHealthy 2 of 2 etcd members healthy",
            () => $"EtcdMembersHealthy recovered on {first.Name} (now: {Condition(first, first.Name, "EtcdMembersHealthy")})");
        Assert.Contains("etcd quorum back: 2 members, ", first.Log, StringComparison.Ordinal);
        Assert.Equal(0, first.Coracle("status", "--data-dir", first.DataDir).ExitCode);
        first.Kubectl("create", "configmap", "written-after-remove", "--from-literal=k=three");
        await WaitAsync(() => second.TryKubectl("get", "configmap", "written-after-remove", "-o", "jsonpath={.data.k}") is (0, "three"),
            "the write made after the recovery, read through the restarted second", TimeSpan.FromMinutes(3));
    }

    /// <summary>A Node condition as "STATUS REASON MESSAGE", read through <paramref name="node"/>'s kube-apiserver; empty when absent.</summary>
    private static string Condition(NodeHarness node, string name, string type) =>
        node.Jsonpath("node", name, $"{{range .status.conditions[?(@.type==\"{type}\")]}}{{.status}} {{.reason}} {{.message}}{{end}}");

    /// <summary><c>coracle status</c> on <paramref name="node"/> (its output, whatever the exit code).</summary>
    private static string Status(NodeHarness node)
    {
        var (_, stdout, stderr) = node.Coracle("status", "--data-dir", node.DataDir);
        return stdout + stderr;
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
