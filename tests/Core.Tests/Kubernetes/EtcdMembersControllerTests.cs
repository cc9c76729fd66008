using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Coracle.Core.Kubernetes;
using Coracle.Core.Tests.Support;
using Coracle.Plugins;

namespace Coracle.Core.Tests.Kubernetes;

/// <summary>
/// <see cref="EtcdMembersController"/> against the real kube-apiserver of <see cref="ApiServerFixture"/>: its Node watch,
/// the finalizer, member removal by several servers at once, and the conditions on its own Node. The etcd cluster is a
/// faked <see cref="IDatastoreCluster"/> (a list of members that can lose quorum or refuse a removal), named so in each
/// test; the real etcd path is <c>tests/Node.Tests/Node/EtcdHaNodeTests.cs</c>. Each test uses node names of its own.
/// </summary>
public sealed class EtcdMembersControllerTests(ApiServerFixture fixture) : IClassFixture<ApiServerFixture>, IDisposable
{
    private static readonly TimeSpan HangGuard = TimeSpan.FromSeconds(60);
    private readonly TempDir _dir = new("etcd-members");
    private readonly ListLoggerFactory _logs = new();

    public void Dispose() => _dir.Dispose();

    [K8sFact(Binaries = ["kube-apiserver"])]
    public async Task Run_EtcdNodeDeletedWithTwoServers_FakedDatastore_MemberRemovedAfterARefusal_NodeGoes_JoiningMemberKept()
    {
        using var api = fixture.Api();
        var id = Guid.NewGuid().ToString("N")[..6];
        var (a, b, gone, plain) = ($"srv-a-{id}", $"srv-b-{id}", $"srv-c-{id}", $"agent-{id}");
        await CreateNodeAsync(api, a, etcd: true);
        await CreateNodeAsync(api, gone, etcd: true);
        await CreateNodeAsync(api, plain, etcd: false);

        // A fourth member has joined but its kubelet has not registered its Node yet: it must never be removed.
        var cluster = new FakeCluster(a, b, gone, $"joining-{id}") { RefuseOnce = gone };
        await using var first = Start(Controller(a, cluster).RunAsync);
        await using var second = Start(Controller(b, cluster).RunAsync);
        await WaitAsync(api, gone, n => n is not null && EtcdMemberHealth.HasFinalizer(n));
        await WaitAsync(api, a, n => n is not null && EtcdMemberHealth.HasFinalizer(n));
        Assert.False(EtcdMemberHealth.HasFinalizer((await GetAsync(api, plain))!), "a Node without the etcd label got the finalizer");

        using var guard = new CancellationTokenSource(HangGuard);
        var deleted = await api.DeleteAsync("/api/v1/nodes/" + gone, guard.Token);
        Assert.True(deleted.IsSuccess, deleted.Describe());

        // The first removal is refused (no quorum for a moment): the Node waits, Terminating, and the removal is tried again.
        await WaitAsync(api, gone, n => n is null);
        Assert.Equal([a, b, $"joining-{id}"], cluster.Names);
        Assert.True(cluster.RemoveCalls.Count(n => n == gone) >= 2, string.Join(",", cluster.RemoveCalls));
        Assert.DoesNotContain($"joining-{id}", cluster.RemoveCalls);

        // The refused server logs after its call failed; the other server may have removed the member and the Node before
        // that line is written (seen on a loaded CI machine), so it is waited for, not expected at once.
        await WaitForAsync(() => _logs.Lines.Any(l => l.Contains($"cannot remove the etcd member of deleted node {gone}, retrying in ", StringComparison.Ordinal)
            && l.EndsWith($"s: cannot remove etcd member {gone}: etcd does not answer or has no quorum (context deadline exceeded); check 'coracle etcd member list' and that a majority of the members run", StringComparison.Ordinal)));
        Assert.Single(_logs.Lines, l => l.EndsWith($"etcd member {gone} removed: its node was deleted", StringComparison.Ordinal));
    }

