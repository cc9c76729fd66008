using Coracle.Plugins.Addon.MetricsServer;
using Coracle.Plugins.Addons.Tests.Support;
using static Coracle.Plugins.Addons.Tests.Support.Manifest;

namespace Coracle.Plugins.Addons.Tests.MetricsServer;

public sealed class MetricsServerPluginTests : IDisposable
{
    private readonly TempDir _temp = new("coracle-metrics");

    public void Dispose() => _temp.Dispose();

    private string Render(Dictionary<string, string>? options = null, string registry = "")
    {
        var context = new FakePluginContext(FakePluginContext.Settings(_temp.Path) with { SystemDefaultRegistry = registry }, options, plugin: typeof(MetricsServerPlugin));
        new MetricsServerPlugin().Configure(context);
        return Assert.Single(context.Manifests.Written, w => w.Key == "metrics-server.yaml").Value;
    }

    [Fact]
    public void Export_IsTheMetricsServerAddonWithK3sImage()
    {
        Assert.Equal("metrics-server", Export(typeof(MetricsServerPlugin)).Name);
        Assert.Equal(ExtensionPoints.Addon, Export(typeof(MetricsServerPlugin)).ExtensionPoint);
        Assert.Equal("docker.io/rancher/mirrored-metrics-server:v0.6.4", DeclaredDefault(typeof(MetricsServerPlugin), "image"));
        Assert.Equal("false", DeclaredDefault(typeof(MetricsServerPlugin), "kubelet-insecure-tls"));
    }

    [Fact]
    public void Configure_Defaults_WritesK3sObjectsThatParse()
    {
        var manifest = Parse(Render());

        Assert.Equal(
            ["ServiceAccount", "ClusterRole", "ClusterRole", "ClusterRoleBinding", "ClusterRoleBinding", "RoleBinding", "Service", "Deployment", "APIService"],
            manifest.Kinds);
        var reader = manifest.Get("ClusterRole", "system:aggregated-metrics-reader");
        Assert.Equal("true", Scalar(reader, "metadata", "labels", "rbac.authorization.k8s.io/aggregate-to-view"));
        Assert.Equal(["metrics.k8s.io"], Scalars(reader, "rules", 0, "apiGroups"));
        Assert.Equal(["nodes/metrics"], Scalars(manifest.Get("ClusterRole", "system:metrics-server"), "rules", 0, "resources"));
        Assert.Equal("system:metrics-server", Scalar(manifest.Get("ClusterRoleBinding", "system:metrics-server"), "roleRef", "name"));
        Assert.Equal("system:auth-delegator", Scalar(manifest.Get("ClusterRoleBinding", "metrics-server:system:auth-delegator"), "roleRef", "name"));
        var authReader = manifest.Get("RoleBinding", "metrics-server-auth-reader");
        Assert.Equal("kube-system", Scalar(authReader, "metadata", "namespace"));
        Assert.Equal("Role", Scalar(authReader, "roleRef", "kind"));
        Assert.Equal("extension-apiserver-authentication-reader", Scalar(authReader, "roleRef", "name"));
    }

    [Fact]
    public void Configure_ApiService_PointsAtTheServiceWithK3sPriorities()
    {
        var manifest = Parse(Render());
        var api = manifest.Get("APIService", "v1beta1.metrics.k8s.io");
        var service = manifest.Get("Service", "metrics-server");

        Assert.Equal("metrics-server", Scalar(api, "spec", "service", "name"));
        Assert.Equal("kube-system", Scalar(api, "spec", "service", "namespace"));
        Assert.Equal("metrics.k8s.io", Scalar(api, "spec", "group"));
        Assert.Equal("v1beta1", Scalar(api, "spec", "version"));
        Assert.Equal("true", Scalar(api, "spec", "insecureSkipTLSVerify"));
        Assert.Equal("100", Scalar(api, "spec", "groupPriorityMinimum"));
        Assert.Equal("100", Scalar(api, "spec", "versionPriority"));
        Assert.Equal("443", Scalar(service, "spec", "ports", 0, "port"));
        Assert.Equal("https", Scalar(service, "spec", "ports", 0, "targetPort"));
        Assert.Equal("metrics-server", Scalar(service, "spec", "selector", "k8s-app"));
    }

    [Fact]
    public void Configure_Deployment_RunsMetricsServerWithK3sArguments()
    {
        var deployment = Parse(Render()).Get("Deployment", "metrics-server");
        var container = At(deployment, "spec", "template", "spec", "containers", 0);

        Assert.Equal(MetricsServerPlugin.DefaultImage, Scalar(container, "image"));
        Assert.Equal(MetricsServerManifest.Args, Scalars(container, "args"));
        Assert.Contains("--secure-port=10250", Scalars(container, "args"));
        Assert.Contains("--kubelet-use-node-status-port", Scalars(container, "args"));
        Assert.DoesNotContain("--kubelet-insecure-tls", Scalars(container, "args"));
        Assert.Equal("10250", Scalar(container, "ports", 0, "containerPort"));
        Assert.Equal("https", Scalar(container, "ports", 0, "name"));
        Assert.Equal("/tmp", Scalar(container, "volumeMounts", 0, "mountPath"));
        Assert.Equal("metrics-server", Scalar(deployment, "spec", "template", "spec", "serviceAccountName"));
    }

    [Fact]
    public void Configure_Options_ReplaceTheImageAndSkipKubeletVerification()
    {
        var container = At(Parse(Render(new() { ["image"] = "mirror.local/metrics-server:v0.7.0", ["kubelet-insecure-tls"] = "true" }))
            .Get("Deployment", "metrics-server"), "spec", "template", "spec", "containers", 0);

        Assert.Equal("mirror.local/metrics-server:v0.7.0", Scalar(container, "image"));
        Assert.Equal("--kubelet-insecure-tls", Scalars(container, "args")[^1]);
    }

    [Fact]
    public void Configure_SystemDefaultRegistry_TakesTheDefaultImageFromIt()
    {
        var container = At(Parse(Render(new() { ["image"] = MetricsServerPlugin.DefaultImage }, "mirror.corp/k3s")).Get("Deployment", "metrics-server"),
            "spec", "template", "spec", "containers", 0);

        Assert.Equal("mirror.corp/k3s/rancher/mirrored-metrics-server:v0.6.4", Scalar(container, "image"));
    }

    [Fact]
    public void Configure_ImageOptionAndSystemDefaultRegistry_TheImageOptionWins()
    {
        var container = At(Parse(Render(new() { ["image"] = "mirror.local/metrics-server:v0.7.0" }, "registry.local:5000")).Get("Deployment", "metrics-server"),
            "spec", "template", "spec", "containers", 0);

        Assert.Equal("mirror.local/metrics-server:v0.7.0", Scalar(container, "image"));
    }

    [Fact]
    public void Configure_SameSettings_SameBytes()
    {
        Assert.Equal(Render(), Render());
    }
}
