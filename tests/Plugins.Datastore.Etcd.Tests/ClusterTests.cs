using Coracle.Plugins.Datastore.Etcd.Tests.Support;

namespace Coracle.Plugins.Datastore.Etcd.Tests;

/// <summary>Three embedded etcd members in three network namespaces, joined through IDatastoreCluster as servers join servers.</summary>
[Trait("Category", "Integration")]
public sealed class ClusterTests : IDisposable
{
    private readonly TempDir _temp = new("etcdh");
    private readonly ListLoggerFactory _logs = new();
    private readonly NetnsLan _lan = new(3, "10.251.19");
    private readonly List<NetnsMember> _members = [];

    public void Dispose()
    {
        foreach (var m in _members)
        {
            m.Dispose();
        }

        _lan.Dispose();
        _temp.Dispose();
    }

    private string[] Client(NetnsMember via) => ["--endpoints=" + via.ClientUrl, .. EtcdTest.Tls(via.ClientTls)];

    [Fact]
    public async Task Cluster_ThreeMembersInNetns_JoinReplicateSurviveKillRejoinRemoveAndReportQuorumLoss()
    {
        // The client port is free on the host, so the members' loopback URLs (unreachable from the test's namespace) fail fast.
        var options = EtcdTest.Ports(FreePorts.Next());
        var plugin = new EtcdPlugin();

        var first = Member(1, null, null, options);
        await first.StartAsync();
        await first.WaitReadyAsync();

        // Servers 2 and 3 join: their peer URLs go to the first server's AddMemberAsync, its answer becomes their DatastoreJoin.
        for (var i = 2; i <= 3; i++)
        {
            var node = EtcdTest.Node(_temp.Combine($"m{i}"), $"server-{i}", _lan.Address(i));
            var join = await plugin.AddMemberAsync(first.Node, options, node.NodeName, plugin.PeerUrls(node, options), CancellationToken.None);
            Assert.Equal("existing", join["initial-cluster-state"]);
            Assert.Contains($"server-{i}=https://{_lan.Address(i)}:{options["peer-port"]}", join["initial-cluster"].Split(','));
            Assert.Contains($"server-1=https://{_lan.Address(1)}:{options["peer-port"]}", join["initial-cluster"].Split(','));

            // A server that died mid-join asks again: the same answer, no second member.
            var again = await plugin.AddMemberAsync(first.Node, options, node.NodeName, plugin.PeerUrls(node, options), CancellationToken.None);
            Assert.Equal(join["member-id"], again["member-id"]);

            var learner = Assert.Single((await plugin.MembersAsync(first.Node, options, CancellationToken.None)).Members, m => m.IsLearner);
            Assert.Equal([$"https://{_lan.Address(i)}:{options["peer-port"]}"], learner.PeerUrls);

            var member = Member(i, join, first, options);
            await member.StartAsync();
            await member.WaitReadyAsync();
        }

        var members = await plugin.MembersAsync(first.Node, options, CancellationToken.None);
        Assert.True(members.HasQuorum);
        Assert.Equal(["server-1", "server-2", "server-3"], members.Members.Select(m => m.Name).Order(StringComparer.Ordinal));
        Assert.All(members.Members, m => Assert.False(m.IsLearner));
        Assert.All(members.Members, m => Assert.True(m.Healthy, m.Name));
        Assert.Contains(_logs.Lines, l => l.Contains("etcd member server-2 promoted from learner to voting member", StringComparison.Ordinal));

        // A name already used with other peer URLs is refused in one line.
        var taken = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            plugin.AddMemberAsync(first.Node, options, "server-2", ["https://10.9.9.9:2380"], CancellationToken.None));
        Assert.StartsWith("cannot add etcd member server-2 with peer URLs https://10.9.9.9:2380: a member of that name has https://", taken.Message, StringComparison.Ordinal);

        // Write through one, read through the others.
        Assert.Equal(0, EtcdTest.Etcdctl([.. Client(_members[0]), "put", "/k/one", "1"]).Exit);
        foreach (var m in _members.Skip(1))
        {
            Assert.Equal("1", EtcdTest.Etcdctl([.. Client(m), "get", "/k/one", "--print-value-only"]).Output.Trim());
        }

        // kill -9 the third: the other two keep serving writes.
        _members[2].Kill();
        var write = EtcdTest.Etcdctl([.. Client(_members[1]), "put", "/k/two", "2"]);
        Assert.True(write.Exit == 0, write.Output);
        var degraded = await plugin.MembersAsync(first.Node, options, CancellationToken.None);
        Assert.True(degraded.HasQuorum);
        Assert.False(degraded.Members.Single(m => m.Name == "server-3").Healthy);

        // It restarts with the same command line (its data dir now exists), rejoins and catches up.
        await _members[2].StartAsync();
        await _members[2].WaitReadyAsync();
        await EtcdTest.UntilAsync(() => Task.FromResult(EtcdTest.Etcdctl([.. Client(_members[2]), "get", "/k/two", "--print-value-only", "--consistency=s"]).Output.Trim() == "2"), "server-3 to catch up");

        // Quorum loss: two of three killed; the survivor reports it, not hides it.
        _members[1].Kill();
        _members[2].Kill();
        var lost = await plugin.MembersAsync(first.Node, options, CancellationToken.None);
        Assert.False(lost.HasQuorum);
        Assert.Equal(3, lost.Members.Count);
        await _members[1].StartAsync();
        await _members[2].StartAsync();
        await _members[1].WaitReadyAsync();
        await _members[2].WaitReadyAsync();
        await EtcdTest.UntilAsync(async () => (await plugin.MembersAsync(first.Node, options, CancellationToken.None)).HasQuorum, "quorum again");

        // RemoveMemberAsync removes a member cleanly; the remaining two serve writes; a second remove finds nothing.
        Assert.True(await plugin.RemoveMemberAsync(first.Node, options, "server-3", CancellationToken.None));
        _members[2].Kill();
        var after = await plugin.MembersAsync(first.Node, options, CancellationToken.None);
        Assert.Equal(["server-1", "server-2"], after.Members.Select(m => m.Name).Order(StringComparer.Ordinal));
        // Removing the leader starts an election among the two left; quorum returns when it ends.
        await EtcdTest.UntilAsync(async () => (await plugin.MembersAsync(first.Node, options, CancellationToken.None)).HasQuorum, "quorum of the two left");
        Assert.Equal(0, EtcdTest.Etcdctl([.. Client(_members[1]), "put", "/k/three", "3"]).Exit);
        Assert.False(await plugin.RemoveMemberAsync(first.Node, options, "server-3", CancellationToken.None));
    }

    private NetnsMember Member(int i, IReadOnlyDictionary<string, string>? join, NetnsMember? casFrom, IReadOnlyDictionary<string, string> options)
    {
        var root = _temp.Combine($"m{i}");
        var node = EtcdTest.Node(root, $"server-{i}", _lan.Address(i));
        var certificates = EtcdTest.Certificates(node, casFrom?.Certificates.Directory);
        var member = new NetnsMember(root, _lan.Namespaces[i - 1], $"server-{i}", _lan.Address(i), options, certificates, _logs, join);
        _members.Add(member);
        return member;
    }
}