    [K8sFact(Binaries = ["kube-apiserver"])]
    public async Task Run_OwnNodeDeleted_FakedDatastore_NeverRemovesItself_ButGoesWhenItIsTheOnlyMember()
    {
        using var api = fixture.Api();
        var id = Guid.NewGuid().ToString("N")[..6];
        var (self, other, alone) = ($"self-{id}", $"other-{id}", $"alone-{id}");
        await CreateNodeAsync(api, self, etcd: true);
        await CreateNodeAsync(api, alone, etcd: true);
        var cluster = new FakeCluster(self, other);
        await using (Start(Controller(self, cluster).RunAsync))
        {
            await WaitAsync(api, self, n => n is not null && EtcdMemberHealth.HasFinalizer(n));
            using var guard = new CancellationTokenSource(HangGuard);
            Assert.True((await api.DeleteAsync("/api/v1/nodes/" + self, guard.Token)).IsSuccess);
            await WaitForAsync(() => _logs.Lines.Any(l => l.Contains($"node {self} (this server) is being deleted: another server removes its etcd member", StringComparison.Ordinal)));

            Assert.Equal([self, other], cluster.Names);
            Assert.Empty(cluster.RemoveCalls);
            Assert.True(EtcdMemberHealth.IsDeleting((await GetAsync(api, self))!));
        }

        // A one-member cluster: its own deleted Node has no member to lose; the finalizer goes, so does the Node.
        var single = new FakeCluster(alone);
        await using (Start(Controller(alone, single).RunAsync))
        {
            await WaitAsync(api, alone, n => n is not null && EtcdMemberHealth.HasFinalizer(n));
            using var guard = new CancellationTokenSource(HangGuard);
            Assert.True((await api.DeleteAsync("/api/v1/nodes/" + alone, guard.Token)).IsSuccess);
            await WaitAsync(api, alone, n => n is null);
            Assert.Equal([alone], single.Names);

            // (It did try the first part's Terminating Node: for this "cluster" a member that is already gone.)
            Assert.DoesNotContain(alone, single.RemoveCalls);
        }
    }

    [K8sFact(Binaries = ["kube-apiserver"])]
    public async Task Run_MembersOfAFakedDatastore_ConditionsOnOwnNode_DegradedWhileQuorumIsLost_ConditionsRecover()
    {
        using var api = fixture.Api();
        var id = Guid.NewGuid().ToString("N")[..6];
        var self = $"cond-{id}";
        await CreateNodeAsync(api, self, etcd: true);
        var cluster = new FakeCluster(self, "peer-1", "peer-2");
        cluster.SetHealthy("peer-2", false);
        var reports = new ConcurrentQueue<(string Detail, bool Degraded)>();
        var controller = Controller(self, cluster, (detail, degraded) => reports.Enqueue((detail, degraded)));
        await using var running = Start(controller.RunAsync);

        var node = await WaitAsync(api, self, n => n is not null && Condition(n, "EtcdMembersHealthy") is not null);
        Assert.Equal(("True", "MemberNotLearner"), Condition(node, "EtcdIsVoter"));
        Assert.Equal(("True", "QuorumReached"), Condition(node, "EtcdQuorum"));
        Assert.Equal(("False", "MembersUnhealthy"), Condition(node, "EtcdMembersHealthy"));
        Assert.Contains("unhealthy: peer-2 (https://peer-2:2379)", Message(node, "EtcdMembersHealthy"), StringComparison.Ordinal);
        Assert.Contains(("3 members, 2 healthy, quorum (unhealthy: peer-2)", false), reports);

        // Two of three down: quorum lost, the component reports degraded (nothing is written: the API could not).
        cluster.SetHealthy("peer-1", false);
        cluster.HasQuorum = false;
        await WaitForAsync(() => reports.LastOrDefault().Degraded);
        Assert.StartsWith("quorum LOST: a majority of the 3 voting members cannot be reached", reports.Last().Detail, StringComparison.Ordinal);
        await WaitForAsync(() => _logs.Lines.Any(l => l.Contains("etcd quorum LOST: a majority of the 3 voting members", StringComparison.Ordinal))); // logged just after the report

        // Both back: ready again, and the Node's conditions say so.
        cluster.SetHealthy("peer-1", true);
        cluster.SetHealthy("peer-2", true);
        cluster.HasQuorum = true;
        var healed = await WaitAsync(api, self, n => n is not null && Condition(n, "EtcdMembersHealthy") is ("True", _));
        Assert.Equal("3 of 3 etcd members healthy", Message(healed, "EtcdMembersHealthy"));
        Assert.Equal(("3 members, 3 healthy, quorum", false), reports.Last());
        await WaitForAsync(() => _logs.Lines.Any(l => l.Contains("etcd quorum back: 3 members, 3 healthy, quorum", StringComparison.Ordinal))); // logged just after the report
    }

    private EtcdMembersController Controller(string self, FakeCluster cluster, Action<string, bool>? report = null) =>
        new(fixture.Server, fixture.CaFile, fixture.CertFile, fixture.KeyFile, self, cluster, TestConfig.Server(_dir.Path).ToNodeSettings(),
            new Dictionary<string, string>(), _logs.CreateLogger("etcd-members"), report ?? ((_, _) => { }))
        {
            CheckInterval = TimeSpan.FromMilliseconds(200),
            RetryDelay = TimeSpan.FromMilliseconds(200),
        };

    private static (string Status, string Reason)? Condition(JsonObject node, string type) =>
        (node["status"]?["conditions"] as JsonArray ?? []).FirstOrDefault(x => x?["type"]?.GetValue<string>() == type) is { } c
            ? (c["status"]!.GetValue<string>(), c["reason"]!.GetValue<string>())
            : null;

