using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Coracle.Core.Addons;
using Coracle.Core.Kubernetes;
using Coracle.Core.Tests.Support;
using Coracle.Plugins.Ingress.Traefik;

namespace Coracle.Core.Tests.Addons;

/// <summary>
/// What the Traefik plugin renders (<c>traefik.yaml</c>), applied by the real manifests controller to the real
/// kube-apiserver (CORACLE_K8S_BIN) on Debian's etcd: every object is accepted by server-side apply, the IngressClass is
/// the cluster's default, an override file's output applies too, <c>coracle status</c>'s row names Traefik's image when
/// its pod cannot pull it, and removing the file (Traefik off) deletes every object. No kubelet: the test writes the
/// pod's status through <c>pods/status</c> as a kubelet would.
/// </summary>
[Trait("Category", "Integration")]
public sealed class TraefikManifestTests : IClassFixture<ApiServerFixture>, IAsyncLifetime, IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(90);

    private readonly ApiServerFixture _server;
    private readonly TempDir _folder = new("trk-mf");
    private readonly TempDir _temp = new("trk-opt");
    private readonly ListLoggerFactory _logs = new();
    private readonly ConcurrentQueue<string> _details = new();
    private readonly AddonBoard _board = new();
    private readonly ManifestsRuns _running = new();
    private KubeApi? _api;

    public TraefikManifestTests(ApiServerFixture server)
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
        _temp.Dispose();
    }

    [K8sFact(Binaries = ["kube-apiserver"])]
    public async Task TraefikYaml_AppliedDefaultClassImageMissingOverrideAndRemoved_EveryObjectCreatedThenDeleted()
    {
        var ns = await NamespaceAsync("trk-addons");
        _folder.Write("traefik.yaml", Render());
        Start(ns);

        // Every rendered object applied, none refused.
        var addon = await EventuallyAsync("traefik's Addon with its 16 objects and no error", async () =>
            await GetAsync(AddonResource.PathOf(ns, "traefik")) is { } a && Objects(a).Count == 16 && a["status"]?["lastError"] is null ? a : null);
        var objects = Objects(addon);
        foreach (var o in objects)
        {
            Assert.True(await GetAsync(PathOf(o)) is not null, $"{o} was not created");
        }

        Assert.Equal(10, objects.Count(o => o.Kind == "CustomResourceDefinition"));
        foreach (var crd in objects.Where(o => o.Kind == "CustomResourceDefinition"))
        {
            var conditions = (await GetAsync(PathOf(crd)))!["status"]!["conditions"]!.AsArray();
            Assert.Contains(conditions, c => c!["type"]!.GetValue<string>() == "Established" && c["status"]!.GetValue<string>() == "True");
        }

        var service = (await GetAsync("/api/v1/namespaces/kube-system/services/traefik"))!;
        Assert.Equal("LoadBalancer", service["spec"]!["type"]!.GetValue<string>());
        Assert.Equal([80, 443], service["spec"]!["ports"]!.AsArray().Select(p => p!["port"]!.GetValue<int>()));
        Assert.All(service["spec"]!["ports"]!.AsArray(), p => Assert.True(p!["nodePort"]!.GetValue<int>() > 0));
        var deployment = (await GetAsync("/apis/apps/v1/namespaces/kube-system/deployments/traefik"))!;
        Assert.Equal("system-cluster-critical", deployment["spec"]!["template"]!["spec"]!["priorityClassName"]!.GetValue<string>());

        // The default IngressClass: kube-apiserver's DefaultIngressClass admission gives a class-less Ingress "traefik".
        var ingressClass = (await GetAsync("/apis/networking.k8s.io/v1/ingressclasses/traefik"))!;
        Assert.Equal("true", ingressClass["metadata"]!["annotations"]!["ingressclass.kubernetes.io/is-default-class"]!.GetValue<string>());
        var ingress = await Api.CreateAsync("/apis/networking.k8s.io/v1/namespaces/default/ingresses", new JsonObject
        {
            ["apiVersion"] = "networking.k8s.io/v1",
            ["kind"] = "Ingress",
            ["metadata"] = new JsonObject { ["name"] = "trk-web" },
            ["spec"] = new JsonObject { ["defaultBackend"] = new JsonObject { ["service"] = new JsonObject { ["name"] = "web", ["port"] = new JsonObject { ["number"] = 80 } } } },
        }, CancellationToken.None);
        Assert.True(ingress.IsSuccess, ingress.Describe());
        Assert.Equal("traefik", ingress.Body!["spec"]!["ingressClassName"]!.GetValue<string>());

        // A Traefik pod that cannot pull its image: coracle status names the image.
        await PodWaitingForItsImageAsync("traefik-5f7c9d8b6-q2w4e", TraefikPlugin.DefaultImage);
        var row = await EventuallyAsync("the traefik row saying image missing", () =>
            Task.FromResult(_board.Rows.FirstOrDefault(r => r.Name == "traefik" && r.MissingImages.Count > 0)));
        Assert.Equal(("progressing", "traefik.yaml", 16), (row.State, row.Source, row.Objects));
        Assert.Equal([TraefikPlugin.DefaultImage], row.MissingImages);
        Assert.Equal("image missing: docker.io/rancher/mirrored-library-traefik:3.3.6 (put it in DATA/agent/images or a registry)", row.Detail);

        // An override file's output (re-emitted YAML) applies: a Service annotation, and a Middleware of Traefik's CRDs.
        var extra = _temp.Write("override.yaml", """
            kind: Service
            metadata:
              name: traefik
              annotations: {trk.example.com/pool: edge}
            ---
            apiVersion: traefik.io/v1alpha1
            kind: Middleware
            metadata: {name: trk-redirect, namespace: kube-system}
            spec:
              redirectScheme: {scheme: https, permanent: true}
            """);
        _folder.Write("traefik.yaml", Render(new Dictionary<string, string> { ["override"] = extra }));
        await UntilAsync("the Middleware and the annotation", async () =>
            await GetAsync("/apis/traefik.io/v1alpha1/namespaces/kube-system/middlewares/trk-redirect") is { } m
            && m["spec"]?["redirectScheme"]?["scheme"]?.GetValue<string>() == "https"
            && (await GetAsync("/api/v1/namespaces/kube-system/services/traefik"))?["metadata"]?["annotations"]?["trk.example.com/pool"]?.GetValue<string>() == "edge"
            && await GetAsync(AddonResource.PathOf(ns, "traefik")) is { } a && Objects(a).Count == 17 && a["status"]?["lastError"] is null);
        objects = Objects((await GetAsync(AddonResource.PathOf(ns, "traefik")))!);

        // Traefik off: the host removes traefik.yaml, and the controller deletes every object and the Addon.
        File.Delete(_folder.Combine("traefik.yaml"));
        await UntilAsync("every traefik object and the Addon deleted", async () =>
        {
            foreach (var o in objects)
            {
                if (await GetAsync(PathOf(o)) is not null)
                {
                    return false;
                }
            }

            return await GetAsync(AddonResource.PathOf(ns, "traefik")) is null;
        });
    }

    private string Render(IReadOnlyDictionary<string, string>? options = null)
    {
        var context = new FakePluginContext(FakePluginContext.Settings(_temp.Path), options, plugin: typeof(TraefikPlugin));
        new TraefikPlugin().Configure(context);
        return Assert.Single(context.Manifests.Written, w => w.Key == "traefik.yaml").Value;
    }

    /// <summary>The REST path of one of Traefik's objects.</summary>
    private static string PathOf(ObjectRef o)
    {
        var plural = o.Kind switch
        {
            "IngressClass" => "ingressclasses",
            _ => o.Kind.ToLowerInvariant() + "s",
        };
        var group = o.ApiVersion.Contains('/', StringComparison.Ordinal) ? "/apis/" + o.ApiVersion : "/api/" + o.ApiVersion;
        return o.Namespace is null ? $"{group}/{plural}/{o.Name}" : $"{group}/namespaces/{o.Namespace}/{plural}/{o.Name}";
    }

    private static List<ObjectRef> Objects(JsonNode addon) =>
        (addon["status"]?["objects"] as JsonArray ?? []).Select(o => ObjectRef.FromJson(o)!).ToList();

    /// <summary>Creates a pod with the Deployment's labels and writes the status a kubelet writes when the image cannot be pulled.</summary>
    private async Task PodWaitingForItsImageAsync(string name, string image)
    {
        var created = await Api.CreateAsync("/api/v1/namespaces/kube-system/pods", new JsonObject
        {
            ["apiVersion"] = "v1",
            ["kind"] = "Pod",
            ["metadata"] = new JsonObject
            {
                ["name"] = name,
                ["labels"] = new JsonObject { ["app.kubernetes.io/name"] = "traefik", ["app.kubernetes.io/instance"] = "traefik-kube-system" },
            },
            ["spec"] = new JsonObject
            {
                ["serviceAccountName"] = "traefik",
                ["containers"] = new JsonArray(new JsonObject { ["name"] = "traefik", ["image"] = image }),
            },
        }, CancellationToken.None);
        Assert.True(created.IsSuccess, created.Describe());
        var status = await Api.ApplyAsync($"/api/v1/namespaces/kube-system/pods/{name}/status", new JsonObject
        {
            ["apiVersion"] = "v1",
            ["kind"] = "Pod",
            ["metadata"] = new JsonObject { ["name"] = name, ["namespace"] = "kube-system" },
            ["status"] = new JsonObject
            {
                ["phase"] = "Pending",
                ["conditions"] = new JsonArray(new JsonObject { ["type"] = "Ready", ["status"] = "False" }),
                ["containerStatuses"] = new JsonArray(new JsonObject
                {
                    ["name"] = "traefik",
                    ["image"] = image,
                    ["imageID"] = "",
                    ["ready"] = false,
                    ["restartCount"] = 0,
                    ["state"] = new JsonObject
                    {
                        ["waiting"] = new JsonObject
                        {
                            ["reason"] = "ImagePullBackOff",
                            ["message"] = $"Back-off pulling image \"{image}\": ErrImagePull: failed to pull and unpack image \"{image}\": failed to resolve reference \"{image}\": not found",
                        },
                    },
                }),
            },
        }, "test", CancellationToken.None);
        Assert.True(status.IsSuccess, status.Describe());
    }

    private async Task<string> NamespaceAsync(string name)
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

    private void Start(string ns)
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
        };
        var api = _server.Api();
        var service = new ManifestsService(options, _logs.CreateLogger("manifests"), report: _details.Enqueue, board: _board);
        _running.Start(service, api);
    }

    private Task UntilAsync(string what, Func<Task<bool>> condition) =>
        EventuallyAsync(what, async () => await condition() ? what : null);

    /// <summary>Polls <paramref name="probe"/> until it gives a value (a hang guard, not a timing assertion).</summary>
    private async Task<T> EventuallyAsync<T>(string what, Func<Task<T?>> probe)
        where T : class
    {
        var deadline = DateTime.UtcNow + Bound;
        while (true)
        {
            if (await probe() is { } value)
            {
                return value;
            }

            _running.AssertNoneCrashed(_logs.Lines);
            Assert.True(DateTime.UtcNow < deadline,
                $"waited {Bound.TotalSeconds} s for {what}; status: {string.Join(" | ", _details.TakeLast(3))}; rows: {string.Join(" | ", _board.Rows)}\nlog:\n{string.Join('\n', _logs.Lines.TakeLast(40))}");
            await Task.Delay(250);
        }
    }
}
