using Coracle.Plugins.Addon.CoreDns;
using Coracle.Plugins.Addons.Tests.Support;
using static Coracle.Plugins.Addons.Tests.Support.Manifest;

namespace Coracle.Plugins.Addons.Tests.CoreDns;

public sealed class CoreDnsPluginTests : IDisposable
{
    private readonly TempDir _temp = new("coracle-coredns");

    public void Dispose() => _temp.Dispose();

    private NodeSettings Node => FakePluginContext.Settings(_temp.Path) with
    {
        ServiceCidr = "10.55.0.0/16",
        ClusterDns = "10.55.0.53",
        ClusterDomain = "corp.internal",
        NodeIps = ["192.168.50.10"],
        NodeName = "node-a",
    };

    private string Render(Dictionary<string, string>? options = null, string registry = "")
    {
        var context = new FakePluginContext(Node with { SystemDefaultRegistry = registry }, options, plugin: typeof(CoreDnsPlugin));
        new CoreDnsPlugin().Configure(context);
        return Assert.Single(context.Manifests.Written, w => w.Key == "coredns.yaml").Value;
    }

    [Fact]
    public void Export_IsTheCorednsAddonWithK3sImage()
    {
        Assert.Equal("coredns", Export(typeof(CoreDnsPlugin)).Name);
        Assert.Equal(ExtensionPoints.Addon, Export(typeof(CoreDnsPlugin)).ExtensionPoint);
        Assert.Equal("docker.io/rancher/mirrored-coredns-coredns:1.10.1", DeclaredDefault(typeof(CoreDnsPlugin), "image"));
        Assert.Equal(CoreDnsPlugin.DefaultImage, DeclaredDefault(typeof(CoreDnsPlugin), "image"));
    }

    [Fact]
    public void Configure_Defaults_WritesK3sObjectsThatParse()
    {
        var manifest = Parse(Render());

        Assert.Equal(["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap", "Deployment", "Service"], manifest.Kinds);
        var role = manifest.Get("ClusterRole", "system:coredns");
        Assert.Equal(["endpoints", "services", "pods", "namespaces"], Scalars(role, "rules", 0, "resources"));
        Assert.Equal(["endpointslices"], Scalars(role, "rules", 1, "resources"));
        var binding = manifest.Get("ClusterRoleBinding", "system:coredns");
        Assert.Equal("coredns", Scalar(binding, "subjects", 0, "name"));
        Assert.Equal("kube-system", Scalar(binding, "subjects", 0, "namespace"));
    }

    [Fact]
    public void Configure_Service_IsKubeDnsAtTheClusterDnsAddress()
    {
        var service = Parse(Render()).Get("Service", "kube-dns");

        Assert.Equal("kube-system", Scalar(service, "metadata", "namespace"));
        Assert.Equal("10.55.0.53", Scalar(service, "spec", "clusterIP"));
        Assert.Equal(["10.55.0.53"], Scalars(service, "spec", "clusterIPs"));
        Assert.Equal("kube-dns", Scalar(service, "metadata", "labels", "k8s-app"));
        Assert.Equal("kube-dns", Scalar(service, "spec", "selector", "k8s-app"));
        Assert.Equal(["53/UDP", "53/TCP", "9153/TCP"], ((YamlDotNet.RepresentationModel.YamlSequenceNode)At(service, "spec", "ports")).Children
            .Select(p => $"{Scalar(p, "port")}/{Scalar(p, "protocol")}"));
    }

    [Fact]
    public void Configure_Corefile_ServesTheClusterDomainAndImportsCustomConfig()
    {
        var config = Parse(Render()).Get("ConfigMap", "coredns");
        var corefile = Scalar(config, "data", "Corefile");

        Assert.Equal(CoreDnsManifest.Corefile("corp.internal"), corefile);
        Assert.Contains("    kubernetes corp.internal in-addr.arpa ip6.arpa {\n      pods insecure\n      fallthrough in-addr.arpa ip6.arpa\n    }\n", corefile, StringComparison.Ordinal);
        Assert.Contains("    hosts /etc/coredns/NodeHosts {\n      ttl 60\n      reload 15s\n      fallthrough\n    }\n", corefile, StringComparison.Ordinal);
        foreach (var line in new[] { "errors", "health", "ready", "prometheus :9153", "forward . /etc/resolv.conf", "cache 30", "loop", "reload", "loadbalance", "import /etc/coredns/custom/*.override" })
        {
            Assert.Contains($"\n    {line}\n", corefile, StringComparison.Ordinal);
        }

        Assert.EndsWith("}\nimport /etc/coredns/custom/*.server\n", corefile, StringComparison.Ordinal);
        Assert.Equal("192.168.50.10 node-a\n", Scalar(config, "data", "NodeHosts"));
    }

