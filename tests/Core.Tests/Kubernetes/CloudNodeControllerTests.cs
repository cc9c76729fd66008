using System.Text.Json.Nodes;
using Coracle.Core.Configuration;
using Coracle.Core.Kubernetes;
using Coracle.Core.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace Coracle.Core.Tests.Kubernetes;

/// <summary>
/// <c>--node-external-ip</c>, K3s's way, against the real kube-apiserver of <see cref="ApiServerFixture"/>: each test
/// registers its own Node as a kubelet with <c>--cloud-provider=external</c> does (the uninitialized taint, no addresses
/// but its InternalIP and Hostname), then runs the node's <see cref="NodeDeclaration"/> (as an agent: the node
/// controllers' credentials, whose ClusterRole is applied first) and the server's <see cref="CloudNodeController"/>.
/// </summary>
public sealed class CloudNodeControllerTests(ApiServerFixture fixture) : IClassFixture<ApiServerFixture>
{
    private static readonly TimeSpan HangGuard = TimeSpan.FromSeconds(60);

    [K8sFact(Binaries = ["kube-apiserver"])]
    public async Task Run_DeclaredNode_GetsAddressesProviderIdAndLosesOnlyTheUninitializedTaint()
    {
        using var api = fixture.Api();
        var name = await RegisterAsync(api, "declared");
        await ApplyControllerRbacAsync();

        await using var declaration = Start(new NodeDeclaration(ControllerApi, name, CloudNode.OwnAnnotations(["10.0.0.5"], ["192.0.2.10"]),
            new Dictionary<string, string>(), NullLogger.Instance).RunAsync);
        await using var controller = Start(Controller().RunAsync);
        var node = await WaitAsync(api, name, n => !CloudNode.IsTainted(n) && n["spec"]?["providerID"] is not null);

        Assert.Equal(["InternalIP=10.0.0.5", "ExternalIP=192.0.2.10", "Hostname=" + name], AddressesOf(node));
        Assert.Equal("coracle://" + name, node["spec"]!["providerID"]!.GetValue<string>());
        Assert.Equal("coracle", node["metadata"]!["labels"]![CloudNode.InstanceTypeLabel]!.GetValue<string>());
        Assert.Equal("10.0.0.5", node["metadata"]!["annotations"]![CloudNode.InternalIpAnnotation]!.GetValue<string>());
        Assert.Equal("192.0.2.10", node["metadata"]!["annotations"]![CloudNode.ExternalIpAnnotation]!.GetValue<string>());
        var taints = node["spec"]!["taints"]!.AsArray().Select(t => t!["key"]!.GetValue<string>()).ToList();
        Assert.Contains("dedicated", taints);
        Assert.DoesNotContain(CloudNode.UninitializedTaint, taints);
    }

    [K8sFact(Binaries = ["kube-apiserver"])]
    public async Task Run_NodeNotDeclaredYet_KeepsTheTaintUntilItDeclaresItsAddresses()
    {
        using var api = fixture.Api();
        var name = await RegisterAsync(api, "late");

        await using var controller = Start(Controller(out var cloud).RunAsync);
        await WaitForAsync(() => cloud.Ready);
        var untouched = await GetAsync(api, name);

        Assert.True(CloudNode.IsTainted(untouched));
        Assert.Null(untouched["spec"]?["providerID"]);
        Assert.Equal(["InternalIP=10.0.0.7", "Hostname=" + name], AddressesOf(untouched));

        // The node's declaration comes late (an agent still joining): the controller picks it up from its watch.
        await using var declaration = Start(new NodeDeclaration(fixture.Api, name, CloudNode.OwnAnnotations(["10.0.0.7"], []),
            new Dictionary<string, string>(), NullLogger.Instance).RunAsync);
        var node = await WaitAsync(api, name, n => !CloudNode.IsTainted(n));

        Assert.Equal(["InternalIP=10.0.0.7", "Hostname=" + name], AddressesOf(node));
        Assert.Equal("coracle://" + name, node["spec"]!["providerID"]!.GetValue<string>());
    }

    [K8sFact(Binaries = ["kube-apiserver"])]
    public async Task Declaration_ServerNode_GetsRoleLabels_AndADroppedExternalIpIsRemovedEverywhere()
    {
        using var api = fixture.Api();
        var name = await RegisterAsync(api, "server");
        await using var controller = Start(Controller().RunAsync);

        await using (var first = Start(new NodeDeclaration(fixture.Api, name, CloudNode.OwnAnnotations(["10.0.0.9"], ["192.0.2.10", "198.51.100.7"]),
            CloudNode.ServerLabels, NullLogger.Instance).RunAsync))
        {
            var node = await WaitAsync(api, name, n => !CloudNode.IsTainted(n));

            Assert.Equal(["InternalIP=10.0.0.9", "ExternalIP=192.0.2.10", "ExternalIP=198.51.100.7", "Hostname=" + name], AddressesOf(node));
            Assert.Equal("true", node["metadata"]!["labels"]![CloudNode.ControlPlaneLabel]!.GetValue<string>());
            Assert.Equal("true", node["metadata"]!["labels"]![CloudNode.MasterLabel]!.GetValue<string>());
        }

        // The next run has no --node-external-ip: the annotation goes, and with it the ExternalIP addresses.
        await using var second = Start(new NodeDeclaration(fixture.Api, name, CloudNode.OwnAnnotations(["10.0.0.9"], []),
            CloudNode.ServerLabels, NullLogger.Instance).RunAsync);
        var after = await WaitAsync(api, name, n => AddressesOf(n).Count == 2);

        Assert.Equal(["InternalIP=10.0.0.9", "Hostname=" + name], AddressesOf(after));
        Assert.Null(after["metadata"]!["annotations"]![CloudNode.ExternalIpAnnotation]);
    }