    private static string Message(JsonObject node, string type) =>
        (node["status"]!["conditions"] as JsonArray)!.First(c => c?["type"]?.GetValue<string>() == type)!["message"]!.GetValue<string>();

    private static async Task CreateNodeAsync(KubeApi api, string name, bool etcd)
    {
        var labels = new JsonObject { [CloudNode.ControlPlaneLabel] = "true" };
        if (etcd)
        {
            labels[CloudNode.EtcdLabel] = "true";
        }

        var node = new JsonObject
        {
            ["apiVersion"] = "v1",
            ["kind"] = "Node",
            ["metadata"] = new JsonObject { ["name"] = name, ["labels"] = labels },
        };
        using var guard = new CancellationTokenSource(HangGuard);
        var created = await api.CreateAsync("/api/v1/nodes", node, guard.Token);
        Assert.True(created.IsSuccess, created.Describe());
    }

    private static async Task<JsonObject?> GetAsync(KubeApi api, string name)
    {
        using var guard = new CancellationTokenSource(HangGuard);
        var got = await api.GetAsync("/api/v1/nodes/" + name, guard.Token);
        Assert.True(got.IsSuccess || got.IsNotFound, got.Describe());
        return got.IsNotFound ? null : got.Body!.AsObject();
    }

    private static async Task<JsonObject> WaitAsync(KubeApi api, string name, Func<JsonObject?, bool> condition)
    {
        using var guard = new CancellationTokenSource(HangGuard);
        while (true)
        {
            var node = await GetAsync(api, name);
            if (condition(node))
            {
                return node ?? new JsonObject();
            }

            await Task.Delay(100, guard.Token);
        }
    }

    private static async Task WaitForAsync(Func<bool> condition)
    {
        using var guard = new CancellationTokenSource(HangGuard);
        while (!condition())
        {
            await Task.Delay(50, guard.Token);
        }
    }

    private static Running Start(Func<CancellationToken, Task> run)
    {
        var stop = new CancellationTokenSource();
        return new Running(stop, Task.Run(() => run(stop.Token)));
    }

    private sealed class Running(CancellationTokenSource stop, Task task) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await stop.CancelAsync();
            try
            {
                await task.WaitAsync(HangGuard);
            }
            catch (OperationCanceledException)
            {
            }

            stop.Dispose();
        }
    }

    /// <summary>
    /// A faked etcd cluster (the seam: a real one is the HA node test's): named members, each healthy or not, quorum as
    /// set; the first removal of <see cref="RefuseOnce"/> fails as the etcd plugin's do without quorum.
    /// </summary>
    private sealed class FakeCluster(params string[] names) : IDatastoreCluster
    {
        private readonly object _gate = new();
        private readonly List<DatastoreMember> _members = [.. names.Select(n => new DatastoreMember(n, [$"https://{n}:2380"], [$"https://{n}:2379"], false, true))];
        private volatile bool _hasQuorum = true;
        private int _refused;

        /// <summary>The first removal of this member fails as the plugin's does without quorum.</summary>
        public string? RefuseOnce { get; init; }

        public bool HasQuorum
        {
            get => _hasQuorum;
            set => _hasQuorum = value;
        }

        public ConcurrentQueue<string> RemoveCalls { get; } = new();

        public List<string> Names
        {
            get
            {
                lock (_gate)
                {
                    return [.. _members.Select(m => m.Name)];
                }
            }
        }

        public void SetHealthy(string name, bool healthy)
        {
            lock (_gate)
            {
                var i = _members.FindIndex(m => m.Name == name);
                _members[i] = _members[i] with { Healthy = healthy };
            }
        }

        public IReadOnlyList<string> PeerUrls(NodeSettings node, IReadOnlyDictionary<string, string> options) => [];

        public Task<IReadOnlyDictionary<string, string>> AddMemberAsync(NodeSettings node, IReadOnlyDictionary<string, string> options,
            string name, IReadOnlyList<string> peerUrls, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<bool> RemoveMemberAsync(NodeSettings node, IReadOnlyDictionary<string, string> options, string name, CancellationToken cancellationToken)
        {
            RemoveCalls.Enqueue(name);
            if (name == RefuseOnce && Interlocked.Exchange(ref _refused, 1) == 0)
            {
                throw new InvalidOperationException($"cannot remove etcd member {name}: etcd does not answer or has no quorum (context deadline exceeded); check 'coracle etcd member list' and that a majority of the members run");
            }

            lock (_gate)
            {
                return Task.FromResult(_members.RemoveAll(m => m.Name == name) > 0);
            }
        }

        public Task<DatastoreMembers> MembersAsync(NodeSettings node, IReadOnlyDictionary<string, string> options, CancellationToken cancellationToken)
        {
            lock (_gate)
            {
                return Task.FromResult(new DatastoreMembers([.. _members], HasQuorum));
            }
        }
    }
}