    [Fact]
    public void Configure_Deployment_RunsCorednsAsK3sDoes()
    {
        var deployment = Parse(Render()).Get("Deployment", "coredns");
        var pod = At(deployment, "spec", "template", "spec");
        var container = At(pod, "containers", 0);

        Assert.Equal("kube-system", Scalar(deployment, "metadata", "namespace"));
        Assert.Equal(CoreDnsPlugin.DefaultImage, Scalar(container, "image"));
        Assert.Equal(["-conf", "/etc/coredns/Corefile"], Scalars(container, "args"));
        Assert.Equal("Default", Scalar(pod, "dnsPolicy"));
        Assert.Equal("system-cluster-critical", Scalar(pod, "priorityClassName"));
        Assert.Equal("/ready", Scalar(container, "readinessProbe", "httpGet", "path"));
        Assert.Equal("8181", Scalar(container, "readinessProbe", "httpGet", "port"));
        Assert.Equal("/health", Scalar(container, "livenessProbe", "httpGet", "path"));
        Assert.Equal("8080", Scalar(container, "livenessProbe", "httpGet", "port"));
        Assert.Contains("node-role.kubernetes.io/control-plane", ((YamlDotNet.RepresentationModel.YamlSequenceNode)At(pod, "tolerations")).Children.Select(t => Scalar(t, "key")));
        Assert.Equal("coredns-custom", Scalar(pod, "volumes", 1, "configMap", "name"));
        Assert.Equal("true", Scalar(pod, "volumes", 1, "configMap", "optional"));
        Assert.Equal("/etc/coredns/custom", Scalar(container, "volumeMounts", 1, "mountPath"));
    }

    [Fact]
    public void Configure_ImageOption_ReplacesTheImage()
    {
        var deployment = Parse(Render(new() { ["image"] = "registry.local:5000/coredns/coredns:1.11.1" })).Get("Deployment", "coredns");

        Assert.Equal("registry.local:5000/coredns/coredns:1.11.1", Scalar(deployment, "spec", "template", "spec", "containers", 0, "image"));
    }

    [Fact]
    public void Configure_SystemDefaultRegistry_TakesTheDefaultImageFromIt()
    {
        var fromDefault = Parse(Render(registry: "registry.local:5000")).Get("Deployment", "coredns");
        var fromHostOptions = Parse(Render(new() { ["image"] = CoreDnsPlugin.DefaultImage }, "registry.local:5000")).Get("Deployment", "coredns");

        Assert.Equal("registry.local:5000/rancher/mirrored-coredns-coredns:1.10.1", Scalar(fromDefault, "spec", "template", "spec", "containers", 0, "image"));
        Assert.Equal("registry.local:5000/rancher/mirrored-coredns-coredns:1.10.1", Scalar(fromHostOptions, "spec", "template", "spec", "containers", 0, "image"));
    }

    [Fact]
    public void Configure_ImageOptionAndSystemDefaultRegistry_TheImageOptionWins()
    {
        var deployment = Parse(Render(new() { ["image"] = "other.local/coredns:1.11.1" }, "registry.local:5000")).Get("Deployment", "coredns");

        Assert.Equal("other.local/coredns:1.11.1", Scalar(deployment, "spec", "template", "spec", "containers", 0, "image"));
    }

    [Fact]
    public void Configure_SameSettings_SameBytes()
    {
        Assert.Equal(Render(), Render());
    }

    [Fact]
    public void Configure_NoNodeIp_LeavesNodeHostsEmpty()
    {
        var yaml = CoreDnsManifest.Render(Node with { NodeIps = [] }, CoreDnsPlugin.DefaultImage);

        Assert.Equal("", Scalar(Parse(yaml).Get("ConfigMap", "coredns"), "data", "NodeHosts"));
    }

    [Theory]
    [InlineData("")]
    [InlineData("coredns coredns")]
    public void ValidateOptions_BadImage_NamesTheKey(string image)
    {
        var ex = Assert.Throws<PluginConfigException>(() => new CoreDnsPlugin().ValidateOptions(Node, new Dictionary<string, string> { ["image"] = image }, _temp.Path));

        Assert.Equal("image", ex.Key);
        Assert.Equal($"'{image}' is not an image reference; give REPOSITORY:TAG, for example docker.io/rancher/mirrored-coredns-coredns:1.10.1", ex.Message);
    }
}
