using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Coracle.Core.Kubernetes;
using Coracle.Core.Tests.Support;
using Coracle.Core.Update;
using Coracle.Core.Update.Fleet;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Coracle.Core.Tests.Update;

/// <summary>
/// The <c>ApplianceUpdate</c> controller against the real kube-apiserver of <see cref="ApiServerFixture"/> (the CRD and
/// the controllers' ClusterRole applied as the server applies them; the controllers act as
/// <c>system:coracle-controller</c>), with real bundles served over loopback HTTPS and applied by the real apply code
/// to each node's own install root. Each node's Coracle restart is played by the test as the unit does it: the real
/// boot guard, then the slot's <c>coracle</c> (a script that starts or exits), marked good when it starts (the health
/// gate's part), then a fresh controller (the new process's). Nodes are Node objects without kubelets; pods on them
/// have no grace period, so an eviction removes them at once.
/// </summary>
public sealed class FleetControllerTests(ApiServerFixture fixture) : IClassFixture<ApiServerFixture>, IDisposable
{
    private const string Starts = "#!/bin/sh\nexit 0\n";
    private const string ExitAtStart = "#!/bin/sh\necho 'v3: failing at start' >&2\nexit 1\n";
    private static readonly TimeSpan HangGuard = TimeSpan.FromSeconds(90);
    private readonly TempDir _temp = new("crt-fleet");
    private readonly string _id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3));
    private UpdatePki? _pki;

    private UpdatePki Pki => _pki ??= new UpdatePki(_temp.Combine("pki"));

    public void Dispose() => _temp.Dispose();

    [K8sFact(Binaries = ["kube-apiserver"])]
    public async Task Rollout_TwoNodesAndOneAlreadyAtVersion_OneAtATimeDrainedThenSucceeded()
    {
        using var api = fixture.Api();
        await PrepareAsync(api);
        var n1 = await NodeAsync(api, "a", "1.0.0");
        var n2 = await NodeAsync(api, "b", "1.0.0");
        var n3 = await NodeAsync(api, "c", "2.0.0");
        var untouched3 = Images.TreeHash(Path.Combine(n3.Root, "slots"));
        await PodAsync(api, "evict-" + _id, n1.Name);
        await PodAsync(api, "ds-" + _id, n1.Name, owner: "DaemonSet");
        await PodAsync(api, "mirror-" + _id, n1.Name, mirror: true);
        await using var server = await BundleServer.StartAsync(Pki);
        var (url, sha) = Serve(server, "v2", "2.0.0", Starts);
        var name = await RolloutAsync(api, url, sha);

        // n1 claims the one place, cordons, drains (the DaemonSet and mirror pods stay), applies, restarts.
        Assert.Equal("restarting", await n1.PassAsync(ControllerApi));
        var rollout = await GetAsync(api, name);
        Assert.Equal((NodeStates.PhaseInProgress, NodeStates.Restarting), (Phase(rollout), StateOf(rollout, n1.Name)));
        Assert.True(await UnschedulableAsync(api, n1.Name));
        Assert.Equal(name, await CordonedForAsync(api, n1.Name));
        Assert.True((await api.GetAsync($"/api/v1/namespaces/default/pods/evict-{_id}", CancellationToken.None)).IsNotFound);
        Assert.True((await api.GetAsync($"/api/v1/namespaces/default/pods/ds-{_id}", CancellationToken.None)).IsSuccess);
        Assert.True((await api.GetAsync($"/api/v1/namespaces/default/pods/mirror-{_id}", CancellationToken.None)).IsSuccess);
        Assert.Equal(("b", "b"), (n1.Layout.ActiveSlot(), UpdateState.Read(n1.Layout.StateFile)!.Trial));

        // n2 waits while n1 holds the place; n3 already runs 2.0.0 and succeeds without applying anything.
        Assert.Equal("waiting", await n2.PassAsync(ControllerApi));
        Assert.False(await UnschedulableAsync(api, n2.Name));
        Assert.Equal("a", n2.Layout.ActiveSlot());
        Assert.Equal(NodeStates.Succeeded, await n3.PassAsync(ControllerApi));
        Assert.Equal(untouched3, Images.TreeHash(Path.Combine(n3.Root, "slots")));
        Assert.Equal("already at version 2.0.0: nothing applied", MessageOf(await GetAsync(api, name), n3.Name));

        // n1 restarts into 2.0.0, is marked good, uncordons and records success; then n2 goes.
        Assert.Equal(1, n1.Boot());
        Assert.Equal(NodeStates.Succeeded, await n1.PassAsync(ControllerApi));
        rollout = await GetAsync(api, name);
        Assert.Equal(NodeStates.PhaseInProgress, Phase(rollout));
        Assert.Equal("updated from 1.0.0 to 2.0.0; slot b marked good, node Ready, uncordoned", MessageOf(rollout, n1.Name));
        Assert.False(await UnschedulableAsync(api, n1.Name));
        Assert.Null(await CordonedForAsync(api, n1.Name));
        Assert.Equal("restarting", await n2.PassAsync(ControllerApi));
        Assert.Equal(1, n2.Boot());
        Assert.Equal(NodeStates.Succeeded, await n2.PassAsync(ControllerApi));

        rollout = await GetAsync(api, name);
        Assert.Equal(NodeStates.PhaseSucceeded, Phase(rollout));
        Assert.Equal("True", Condition(rollout, "Complete"));
        Assert.Equal("False", Condition(rollout, "Halted"));
        Assert.Equal(("2.0.0", "2.0.0"), (n1.Slot.RunningVersion, n2.Slot.RunningVersion));
        Assert.Null(await n1.PassAsync(ControllerApi));
    }

    [K8sFact(Binaries = ["kube-apiserver"])]
    public async Task Rollout_SelectedNodeDeletedBeforeItsTurn_TheUpdatedNodeMarksTheRolloutSucceededOnce()
    {
        using var api = fixture.Api();
        await PrepareAsync(api);
        var n1 = await NodeAsync(api, "d1", "1.0.0");
        var n2 = await NodeAsync(api, "d2", "1.0.0");
        await using var server = await BundleServer.StartAsync(Pki);
        var (url, sha) = Serve(server, "v2d", "2.0.0", Starts);
        var name = await RolloutAsync(api, url, sha);

        Assert.Equal("restarting", await n1.PassAsync(ControllerApi));
        Assert.Equal(1, n1.Boot());
        Assert.Equal(NodeStates.Succeeded, await n1.PassAsync(ControllerApi));
        Assert.Equal(NodeStates.PhaseInProgress, Phase(await GetAsync(api, name)));

        // n2 leaves the cluster before its turn: nothing else will report, so n1 finishes the rollout, once.
        Assert.True((await api.DeleteAsync($"/api/v1/nodes/{n2.Name}", CancellationToken.None)).IsSuccess);
        Assert.Equal("finished", await n1.PassAsync(ControllerApi));
        var rollout = await GetAsync(api, name);
        Assert.Equal((NodeStates.PhaseSucceeded, "True"), (Phase(rollout), Condition(rollout, "Complete")));
        var version = rollout["metadata"]!["resourceVersion"]!.GetValue<string>();
        Assert.Null(await n1.PassAsync(ControllerApi));
        Assert.Equal(version, (await GetAsync(api, name))["metadata"]!["resourceVersion"]!.GetValue<string>());
    }

    [K8sFact(Binaries = ["kube-apiserver"])]
    public async Task Rollout_V3ExitsAtStart_FirstNodeRollsBackAndTheRolloutHaltsWithTheReason()
    {
        using var api = fixture.Api();
        await PrepareAsync(api);
        var n1 = await NodeAsync(api, "a", "2.0.0");
        var n2 = await NodeAsync(api, "b", "2.0.0");
        var untouched2 = Images.TreeHash(Path.Combine(n2.Root, "slots"));
        await using var server = await BundleServer.StartAsync(Pki);
        var (url, sha) = Serve(server, "v3", "3.0.0", ExitAtStart);
        var name = await RolloutAsync(api, url, sha);

        Assert.Equal("restarting", await n1.PassAsync(ControllerApi));
        Assert.Equal("waiting", await n2.PassAsync(ControllerApi));

        // Three failed trial starts; the boot guard's fourth start is the rollback to 2.0.0.
        Assert.Equal(4, n1.Boot());
        Assert.Equal(("a", "2.0.0"), (n1.Layout.ActiveSlot(), n1.Slot.RunningVersion));
        Assert.Equal(NodeStates.Failed, await n1.PassAsync(ControllerApi));

        var rollout = await GetAsync(api, name);
        var why = $"node {n1.Name} came back on version 2.0.0, not 3.0.0 (rolled-back: slot b did not become healthy in 3 trial starts (each within 60 s); rolled back to slot a); uncordoned";
        Assert.Equal(NodeStates.PhaseFailed, Phase(rollout));
        Assert.Equal($"node {n1.Name}: {why}", Text(rollout["status"]!["reason"]));
        Assert.Equal(why, MessageOf(rollout, n1.Name));
        Assert.Equal("True", Condition(rollout, "Halted"));
        Assert.False(await UnschedulableAsync(api, n1.Name));

        // Halted: n2 never starts.
        Assert.Null(await n2.PassAsync(ControllerApi));
        Assert.Null(StateOf(await GetAsync(api, name), n2.Name));
        Assert.Equal(untouched2, Images.TreeHash(Path.Combine(n2.Root, "slots")));
        Assert.False(await UnschedulableAsync(api, n2.Name));
    }

    [K8sFact(Binaries = ["kube-apiserver"])]
    public async Task Rollout_BundleDigestDiffers_HaltsBeforeAnyNodeIsCordoned()
    {
        using var api = fixture.Api();
        await PrepareAsync(api);
        var n1 = await NodeAsync(api, "a", "1.0.0");
        var untouched = Images.TreeHash(Path.Combine(n1.Root, "slots"));
        await using var server = await BundleServer.StartAsync(Pki);
        var (url, sha) = Serve(server, "v2", "2.0.0", Starts);
        var wrong = new string('0', 64);
        var name = await RolloutAsync(api, url, wrong);

        Assert.Equal(NodeStates.Failed, await n1.PassAsync(ControllerApi));

        var rollout = await GetAsync(api, name);
        Assert.Equal(NodeStates.PhaseFailed, Phase(rollout));
        Assert.Equal($"node {n1.Name}: {url}: the downloaded bundle has SHA-256 {sha}, the ApplianceUpdate says {wrong}; fix spec.sha256 (sha256sum of the bundle) or the file served",
            Text(rollout["status"]!["reason"]));
        Assert.False(await UnschedulableAsync(api, n1.Name));
        Assert.Equal(untouched, Images.TreeHash(Path.Combine(n1.Root, "slots")));
        Assert.False(File.Exists(Path.Combine(n1.Layout.DownloadDir, "bundle")));
    }

    [K8sFact(Binaries = ["kube-apiserver"])]
    public async Task Rollout_DisruptionBudgetRefusesEviction_DrainTimesOutRolloutHaltsNodeUncordoned()
    {
        using var api = fixture.Api();
        await PrepareAsync(api);
        var n1 = await NodeAsync(api, "a", "1.0.0");
        await GuardedPodAsync(api, n1.Name);
        await using var server = await BundleServer.StartAsync(Pki);
        var (url, sha) = Serve(server, "v2", "2.0.0", Starts);
        var name = await RolloutAsync(api, url, sha, drainTimeoutSeconds: 0);

        Assert.Equal(NodeStates.Failed, await n1.PassAsync(ControllerApi));

        var rollout = await GetAsync(api, name);
        Assert.Equal($"node {n1.Name}: the drain of Node {n1.Name} did not finish within 0 s: default/guarded-{_id} (a PodDisruptionBudget does not allow it); uncordoned",
            Text(rollout["status"]!["reason"]));
        Assert.False(await UnschedulableAsync(api, n1.Name));
        Assert.Equal("a", n1.Layout.ActiveSlot());
        Assert.True((await api.GetAsync($"/api/v1/namespaces/default/pods/guarded-{_id}", CancellationToken.None)).IsSuccess);
    }

    [K8sFact(Binaries = ["kube-apiserver"])]
    public async Task Create_BundleUrlNotHttpsOrDigestNotHex_RefusedByTheSchema()
    {
        using var api = fixture.Api();
        await PrepareAsync(api);

        var response = await api.CreateAsync(ApplianceUpdateResource.ListPath, Resource("bad-" + _id, "http://updates.example/x.cub", "not-a-digest", 0), CancellationToken.None);

        Assert.Equal(422, (int)response.Status);
        Assert.Contains("spec.bundleURL: Invalid value: \"http://updates.example/x.cub\": spec.bundleURL in body should match '^https://'", response.Message, StringComparison.Ordinal);
        Assert.Contains("spec.sha256: Invalid value: \"not-a-digest\"", response.Message, StringComparison.Ordinal);
    }

    [K8sFact(Binaries = ["kube-apiserver"])]
    public async Task Run_RolloutCreatedWhileRunning_TheWatchStartsTheNodeLongBeforeTheResync()
    {
        using var api = fixture.Api();
        await PrepareAsync(api);
        var n1 = await NodeAsync(api, "a", "1.0.0");
        await using var server = await BundleServer.StartAsync(Pki);
        var (url, sha) = Serve(server, "v2", "2.0.0", Starts);
        using var stop = new CancellationTokenSource(HangGuard);

        // The resync is an hour away: only a watch event can make the controller look again.
        var running = n1.RunAsync(TimeSpan.FromHours(1), stop.Token);
        await UntilAsync(() => Task.FromResult(n1.Ready), "the controller's first pass", running);
        var name = await RolloutAsync(api, url, sha);

        await UntilAsync(async () => StateOf(await GetAsync(api, name), n1.Name) == NodeStates.Restarting, "the node restarting for the rollout", running);
        Assert.True(await UnschedulableAsync(api, n1.Name));
        Assert.Equal(name, await CordonedForAsync(api, n1.Name));
        Assert.Equal("b", n1.Layout.ActiveSlot());
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => running);
    }

    [K8sFact(Binaries = ["kube-apiserver"])]
    public async Task Rollout_ClaimingNodeGoesSilent_AnotherNodeMarksItTimedOutTheRolloutHaltsAndItUncordonsWhenBack()
    {
        using var api = fixture.Api();
        await PrepareAsync(api);
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var n1 = await NodeAsync(api, "a", "1.0.0");
        var n2 = await NodeAsync(api, "b", "1.0.0", clock);
        await using var server = await BundleServer.StartAsync(Pki);
        var (url, sha) = Serve(server, "v2", "2.0.0", Starts);
        var name = await RolloutAsync(api, url, sha, nodeTimeoutSeconds: 600);

        // n1 claims, cordons, applies and goes down to restart, and does not come back (no controller runs for it).
        Assert.Equal("restarting", await n1.PassAsync(ControllerApi));
        Assert.Equal("waiting", await n2.PassAsync(ControllerApi));
        clock.Advance(TimeSpan.FromSeconds(599));
        Assert.Equal("waiting", await n2.PassAsync(ControllerApi));
        clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(NodeStates.TimedOut, await n2.PassAsync(ControllerApi));

        var rollout = await GetAsync(api, name);
        var why = $"timed out: no sign of life for 600 s (nodeTimeoutSeconds) while Restarting (version 2.0.0 in slot b on trial; restarting); noticed by node {n2.Name}; it stays cordoned until its Coracle runs again (or kubectl uncordon {n1.Name})";
        Assert.Equal((NodeStates.PhaseFailed, NodeStates.TimedOut, why), (Phase(rollout), StateOf(rollout, n1.Name), MessageOf(rollout, n1.Name)));
        Assert.Equal($"node {n1.Name}: {why}", Text(rollout["status"]!["reason"]));
        Assert.Equal(("True", "NodeTimedOut"), (Condition(rollout, "Halted"), ConditionReason(rollout, "Halted")));

        // Halted: n2 never starts; n1 stays cordoned while it is away.
        Assert.Null(await n2.PassAsync(ControllerApi));
        Assert.Null(StateOf(await GetAsync(api, name), n2.Name));
        Assert.Equal("a", n2.Layout.ActiveSlot());
        Assert.False(await UnschedulableAsync(api, n2.Name));
        Assert.True(await UnschedulableAsync(api, n1.Name));

        // n1 comes back (its restart): it holds no place any more, so it lifts the cordon its annotation names.
        Assert.Equal(1, n1.Boot());
        Assert.Equal("uncordoned", await n1.PassAsync(ControllerApi));
        Assert.False(await UnschedulableAsync(api, n1.Name));
        Assert.Null(await CordonedForAsync(api, n1.Name));
        Assert.Null(await n1.PassAsync(ControllerApi));
    }

    [K8sFact(Binaries = ["kube-apiserver"])]
    public async Task Rollout_DeletedWhileNodeRestarting_NodeUncordonsAfterItsRestartAndAHandCordonStays()
    {
        using var api = fixture.Api();
        await PrepareAsync(api);
        var n1 = await NodeAsync(api, "a", "1.0.0");
        var n2 = await NodeAsync(api, "b", "1.0.0");
        var byHand = await api.ApplyAsync($"/api/v1/nodes/{n2.Name}", new JsonObject
        {
            ["apiVersion"] = "v1", ["kind"] = "Node", ["metadata"] = new JsonObject { ["name"] = n2.Name }, ["spec"] = new JsonObject { ["unschedulable"] = true },
        }, "kubectl-by-hand", CancellationToken.None);
        Assert.True(byHand.IsSuccess, byHand.Describe());
        await using var server = await BundleServer.StartAsync(Pki);
        var (url, sha) = Serve(server, "v2", "2.0.0", Starts);
        var name = await RolloutAsync(api, url, sha);

        Assert.Equal("restarting", await n1.PassAsync(ControllerApi));
        Assert.Equal("waiting", await n2.PassAsync(ControllerApi));
        var deleted = await api.DeleteAsync(ApplianceUpdateResource.PathOf(name), CancellationToken.None);
        Assert.True(deleted.IsSuccess, deleted.Describe());

        // n1 restarts into 2.0.0 with no rollout left to record into: it lifts its own cordon.
        Assert.Equal(1, n1.Boot());
        Assert.Equal("uncordoned", await n1.PassAsync(ControllerApi));
        Assert.False(await UnschedulableAsync(api, n1.Name));
        Assert.Null(await CordonedForAsync(api, n1.Name));
        Assert.Equal("2.0.0", n1.Slot.RunningVersion);

        // n2 was cordoned by hand (no annotation): it stays cordoned.
        Assert.Null(await n2.PassAsync(ControllerApi));
        Assert.True(await UnschedulableAsync(api, n2.Name));
        Assert.Equal("a", n2.Layout.ActiveSlot());
    }

    [K8sFact(Binaries = ["kube-apiserver"])]
    public async Task Rollout_DeletedWhileDraining_NodeStopsBeforeApplyingAndUncordons()
    {
        using var api = fixture.Api();
        await PrepareAsync(api);
        var n1 = await NodeAsync(api, "a", "1.0.0");
        var untouched = Images.TreeHash(Path.Combine(n1.Root, "slots"));
        await GuardedPodAsync(api, n1.Name);
        await using var server = await BundleServer.StartAsync(Pki);
        var (url, sha) = Serve(server, "v2", "2.0.0", Starts);

        // The disruption budget holds the drain (for up to 60 s); the heartbeat (every 1 s) notices the deletion.
        var name = await RolloutAsync(api, url, sha, drainTimeoutSeconds: 60, nodeTimeoutSeconds: 4);
        var pass = n1.PassAsync(ControllerApi);
        await UntilAsync(async () => StateOf(await GetAsync(api, name), n1.Name) == NodeStates.Draining, "the node draining", pass);
        var deleted = await api.DeleteAsync(ApplianceUpdateResource.PathOf(name), CancellationToken.None);
        Assert.True(deleted.IsSuccess, deleted.Describe());

        Assert.Equal("rollout deleted: update stopped before applying, uncordoned", await pass);
        Assert.False(await UnschedulableAsync(api, n1.Name));
        Assert.Null(await CordonedForAsync(api, n1.Name));
        Assert.Equal(untouched, Images.TreeHash(Path.Combine(n1.Root, "slots")));
        Assert.True((await api.GetAsync($"/api/v1/namespaces/default/pods/guarded-{_id}", CancellationToken.None)).IsSuccess);
    }

    [K8sFact(Binaries = ["kube-apiserver"])]
    public async Task Rollout_NodeBackOnTheNewVersionButNeverReady_FailsAfterTheNodeTimeoutUncordoned()
    {
        using var api = fixture.Api();
        await PrepareAsync(api);
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var n1 = await NodeAsync(api, "a", "1.0.0", clock);
        await using var server = await BundleServer.StartAsync(Pki);
        var (url, sha) = Serve(server, "v2", "2.0.0", Starts);
        var name = await RolloutAsync(api, url, sha, nodeTimeoutSeconds: 600);

        Assert.Equal("restarting", await n1.PassAsync(ControllerApi));
        var node = (JsonObject)(await api.GetAsync($"/api/v1/nodes/{n1.Name}", CancellationToken.None)).Body!;
        node["status"] = new JsonObject
        {
            ["conditions"] = new JsonArray(new JsonObject { ["type"] = "Ready", ["status"] = "False", ["reason"] = "KubeletNotReady", ["message"] = "test" }),
        };
        var notReady = await api.ReplaceAsync($"/api/v1/nodes/{n1.Name}/status", node, CancellationToken.None);
        Assert.True(notReady.IsSuccess, notReady.Describe());

        // Back on 2.0.0, marked good, but the Node stays NotReady: it waits (renewing its line), then gives up.
        Assert.Equal(1, n1.Boot());
        Assert.Equal("waiting for Ready", await n1.PassAsync(ControllerApi));
        clock.Advance(TimeSpan.FromSeconds(599));
        Assert.Equal("waiting for Ready", await n1.PassAsync(ControllerApi));
        Assert.Equal(ApplianceUpdateResource.Timestamp(clock.GetUtcNow()), ApplianceUpdateResource.Nodes(await GetAsync(api, name)).Single(n => n.Name == n1.Name).RenewedAt);
        clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(NodeStates.Failed, await n1.PassAsync(ControllerApi));

        var rollout = await GetAsync(api, name);
        Assert.Equal($"node {n1.Name}: node {n1.Name} runs version 2.0.0 (slot b marked good) but its Node did not become Ready within 600 s (nodeTimeoutSeconds); uncordoned",
            Text(rollout["status"]!["reason"]));
        Assert.Equal(("True", "NodeFailed"), (Condition(rollout, "Halted"), ConditionReason(rollout, "Halted")));
        Assert.False(await UnschedulableAsync(api, n1.Name));
        Assert.Null(await CordonedForAsync(api, n1.Name));
    }

    [Fact]
    public void ReadSpec_NodeTimeout_DefaultsTo1800AndRenewsAQuarterOfItCappedAt60()
    {
        static ApplianceUpdateSpec Spec(string extra) =>
            ApplianceUpdateResource.ReadSpec(JsonNode.Parse("{\"spec\":{\"bundleURL\":\"https://u/x.cub\",\"sha256\":\"" + new string('a', 64) + "\"" + extra + "}}"), out _)!;

        Assert.Equal((1800, TimeSpan.FromSeconds(60)), (Spec("").NodeTimeoutSeconds, Spec("").RenewEvery));
        Assert.Equal((8, TimeSpan.FromSeconds(2)), (Spec(""","nodeTimeoutSeconds":8""").NodeTimeoutSeconds, Spec(""","nodeTimeoutSeconds":8""").RenewEvery));
        Assert.Equal((1, TimeSpan.FromSeconds(1)), (Spec(""","nodeTimeoutSeconds":0""").NodeTimeoutSeconds, Spec(""","nodeTimeoutSeconds":0""").RenewEvery));
    }

    [Fact]
    public void Evictable_DaemonSetMirrorAndFinishedPods_AreLeftOnTheNode()
    {
        static JsonNode Pod(string json) => JsonNode.Parse(json)!;

        Assert.True(NodeDrain.Evictable(Pod("""{"metadata":{"name":"web"},"status":{"phase":"Running"}}""")));
        Assert.True(NodeDrain.Evictable(Pod("""{"metadata":{"ownerReferences":[{"kind":"ReplicaSet","controller":true}]},"status":{"phase":"Pending"}}""")));
        Assert.False(NodeDrain.Evictable(Pod("""{"metadata":{"ownerReferences":[{"kind":"DaemonSet","controller":true}]},"status":{"phase":"Running"}}""")));
        Assert.False(NodeDrain.Evictable(Pod("""{"metadata":{"annotations":{"kubernetes.io/config.mirror":"abc"}},"status":{"phase":"Running"}}""")));
        Assert.False(NodeDrain.Evictable(Pod("""{"metadata":{},"status":{"phase":"Succeeded"}}""")));
        Assert.False(NodeDrain.Evictable(Pod("""{"metadata":{},"status":{"phase":"Failed"}}""")));
    }

    private FleetConnection Controller => new(fixture.Server, fixture.CaFile, fixture.CertFile.Replace("client-admin", "client-coracle-controller", StringComparison.Ordinal),
        fixture.KeyFile.Replace("client-admin", "client-coracle-controller", StringComparison.Ordinal)) { RequestTimeout = TimeSpan.FromSeconds(15) };

    private KubeApi ControllerApi() => Controller.Api();

    /// <summary>Polls <paramref name="done"/> until true; fails when <paramref name="alongside"/> ended first or after <see cref="HangGuard"/>.</summary>
    private static async Task UntilAsync(Func<Task<bool>> done, string what, Task alongside)
    {
        using var guard = new CancellationTokenSource(HangGuard);
        while (!await done())
        {
            if (alongside.IsCompleted)
            {
                await alongside;
                Assert.Fail($"ended before {what}");
            }

            Assert.False(guard.IsCancellationRequested, $"no {what} within {HangGuard.TotalSeconds} s");
            await Task.Delay(100, CancellationToken.None);
        }
    }

    /// <summary>A running pod on <paramref name="node"/> that a PodDisruptionBudget (minAvailable 1) keeps from eviction.</summary>
    private async Task GuardedPodAsync(KubeApi api, string node)
    {
        await PodAsync(api, "guarded-" + _id, node, running: true);
        var pdb = await api.CreateAsync("/apis/policy/v1/namespaces/default/poddisruptionbudgets", new JsonObject
        {
            ["apiVersion"] = "policy/v1",
            ["kind"] = "PodDisruptionBudget",
            ["metadata"] = new JsonObject { ["name"] = "guard-" + _id },
            ["spec"] = new JsonObject { ["minAvailable"] = 1, ["selector"] = new JsonObject { ["matchLabels"] = new JsonObject { ["pod"] = "guarded-" + _id } } },
        }, CancellationToken.None);
        Assert.True(pdb.IsSuccess, pdb.Describe());
    }

    /// <summary>The CRD and the controllers' ClusterRole, as the server applies them; the default ServiceAccount pods need.</summary>
    private async Task PrepareAsync(KubeApi api)
    {
        using var guard = new CancellationTokenSource(HangGuard);
        await ClusterRbac.ApplyAsync(fixture.Server, fixture.CaFile, fixture.CertFile, fixture.KeyFile, NullLogger.Instance, TimeProvider.System, guard.Token);
        await api.CreateAsync("/api/v1/namespaces/default/serviceaccounts", new JsonObject
        {
            ["apiVersion"] = "v1", ["kind"] = "ServiceAccount", ["metadata"] = new JsonObject { ["name"] = "default" },
        }, guard.Token);
        while (!(await api.GetAsync(ApplianceUpdateResource.ListPath, guard.Token)).IsSuccess)
        {
            await Task.Delay(200, guard.Token);
        }
    }

    /// <summary>A Ready Node labelled for this test, and its install root with <paramref name="version"/> in slot a.</summary>
    private async Task<TestNode> NodeAsync(KubeApi api, string suffix, string version, TimeProvider? time = null)
    {
        var name = $"fleet-{_id}-{suffix}";
        var created = await api.CreateAsync("/api/v1/nodes", new JsonObject
        {
            ["apiVersion"] = "v1",
            ["kind"] = "Node",
            ["metadata"] = new JsonObject { ["name"] = name, ["labels"] = new JsonObject { ["fleet-test"] = _id } },
        }, CancellationToken.None);
        Assert.True(created.IsSuccess, created.Describe());

        // Ready, as its kubelet would report it.
        var node = (JsonObject)created.Body!;
        node["status"] = new JsonObject
        {
            ["conditions"] = new JsonArray(new JsonObject { ["type"] = "Ready", ["status"] = "True", ["reason"] = "KubeletReady", ["message"] = "test" }),
        };
        var ready = await api.ReplaceAsync($"/api/v1/nodes/{name}/status", node, CancellationToken.None);
        Assert.True(ready.IsSuccess, ready.Describe());
        var root = Images.Install(_temp.Combine("root-" + suffix), Images.Scripted(version, Starts));
        return new TestNode(name, root, Pki.Cert("ca"), Controller, time ?? TimeProvider.System);
    }

    private static async Task PodAsync(KubeApi api, string name, string node, string? owner = null, bool mirror = false, bool running = false)
    {
        var metadata = new JsonObject { ["name"] = name, ["labels"] = new JsonObject { ["pod"] = name } };
        if (owner is not null)
        {
            metadata["ownerReferences"] = new JsonArray(new JsonObject
            {
                ["apiVersion"] = "apps/v1", ["kind"] = owner, ["name"] = "ds", ["uid"] = Guid.NewGuid().ToString(), ["controller"] = true,
            });
        }

        if (mirror)
        {
            metadata["annotations"] = new JsonObject { ["kubernetes.io/config.mirror"] = "mirror" };
        }

        var created = await api.CreateAsync("/api/v1/namespaces/default/pods", new JsonObject
        {
            ["apiVersion"] = "v1",
            ["kind"] = "Pod",
            ["metadata"] = metadata,
            ["spec"] = new JsonObject
            {
                ["nodeName"] = node,
                ["terminationGracePeriodSeconds"] = 0,
                ["containers"] = new JsonArray(new JsonObject { ["name"] = "c", ["image"] = "docker.io/library/busybox:coracle" }),
            },
        }, CancellationToken.None);
        Assert.True(created.IsSuccess, created.Describe());
        if (running)
        {
            // Running, as its kubelet would report it: the Eviction API honours disruption budgets only for running pods.
            var pod = (JsonObject)created.Body!;
            pod["status"] = new JsonObject { ["phase"] = "Running" };
            var updated = await api.ReplaceAsync($"/api/v1/namespaces/default/pods/{name}/status", pod, CancellationToken.None);
            Assert.True(updated.IsSuccess, updated.Describe());
        }
    }

    /// <summary>A bundle of a scripted slot, served over HTTPS: its URL and the whole file's SHA-256.</summary>
    private (string Url, string Sha256) Serve(BundleServer server, string name, string version, string script)
    {
        var image = Images.Tarball(_temp.Combine(name + ".tar.gz"), Images.Scripted(version, script));
        var bundle = _temp.Combine(name + ".cub");
        BundleFile.Build(image, Pki.Key("vendor"), Pki.Cert("vendor"), version, "", bundle);
        server.Serve(name + ".cub", bundle);
        return (server.Url(name + ".cub"), Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(bundle))));
    }

    private JsonObject Resource(string name, string url, string sha, int drainTimeoutSeconds, int? nodeTimeoutSeconds = null)
    {
        var resource = Resource(name, url, sha, drainTimeoutSeconds);
        if (nodeTimeoutSeconds is { } timeout)
        {
            resource["spec"]!["nodeTimeoutSeconds"] = timeout;
        }

        return resource;
    }

    private JsonObject Resource(string name, string url, string sha, int drainTimeoutSeconds) => new()
    {
        ["apiVersion"] = ApplianceUpdateResource.ApiVersion,
        ["kind"] = ApplianceUpdateResource.Kind,
        ["metadata"] = new JsonObject { ["name"] = name },
        ["spec"] = new JsonObject
        {
            ["bundleURL"] = url,
            ["sha256"] = sha,
            ["nodeSelector"] = new JsonObject { ["fleet-test"] = _id },
            ["drainTimeoutSeconds"] = drainTimeoutSeconds,
            ["downloadCA"] = File.ReadAllText(Pki.Cert("ca")),
        },
    };

    private async Task<string> RolloutAsync(KubeApi api, string url, string sha, int drainTimeoutSeconds = 30, int? nodeTimeoutSeconds = null)
    {
        var name = "rollout-" + _id;
        var created = await api.CreateAsync(ApplianceUpdateResource.ListPath, Resource(name, url, sha, drainTimeoutSeconds, nodeTimeoutSeconds), CancellationToken.None);
        Assert.True(created.IsSuccess, created.Describe());
        return name;
    }

    private static async Task<JsonObject> GetAsync(KubeApi api, string name)
    {
        var response = await api.GetAsync(ApplianceUpdateResource.PathOf(name), CancellationToken.None);
        Assert.True(response.IsSuccess, response.Describe());
        return (JsonObject)response.Body!;
    }

    private static async Task<string?> CordonedForAsync(KubeApi api, string node) =>
        NodeDrain.CordonedFor((await api.GetAsync($"/api/v1/nodes/{node}", CancellationToken.None)).Body);

    private static async Task<bool> UnschedulableAsync(KubeApi api, string node) =>
        (await api.GetAsync($"/api/v1/nodes/{node}", CancellationToken.None)).Body?["spec"]?["unschedulable"]?.GetValue<bool>() == true;

    private static string? Text(JsonNode? node) => node?.GetValue<string>();

    private static string Phase(JsonObject rollout) => ApplianceUpdateResource.Phase(rollout);

    private static string? StateOf(JsonObject rollout, string node) => ApplianceUpdateResource.Nodes(rollout).FirstOrDefault(n => n.Name == node)?.State;

    private static string? MessageOf(JsonObject rollout, string node) => ApplianceUpdateResource.Nodes(rollout).FirstOrDefault(n => n.Name == node)?.Message;

    private static string? Condition(JsonObject rollout, string type) =>
        (rollout["status"]?["conditions"] as JsonArray)?.FirstOrDefault(c => Text(c?["type"]) == type)?["status"]?.GetValue<string>();

    private static string? ConditionReason(JsonObject rollout, string type) =>
        (rollout["status"]?["conditions"] as JsonArray)?.FirstOrDefault(c => Text(c?["type"]) == type)?["reason"]?.GetValue<string>();

    /// <summary>
    /// One node's Coracle: its install root, its <see cref="SlotNode"/>, and its controller; <see cref="Boot"/> plays the
    /// unit after the controller asked for a restart.
    /// </summary>
    private sealed class TestNode
    {
        private readonly FleetConnection _connection;
        private readonly TimeProvider _time;
        private FleetController _controller;

        public TestNode(string name, string root, string ca, FleetConnection connection, TimeProvider time)
        {
            _connection = connection;
            _time = time;
            Name = name;
            Root = root;
            Layout = new InstallLayout(root);
            Slot = new SlotNode(Layout, ca, 3, 60, new NoSnapshot("test: no datastore"), NullLogger.Instance)
            {
                Restart = _ =>
                {
                    RestartAsked = true;
                    return Task.FromResult("played by the test");
                },
            };
            _controller = NewController();
        }

        public string Name { get; }

        public string Root { get; }

        public InstallLayout Layout { get; }

        public SlotNode Slot { get; }

        public bool RestartAsked { get; private set; }

        public bool Ready => _controller.Ready;

        private FleetController NewController(TimeSpan? resync = null) => new(_connection, Name, Slot, NullLogger.Instance, _time) { Resync = resync ?? TimeSpan.FromMinutes(5) };

        /// <summary>The controller as the component runs it (watches, passes), with <paramref name="resync"/>.</summary>
        public Task RunAsync(TimeSpan resync, CancellationToken ct)
        {
            _controller = NewController(resync);
            return _controller.RunAsync(ct);
        }

        public async Task<string?> PassAsync(Func<KubeApi> connect)
        {
            using var api = connect();
            using var guard = new CancellationTokenSource(HangGuard);
            return await _controller.PassAsync(api, guard.Token);
        }

        /// <summary>
        /// As systemd with Restart=always: the boot guard, then the slot's coracle; a start that works ends a trial (the
        /// health gate's part); a failed one is followed by the next round. Then a new controller, as the new process
        /// has. Returns the rounds.
        /// </summary>
        public int Boot()
        {
            Assert.True(RestartAsked, "the controller did not ask for a restart");
            RestartAsked = false;
            for (var round = 1; round <= 6; round++)
            {
                var guard = Run.Tool(Path.Combine(Root, "update", "boot-guard"), Root);
                Assert.True(guard.ExitCode == 0, guard.Stderr);
                if (Run.Tool(Path.Combine(Root, "current", "coracle")).ExitCode == 0)
                {
                    if (UpdateState.Read(Layout.StateFile) is { Trial.Length: > 0 } state && state.Trial == Layout.ActiveSlot())
                    {
                        UpdateGate.MarkGood(Layout, state.Trial, "healthy (played by the test)");
                    }

                    _controller = NewController();
                    return round;
                }
            }

            throw new InvalidOperationException("no good start in 6 rounds");
        }
    }
}
