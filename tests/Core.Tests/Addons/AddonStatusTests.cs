using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Coracle.Core.Addons;
using Coracle.Core.Kubernetes;
using Coracle.Core.Tests.Support;

namespace Coracle.Core.Tests.Addons;

/// <summary>
/// The add-on rows <c>coracle status</c> shows, as the manifests controller publishes them, against the real
/// kube-apiserver (CORACLE_K8S_BIN) without a kubelet: the tests create an add-on's Pod and write its status through the
/// <c>pods/status</c> subresource, as a kubelet would. Each test has its own manifests folder and Addon namespace.
/// </summary>
[Trait("Category", "Integration")]
public sealed class AddonStatusTests : IClassFixture<ApiServerFixture>, IAsyncLifetime, IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    private readonly ApiServerFixture _server;
    private readonly TempDir _folder = new("astat");
    private readonly ListLoggerFactory _logs = new();
    private readonly AddonBoard _board = new();
    private readonly ManifestsRuns _running = new();
    private KubeApi? _api;

    public AddonStatusTests(ApiServerFixture server)
    {
        _server = server;
    }

    private KubeApi Api => _api ??= _server.Api();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _running.DisposeAsync();

    public void Dispose()
    {
        _api?.Dispose();
        _logs.Dispose();
        _folder.Dispose();
    }

    [K8sFact(Binaries = ["kube-apiserver"])]
    public async Task DeploymentPod_WaitingImagePullBackOff_RowSaysImageMissingWithTheImage()
    {
        const string Image = "registry.example.com/as-img/web:1.2.3";
        var ns = await NamespaceAsync("as-img");
        await NamespaceAsync("as-img-apps");
        await ApplyAsync("/api/v1/namespaces/as-img-apps/serviceaccounts/default",
            new JsonObject { ["apiVersion"] = "v1", ["kind"] = "ServiceAccount", ["metadata"] = new JsonObject { ["name"] = "default", ["namespace"] = "as-img-apps" } });
        _folder.Write("web.yaml", $$$"""
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: web, namespace: as-img-apps}
            spec:
              replicas: 1
              selector: {matchLabels: {app: as-img-web}}
              template:
                metadata: {labels: {app: as-img-web}}
                spec:
                  containers:
                  - {name: web, image: "{{{Image}}}", imagePullPolicy: IfNotPresent}
            ---
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: web-config, namespace: as-img-apps}
            data: {a: b}
            """);
        Start(ns);

        // No kube-controller-manager here: the Deployment wants one pod and has none yet.
        var row = await RowAsync("web", r => r.State == "progressing" && r.PodsWanted == 1);
        Assert.Equal(2, row.Objects);
        Assert.Equal(0, row.PodsReady);
        Assert.Equal("web.yaml", row.Source);

        // The pod the ReplicaSet would make, with the status a kubelet writes when the image cannot be pulled.
        var pod = new JsonObject
        {
            ["apiVersion"] = "v1",
            ["kind"] = "Pod",
            ["metadata"] = new JsonObject { ["name"] = "web-6d4cf56db6-x7k2p", ["namespace"] = "as-img-apps", ["labels"] = new JsonObject { ["app"] = "as-img-web" } },
            ["spec"] = new JsonObject { ["containers"] = new JsonArray(new JsonObject { ["name"] = "web", ["image"] = Image }) },
        };
        var created = await Api.CreateAsync("/api/v1/namespaces/as-img-apps/pods", pod, CancellationToken.None);
        Assert.True(created.IsSuccess, created.Describe());
        await PodStatusAsync("web-6d4cf56db6-x7k2p", ready: false, new JsonObject
        {
            ["waiting"] = new JsonObject
            {
                ["reason"] = "ImagePullBackOff",
                ["message"] = $"Back-off pulling image \"{Image}\": ErrImagePull: failed to pull and unpack image \"{Image}\": failed to resolve reference \"{Image}\": not found",
            },
        }, Image);

        row = await RowAsync("web", r => r.MissingImages.Count > 0);
        Assert.Equal("progressing", row.State);
        Assert.Equal([Image], row.MissingImages);
        Assert.Equal($"image missing: {Image} (put it in DATA/agent/images or a registry)", row.Detail);
        Assert.Equal((0, 1), (row.PodsReady, row.PodsWanted));
        Assert.Contains(_logs.Lines, l => l.Contains($"add-on web: a pod cannot get image {Image}", StringComparison.Ordinal));

        // The image arrives and the container runs: the row is clean again.
        await PodStatusAsync("web-6d4cf56db6-x7k2p", ready: true, new JsonObject { ["running"] = new JsonObject { ["startedAt"] = "2026-12-06T22:00:00Z" } }, Image);
        row = await RowAsync("web", r => r.PodsReady == 1);
        Assert.Equal("applied", row.State);
        Assert.Empty(row.MissingImages);
        Assert.Equal("", row.Detail);
    }

    [K8sFact(Binaries = ["kube-apiserver"])]
    public async Task FileWithABadObject_RowFailedWithTheErrorOnOneLine()
    {
        var ns = await NamespaceAsync("as-bad");
        _folder.Write("bad.yaml", """
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: as-bad-good}
            ---
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: As_Bad_Name}
            """);
        _folder.Write("good.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: as-bad-other}\n");
        Start(ns);

        var row = await RowAsync("bad", r => r.State == "failed");
        Assert.StartsWith("bad.yaml:5:1: ConfigMap default/As_Bad_Name: ", row.Detail, StringComparison.Ordinal);
        Assert.Contains("As_Bad_Name", row.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', row.Detail);
        Assert.True(row.Detail.Length <= AddonRows.MaxDetail);
        Assert.Equal(1, row.Objects);
        Assert.Null(row.PodsWanted);
        Assert.Equal("applied", (await RowAsync("good", r => r.State == "applied")).State);
    }

    [K8sFact(Binaries = ["kube-apiserver"])]
    public async Task SkipFileAndPluginOff_RowsSkippedAndDisabled()
    {
        var ns = await NamespaceAsync("as-skip");
        _folder.Write("traefik.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: as-skip-traefik}\n");
        _folder.Write("traefik.yaml.skip", "");
        _folder.Write("marker.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: as-skip-marker}\n");
        Start(ns, new Dictionary<string, string> { ["metrics-server"] = "disabled by --disable" });

        await RowAsync("marker", r => r.State == "applied");
        var rows = _board.Rows;
        var skipped = Assert.Single(rows, r => r.Name == "traefik");
        Assert.Equal(("skipped", "traefik.yaml.skip is present: not applied", 0), (skipped.State, skipped.Detail, skipped.Objects));
        var off = Assert.Single(rows, r => r.Name == "metrics-server");
        Assert.Equal(("disabled", "disabled by --disable", ""), (off.State, off.Detail, off.Source));
        Assert.Null(await GetAsync("/api/v1/namespaces/default/configmaps/as-skip-traefik"));
    }

    private async Task<string> NamespaceAsync(string name)
    {
        await ApplyAsync($"/api/v1/namespaces/{name}", new JsonObject { ["apiVersion"] = "v1", ["kind"] = "Namespace", ["metadata"] = new JsonObject { ["name"] = name } });
        return name;
    }

    private async Task ApplyAsync(string path, JsonObject body)
    {
        var response = await Api.ApplyAsync(path, body, "test", CancellationToken.None);
        Assert.True(response.IsSuccess, response.Describe());
    }

    /// <summary>Writes a pod's status as a kubelet does (<c>pods/status</c>): one container in <paramref name="state"/>.</summary>
    private Task PodStatusAsync(string name, bool ready, JsonObject state, string image) =>
        ApplyAsync($"/api/v1/namespaces/as-img-apps/pods/{name}/status", new JsonObject
        {
            ["apiVersion"] = "v1",
            ["kind"] = "Pod",
            ["metadata"] = new JsonObject { ["name"] = name, ["namespace"] = "as-img-apps" },
            ["status"] = new JsonObject
            {
                ["phase"] = ready ? "Running" : "Pending",
                ["conditions"] = new JsonArray(new JsonObject { ["type"] = "Ready", ["status"] = ready ? "True" : "False" }),
                ["containerStatuses"] = new JsonArray(new JsonObject
                {
                    ["name"] = "web",
                    ["image"] = image,
                    ["imageID"] = "",
                    ["ready"] = ready,
                    ["restartCount"] = 0,
                    ["state"] = state,
                }),
            },
        });

    private async Task<JsonNode?> GetAsync(string path)
    {
        var response = await Api.GetAsync(path, CancellationToken.None);
        return response.IsSuccess ? response.Body : null;
    }

    private void Start(string ns, IReadOnlyDictionary<string, string>? off = null)
    {
        var options = new ManifestsOptions
        {
            Folder = _folder.Path,
            Identity = "node-a",
            Namespace = ns,
            Rescan = TimeSpan.FromSeconds(1),
            RetryMin = TimeSpan.FromSeconds(1),
            LeaseRetry = TimeSpan.FromMilliseconds(500),
            Settle = TimeSpan.FromMilliseconds(100),
            StatusInterval = TimeSpan.FromSeconds(1),
            Off = off ?? new Dictionary<string, string>(),
        };
        var api = _server.Api();
        var service = new ManifestsService(options, _logs.CreateLogger("manifests"), board: _board);
        _running.Start(service, api);
    }

    /// <summary>Waits until the board has a row named <paramref name="name"/> that satisfies <paramref name="condition"/>.</summary>
    private async Task<AddonRow> RowAsync(string name, Func<AddonRow, bool> condition)
    {
        var deadline = DateTime.UtcNow + Bound;
        while (true)
        {
            if (_board.Rows.FirstOrDefault(r => r.Name == name) is { } row && condition(row))
            {
                return row;
            }

            _running.AssertNoneCrashed(_logs.Lines);
            Assert.True(DateTime.UtcNow < deadline,
                $"waited {Bound.TotalSeconds} s for add-on {name}; rows: {string.Join(" | ", _board.Rows)}\nlog:\n{string.Join('\n', _logs.Lines)}");
            await Task.Delay(250);
        }
    }
}