    [Fact]
    public void Addresses_AnnotationThatIsNotAnIp_LeavesTheNodeAlone()
    {
        var node = new JsonObject
        {
            ["metadata"] = new JsonObject
            {
                ["name"] = "n1",
                ["annotations"] = new JsonObject { [CloudNode.InternalIpAnnotation] = "10.0.0.1", [CloudNode.ExternalIpAnnotation] = "not-an-ip" },
            },
            ["spec"] = new JsonObject { ["taints"] = new JsonArray(new JsonObject { ["key"] = CloudNode.UninitializedTaint, ["effect"] = "NoSchedule" }) },
        };

        Assert.Null(CloudNode.Addresses(node));
        Assert.False(CloudNode.NeedsWork(node));
    }

    [Fact]
    public void KubeletArgs_CloudProviderExternal_UnlessTheCloudControllerIsDisabled()
    {
        using var dir = new TempDir("cloud-args");
        var paths = new KubernetesPaths { TlsDir = "/d/tls", CredDir = "/d/cred", DatastoreServers = ["http://127.0.0.1:2379"] };
        string? CloudProvider(CoracleConfig config) => KubernetesComponents.Build(config, paths, null, null, _ => true, (_, _) => { })
            .Single(s => s.Name == "kubelet").Arguments.SingleOrDefault(a => a.StartsWith("--cloud-provider=", StringComparison.Ordinal));

        Assert.Equal("--cloud-provider=external", CloudProvider(TestConfig.Server(dir.Path)));
        Assert.Null(CloudProvider(TestConfig.Server(dir.Path, (Settings.DisableCloudController, "true"))));
    }

    private KubeApi ControllerApi() => new(fixture.Server, fixture.CaFile, fixture.CertFile.Replace("client-admin", "client-coracle-controller", StringComparison.Ordinal),
        fixture.KeyFile.Replace("client-admin", "client-coracle-controller", StringComparison.Ordinal), TimeSpan.FromSeconds(15));

    private CloudNodeController Controller() => Controller(out _);

    private CloudNodeController Controller(out CloudNodeController controller) =>
        controller = new CloudNodeController(fixture.Server, fixture.CaFile, fixture.CertFile, fixture.KeyFile, NullLogger.Instance);

    private async Task ApplyControllerRbacAsync()
    {
        using var guard = new CancellationTokenSource(HangGuard);
        await ClusterRbac.ApplyAsync(fixture.Server, fixture.CaFile, fixture.CertFile, fixture.KeyFile, NullLogger.Instance, TimeProvider.System, guard.Token);
    }

    /// <summary>Creates a Node as a kubelet with <c>--cloud-provider=external --node-ip</c> registers it, plus a user taint.</summary>
    private static async Task<string> RegisterAsync(KubeApi api, string prefix)
    {
        var name = $"{prefix}-{Guid.NewGuid():N}"[..20];
        var ip = prefix switch { "late" => "10.0.0.7", "server" => "10.0.0.9", _ => "10.0.0.5" };
        var node = new JsonObject
        {
            ["apiVersion"] = "v1",
            ["kind"] = "Node",
            ["metadata"] = new JsonObject { ["name"] = name, ["annotations"] = new JsonObject { ["alpha.kubernetes.io/provided-node-ip"] = ip } },
            ["spec"] = new JsonObject
            {
                ["taints"] = new JsonArray(
                    new JsonObject { ["key"] = "dedicated", ["value"] = "edge", ["effect"] = "NoSchedule" },
                    new JsonObject { ["key"] = CloudNode.UninitializedTaint, ["value"] = "true", ["effect"] = "NoSchedule" }),
            },
            ["status"] = new JsonObject
            {
                ["addresses"] = new JsonArray(
                    new JsonObject { ["type"] = "InternalIP", ["address"] = ip },
                    new JsonObject { ["type"] = "Hostname", ["address"] = name }),
            },
        };
        using var guard = new CancellationTokenSource(HangGuard);
        var created = await api.CreateAsync("/api/v1/nodes", node, guard.Token);
        Assert.True(created.IsSuccess, created.Describe());
        return name;
    }

    private static async Task<JsonObject> GetAsync(KubeApi api, string name)
    {
        using var guard = new CancellationTokenSource(HangGuard);
        var got = await api.GetAsync("/api/v1/nodes/" + name, guard.Token);
        Assert.True(got.IsSuccess, got.Describe());
        return got.Body!.AsObject();
    }

    private static async Task<JsonObject> WaitAsync(KubeApi api, string name, Func<JsonObject, bool> condition)
    {
        using var guard = new CancellationTokenSource(HangGuard);
        while (true)
        {
            var node = await GetAsync(api, name);
            if (condition(node))
            {
                return node;
            }

            await Task.Delay(200, guard.Token);
        }
    }

    private static async Task WaitForAsync(Func<bool> condition)
    {
        using var guard = new CancellationTokenSource(HangGuard);
        while (!condition())
        {
            await Task.Delay(100, guard.Token);
        }
    }

    private static List<string> AddressesOf(JsonObject node) =>
        (node["status"]?["addresses"] as JsonArray ?? []).Select(a => $"{a!["type"]}={a["address"]}").ToList();

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
}
