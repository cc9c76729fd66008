using Coracle.Core.Kubernetes;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Coracle.Core.Addons;
using Coracle.Core.Tests.Support;

namespace Coracle.Core.Tests.Addons;

/// <summary>
/// The manifests controller against the real kube-apiserver (CORACLE_K8S_BIN) on Debian's etcd, one API server for the
/// class. Each test has its own manifests folder and its own namespace for its Addons, Lease and Events, so the tests
/// do not see each other's Addons; the objects they apply have names of their own. Waits poll with generous bounds.
/// </summary>
[Trait("Category", "Integration")]
public sealed class ManifestsControllerTests : IClassFixture<ApiServerFixture>, IAsyncLifetime, IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    private readonly ApiServerFixture _server;
    private readonly TempDir _folder = new("mfst");
    private readonly ListLoggerFactory _logs = new();
    private readonly ConcurrentQueue<string> _details = new();
    private readonly List<Running> _running = [];
    private KubeApi? _api;

    public ManifestsControllerTests(ApiServerFixture server)
    {
        _server = server;
    }

    private KubeApi Api => _api ??= _server.Api();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var running in _running)
        {
            await running.StopAsync();
        }
    }

    public void Dispose()
    {
        _api?.Dispose();
        _logs.Dispose();
        _folder.Dispose();
    }

    [K8sFact(Binaries = ["kube-apiserver"])]
    public async Task AddedFile_NamespaceConfigMapAndSecret_AppliedAndListedInItsAddon()
    {
        var ns = await AddonNamespaceAsync("mt-add");
        var file = _folder.Write("app.yaml", """
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: mt-add-cfg}
            data: {greeting: hello}
            ---
            apiVersion: v1
            kind: Secret
            metadata: {name: mt-add-secret, namespace: mt-add-apps}
            stringData: {password: s3cret}
            ---
            apiVersion: v1
            kind: Namespace
            metadata: {name: mt-add-apps}
            """);
        await StartAsync(ns);

        await EventuallyAsync("the three objects and the Addon", async () =>
            await GetAsync("/api/v1/namespaces/default/configmaps/mt-add-cfg") is not null
            && await GetAsync("/api/v1/namespaces/mt-add-apps/secrets/mt-add-secret") is not null
            && await GetAsync("/api/v1/namespaces/mt-add-apps") is not null
            && await GetAsync(AddonResource.PathOf(ns, "app")) is { } addon && Objects(addon).Count == 3);

        var applied = (await GetAsync(AddonResource.PathOf(ns, "app")))!;
        Assert.Equal(["Namespace mt-add-apps", "ConfigMap default/mt-add-cfg", "Secret mt-add-apps/mt-add-secret"], Objects(applied));
        Assert.Equal("app.yaml", applied["spec"]!["source"]!.GetValue<string>());
        Assert.Equal(Sha256(file), applied["spec"]!["checksum"]!.GetValue<string>());
        Assert.Null(applied["status"]!["lastError"]);
        Assert.Equal("hello", (await GetAsync("/api/v1/namespaces/default/configmaps/mt-add-cfg"))!["data"]!["greeting"]!.GetValue<string>());

        // kubectl get addons shows the source, the short checksum and the error column.
        var (code, stdout, stderr) = Run.Tool("kubectl", "--kubeconfig", _server.Kubeconfig, "--server", _server.Server.ToString(), "get", "addons", "-A");
        Assert.True(code == 0, stderr);
        Assert.Matches(@"NAMESPACE\s+NAME\s+SOURCE\s+CHECKSUM\s+APPLIED\s+ERROR", stdout);
        Assert.Matches($@"{ns}\s+app\s+app\.yaml\s+{Sha256(file)[..12]}\s", stdout);
        Assert.Contains(_details, d => d.StartsWith("1 applied, 0 failed", StringComparison.Ordinal));
    }

    [K8sFact(Binaries = ["kube-apiserver"])]
    public async Task ChangedFile_OneObjectDroppedAnotherChanged_UpdatedAndPruned()
    {
        var ns = await AddonNamespaceAsync("mt-chg");
        _folder.Write("sub/web.yaml", """
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: mt-chg-a}
            data: {x: "1", old: "yes"}
            ---
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: mt-chg-b}
            """);
        await StartAsync(ns);
        await EventuallyAsync("both ConfigMaps", async () =>
            await GetAsync("/api/v1/namespaces/default/configmaps/mt-chg-b") is not null
            && await GetAsync(AddonResource.PathOf(ns, "sub-web")) is { } addon && Objects(addon).Count == 2);

        _folder.Write("sub/web.yaml", """
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: mt-chg-a}
            data: {x: "2", y: "3"}
            """);

        await EventuallyAsync("mt-chg-b deleted and mt-chg-a changed", async () =>
            await GetAsync("/api/v1/namespaces/default/configmaps/mt-chg-b") is null
            && (await GetAsync("/api/v1/namespaces/default/configmaps/mt-chg-a"))?["data"]?.ToJsonString() == """{"x":"2","y":"3"}""");
        await EventuallyAsync("the Addon listing mt-chg-a alone", async () =>
            await GetAsync(AddonResource.PathOf(ns, "sub-web")) is { } addon && Objects(addon).SequenceEqual(["ConfigMap default/mt-chg-a"]));
    }

    [K8sFact(Binaries = ["kube-apiserver"])]
    public async Task SkipFile_BesideANewAndAnAppliedFile_NeitherApplied()
    {
        var ns = await AddonNamespaceAsync("mt-skip");
        _folder.Write("kept.yaml", ConfigMap("mt-skip-kept", "v", "1"));
        var running = await StartAsync(ns);
        await EventuallyAsync("mt-skip-kept", async () => await GetAsync(AddonResource.PathOf(ns, "kept")) is { } addon && Objects(addon).Count == 1);

        // The .skip files come first, so the controller never sees either manifest without one.
        _folder.Write("kept.yaml.skip", "");
        _folder.Write("kept.yaml", ConfigMap("mt-skip-kept", "v", "2"));
        _folder.Write("new.yaml.skip", "");
        _folder.Write("new.yaml", ConfigMap("mt-skip-new", "v", "1"));
        _folder.Write("marker.yaml", ConfigMap("mt-skip-marker", "v", "1"));
        await EventuallyAsync("the marker file applied", async () => await GetAsync("/api/v1/namespaces/default/configmaps/mt-skip-marker") is not null);
        var passes = running.Service.Controller!.Passes;
        await EventuallyAsync("two more passes", () => Task.FromResult(running.Service.Controller!.Passes >= passes + 2));

        Assert.Null(await GetAsync("/api/v1/namespaces/default/configmaps/mt-skip-new"));
        Assert.Null(await GetAsync(AddonResource.PathOf(ns, "new")));
        Assert.Equal("1", (await GetAsync("/api/v1/namespaces/default/configmaps/mt-skip-kept"))!["data"]!["v"]!.GetValue<string>());
        Assert.NotNull(await GetAsync(AddonResource.PathOf(ns, "kept")));
        Assert.Contains(_details, d => d.Contains("2 skipped", StringComparison.Ordinal));

        // Removing a .skip applies the file.
        File.Delete(_folder.Combine("new.yaml.skip"));
        await EventuallyAsync("mt-skip-new once its .skip is gone", async () => await GetAsync("/api/v1/namespaces/default/configmaps/mt-skip-new") is not null);
    }

    [K8sFact(Binaries = ["kube-apiserver"])]
    public async Task DeletedFile_ObjectsAndAddon_Deleted()
    {
        var ns = await AddonNamespaceAsync("mt-del");
        _folder.Write("gone.yaml", """
            apiVersion: v1
            kind: Namespace
            metadata: {name: mt-del-apps}
            ---
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: mt-del-a, namespace: mt-del-apps}
            ---
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: mt-del-b}
            """);
        _folder.Write("stays.yaml", ConfigMap("mt-del-stays", "v", "1"));
        await StartAsync(ns);
        await EventuallyAsync("the file's objects", async () => await GetAsync(AddonResource.PathOf(ns, "gone")) is { } addon && Objects(addon).Count == 3);

        File.Delete(_folder.Combine("gone.yaml"));

        await EventuallyAsync("the objects and the Addon deleted", async () =>
            await GetAsync("/api/v1/namespaces/mt-del-apps/configmaps/mt-del-a") is null
            && await GetAsync("/api/v1/namespaces/default/configmaps/mt-del-b") is null
            && await GetAsync(AddonResource.PathOf(ns, "gone")) is null);

        // Without kube-controller-manager a deleted namespace stays Terminating (its finalizer is never run).
        var apps = await GetAsync("/api/v1/namespaces/mt-del-apps");
        Assert.True(apps is null || apps["metadata"]?["deletionTimestamp"] is not null, apps?.ToJsonString());
        Assert.NotNull(await GetAsync("/api/v1/namespaces/default/configmaps/mt-del-stays"));
        Assert.NotNull(await GetAsync(AddonResource.PathOf(ns, "stays")));
    }

    [K8sFact(Binaries = ["kube-apiserver"])]
    public async Task InvalidFiles_BadYamlAndRejectedObject_LastErrorAndWarningEventWhileAValidFileIsApplied()
    {
        var ns = await AddonNamespaceAsync("mt-bad");
        _folder.Write("bad.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: mt-bad-x\n   oops: [\n");
        _folder.Write("rejected.yaml", ConfigMap("Not_A_Valid_Name", "v", "1") + "---\n" + ConfigMap("mt-bad-ok-in-rejected", "v", "1"));
        _folder.Write("good.yaml", ConfigMap("mt-bad-good", "v", "1"));
        await StartAsync(ns);

        await EventuallyAsync("the valid file applied", async () => await GetAsync("/api/v1/namespaces/default/configmaps/mt-bad-good") is not null);
        await EventuallyAsync("both errors recorded", async () =>
            LastError(await GetAsync(AddonResource.PathOf(ns, "bad"))) is not null
            && LastError(await GetAsync(AddonResource.PathOf(ns, "rejected"))) is not null);

        Assert.Matches(@"^bad\.yaml:\d+:\d+: ", LastError(await GetAsync(AddonResource.PathOf(ns, "bad"))));
        var rejected = (await GetAsync(AddonResource.PathOf(ns, "rejected")))!;
        Assert.Matches(@"^rejected\.yaml:1:1: ConfigMap default/Not_A_Valid_Name: HTTP 422 \(Invalid\): ", LastError(rejected));

        // The rest of a rejected file is applied, and recorded for later pruning.
        Assert.NotNull(await GetAsync("/api/v1/namespaces/default/configmaps/mt-bad-ok-in-rejected"));
        Assert.Equal(["ConfigMap default/mt-bad-ok-in-rejected"], Objects(rejected));
        foreach (var name in new[] { "bad", "rejected" })
        {
            await EventuallyAsync($"a Warning event for {name}", async () =>
                (await GetAsync($"/api/v1/namespaces/{ns}/events?fieldSelector=involvedObject.name%3D{name}"))?["items"] is JsonArray events
                && events.Any(e => e?["type"]?.GetValue<string>() == "Warning" && e["reason"]?.GetValue<string>() == "ApplyFailed"
                    && e["involvedObject"]?["kind"]?.GetValue<string>() == "Addon" && e["message"]?.GetValue<string>().StartsWith($"{name}.yaml:", StringComparison.Ordinal) == true));
        }

        await EventuallyAsync("the status detail", () => Task.FromResult(_details.Any(d => d.StartsWith("1 applied, 2 failed: bad: bad.yaml:", StringComparison.Ordinal))));

        // Fixed, the file is applied at once and its error goes.
        _folder.Write("bad.yaml", ConfigMap("mt-bad-x", "v", "1"));
        await EventuallyAsync("the fixed file applied", async () =>
            await GetAsync("/api/v1/namespaces/default/configmaps/mt-bad-x") is not null
            && await GetAsync(AddonResource.PathOf(ns, "bad")) is { } addon && LastError(addon) is null);
    }

    [K8sFact(Binaries = ["kube-apiserver"])]
    public async Task CrdAndCustomResource_InOneFile_BothApplied()
    {
        var ns = await AddonNamespaceAsync("mt-crd");
        _folder.Write("widgets.yaml", """
            apiVersion: mt.example.com/v1
            kind: Widget
            metadata: {name: w1}
            spec: {size: 3}
            ---
            apiVersion: apiextensions.k8s.io/v1
            kind: CustomResourceDefinition
            metadata: {name: widgets.mt.example.com}
            spec:
              group: mt.example.com
              scope: Namespaced
              names: {plural: widgets, singular: widget, kind: Widget, listKind: WidgetList}
              versions:
              - name: v1
                served: true
                storage: true
                schema:
                  openAPIV3Schema:
                    type: object
                    properties:
                      spec: {type: object, x-kubernetes-preserve-unknown-fields: true}
            """);
        await StartAsync(ns);

        await EventuallyAsync("the Widget", async () => await GetAsync("/apis/mt.example.com/v1/namespaces/default/widgets/w1") is not null);
        await EventuallyAsync("the Addon listing both without error", async () =>
            await GetAsync(AddonResource.PathOf(ns, "widgets")) is { } addon && LastError(addon) is null && Objects(addon).Count == 2);
        Assert.Equal(3, (await GetAsync("/apis/mt.example.com/v1/namespaces/default/widgets/w1"))!["spec"]!["size"]!.GetValue<int>());
    }

    [K8sFact(Binaries = ["kube-apiserver"])]
    public async Task Restart_UnchangedFiles_NotAppliedAgain()
    {
        var ns = await AddonNamespaceAsync("mt-rst");
        _folder.Write("r.yaml", ConfigMap("mt-rst-cfg", "v", "from-file"));
        var first = await StartAsync(ns);
        await EventuallyAsync("the ConfigMap", async () => await GetAsync(AddonResource.PathOf(ns, "r")) is { } addon && Objects(addon).Count == 1);
        await first.StopAsync();
        var addonBefore = (await GetAsync(AddonResource.PathOf(ns, "r")))!["metadata"]!["resourceVersion"]!.GetValue<string>();

        // Someone else changes the object: applying the file again (force) would take the field back.
        var changed = await Api.ApplyAsync("/api/v1/namespaces/default/configmaps/mt-rst-cfg",
            JsonNode.Parse("""{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"mt-rst-cfg","namespace":"default"},"data":{"v":"by-hand"}}""")!,
            "test-hand", CancellationToken.None);
        Assert.True(changed.IsSuccess, changed.Describe());
        var configMapBefore = (await GetAsync("/api/v1/namespaces/default/configmaps/mt-rst-cfg"))!["metadata"]!["resourceVersion"]!.GetValue<string>();

        var second = await StartAsync(ns);
        await EventuallyAsync("three passes of the new controller", () => Task.FromResult(second.Service.Controller?.Passes >= 3));

        var configMap = (await GetAsync("/api/v1/namespaces/default/configmaps/mt-rst-cfg"))!;
        Assert.Equal("by-hand", configMap["data"]!["v"]!.GetValue<string>());
        Assert.Equal(configMapBefore, configMap["metadata"]!["resourceVersion"]!.GetValue<string>());
        Assert.Equal(addonBefore, (await GetAsync(AddonResource.PathOf(ns, "r")))!["metadata"]!["resourceVersion"]!.GetValue<string>());
        Assert.Contains(_logs.Lines, l => l.Contains("not applied again: 1 files", StringComparison.Ordinal));
    }

    [K8sFact(Binaries = ["kube-apiserver"])]
    public async Task Lease_HeldByAnotherServer_StandsByThenTakesOverWhenReleased()
    {
        var ns = await AddonNamespaceAsync("mt-lease");
        _folder.Write("l.yaml", ConfigMap("mt-lease-cfg", "v", "1"));
        var leader = await StartAsync(ns, "server-1");
        await EventuallyAsync("the leader's first pass", () => Task.FromResult(leader.Service.Controller?.Passes >= 1));

        var standby = await StartAsync(ns, "server-2");
        await EventuallyAsync("server-2 standing by", () => Task.FromResult(standby.Service.Ready));
        Assert.Null(standby.Service.Controller);
        Assert.Contains(_details, d => d == $"standing by: Lease {ns}/coracle-manifests is held by server-1");

        await leader.StopAsync();

        await EventuallyAsync("server-2 leading", () => Task.FromResult(standby.Service.Controller?.Passes >= 1));
        var lease = (await GetAsync($"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/coracle-manifests"))!;
        Assert.Equal("server-2", lease["spec"]!["holderIdentity"]!.GetValue<string>());
    }

    private static string ConfigMap(string name, string key, string value) =>
        $"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  {key}: \"{value}\"\n";

    private static string Sha256(string file) => Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(file)));

    private static List<string> Objects(JsonNode addon) =>
        (addon["status"]?["objects"] as JsonArray ?? []).Select(o => ObjectRef.FromJson(o)!.ToString()).ToList();

    private static string? LastError(JsonNode? addon) => addon?["status"]?["lastError"]?.GetValue<string>();

    /// <summary>The namespace of a test's Addons, Lease and Events.</summary>
    private async Task<string> AddonNamespaceAsync(string name)
    {
        var response = await Api.ApplyAsync($"/api/v1/namespaces/{name}", new JsonObject { ["apiVersion"] = "v1", ["kind"] = "Namespace", ["metadata"] = new JsonObject { ["name"] = name } },
            "test", CancellationToken.None);
        Assert.True(response.IsSuccess, response.Describe());
        return name;
    }

    private async Task<JsonNode?> GetAsync(string path)
    {
        var response = await Api.GetAsync(path, CancellationToken.None);
        Assert.True(response.IsSuccess || response.IsNotFound, $"GET {path}: {response.Describe()}");
        return response.IsSuccess ? response.Body : null;
    }

    private async Task<Running> StartAsync(string ns, string identity = "node-a")
    {
        var options = new ManifestsOptions
        {
            Folder = _folder.Path,
            Identity = identity,
            Namespace = ns,
            Rescan = TimeSpan.FromSeconds(1),
            RetryMin = TimeSpan.FromSeconds(1),
            LeaseRetry = TimeSpan.FromMilliseconds(500),
            Settle = TimeSpan.FromMilliseconds(100),
        };
        var api = _server.Api();
        var service = new ManifestsService(options, _logs.CreateLogger($"manifests-{identity}"), report: _details.Enqueue);
        var stop = new CancellationTokenSource();
        var running = new Running(service, api, stop, Task.Run(() => service.RunAsync(api, stop.Token)));
        _running.Add(running);
        await Task.Yield();
        return running;
    }

    private async Task EventuallyAsync(string what, Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow + Bound;
        while (!await condition())
        {
            var crashed = _running.FirstOrDefault(r => r.Task.IsFaulted);
            Assert.True(crashed is null, $"the controller crashed: {crashed?.Task.Exception}\n{string.Join('\n', _logs.Lines)}");
            Assert.True(DateTime.UtcNow < deadline, $"waited {Bound.TotalSeconds} s for {what}; log:\n{string.Join('\n', _logs.Lines)}");
            await Task.Delay(250);
        }
    }

    private sealed class Running(ManifestsService service, KubeApi api, CancellationTokenSource stop, Task task)
    {
        private bool _stopped;

        public ManifestsService Service => service;

        public Task Task => task;

        public async Task StopAsync()
        {
            if (_stopped)
            {
                return;
            }

            _stopped = true;
            await stop.CancelAsync();
            try
            {
                await task;
            }
            catch (OperationCanceledException)
            {
            }

            api.Dispose();
            stop.Dispose();
        }
    }
}
