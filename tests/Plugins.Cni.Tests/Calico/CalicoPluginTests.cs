using Coracle.Plugins;
using Coracle.Plugins.Cni.Calico;
using Coracle.Plugins.Cni.Tests.Support;
using Xunit;
using YamlDotNet.RepresentationModel;

namespace Coracle.Plugins.Cni.Tests.Calico;

public sealed class CalicoPluginTests : IDisposable
{
    private readonly TempDir _dir = new("calico");

    private static List<YamlMappingNode> Documents(string yaml)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(yaml));
        return stream.Documents.Select(d => (YamlMappingNode)d.RootNode).ToList();
    }

    private static YamlNode At(YamlNode node, params object[] path)
    {
        foreach (var step in path)
        {
            node = step is int index ? ((YamlSequenceNode)node).Children[index] : ((YamlMappingNode)node).Children[new YamlScalarNode((string)step)];
        }

        return node;
    }

    private static string Scalar(YamlNode node, params object[] path) => ((YamlScalarNode)At(node, path)).Value!;

    [Fact]
    public void Configure_Defaults_WritesOperatorAndInstallationAndReturnsCalicoCniDirs()
    {
        var context = new FakePluginContext(FakePluginContext.Settings(_dir.Path) with { NodeIps = ["192.168.1.5"] });
        var cni = new CalicoPlugin().Configure(context);

        Assert.Equal(new CniSettings("/opt/cni/bin", "/etc/cni/net.d"), cni);
        var installation = Documents(context.Manifests.Written["calico-installation.yaml"]);
        var install = installation[0];
        Assert.Equal("operator.tigera.io/v1", Scalar(install, "apiVersion"));
        Assert.Equal("Installation", Scalar(install, "kind"));
        Assert.Equal("default", Scalar(install, "metadata", "name"));
        Assert.Equal("Calico", Scalar(install, "spec", "cni", "type"));
        Assert.Equal("Disabled", Scalar(install, "spec", "calicoNetwork", "bgp"));
        Assert.Equal("1450", Scalar(install, "spec", "calicoNetwork", "mtu"));
        Assert.Equal("NodeInternalIP", Scalar(install, "spec", "calicoNetwork", "nodeAddressAutodetectionV4", "kubernetes"));
        Assert.Equal("10.42.0.0/16", Scalar(install, "spec", "calicoNetwork", "ipPools", 0, "cidr"));
        Assert.Equal("VXLAN", Scalar(install, "spec", "calicoNetwork", "ipPools", 0, "encapsulation"));
        Assert.Equal("Enabled", Scalar(install, "spec", "calicoNetwork", "ipPools", 0, "natOutgoing"));
        Assert.Equal("26", Scalar(install, "spec", "calicoNetwork", "ipPools", 0, "blockSize"));
        Assert.Equal("APIServer", Scalar(installation[1], "kind"));

        var operatorDocs = Documents(context.Manifests.Written["calico-operator.yaml"]);
        Assert.Equal(["Namespace", "CustomResourceDefinition", "CustomResourceDefinition", "CustomResourceDefinition", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Deployment"],
            operatorDocs.Select(d => Scalar(d, "kind")).ToArray());
        Assert.Equal("installations.operator.tigera.io", Scalar(operatorDocs[1], "metadata", "name"));
        var deployment = operatorDocs[^1];
        Assert.Equal("tigera-operator", Scalar(deployment, "metadata", "namespace"));
        Assert.Equal(CalicoSettings.DefaultOperatorImage, Scalar(deployment, "spec", "template", "spec", "containers", 0, "image"));
        Assert.Equal("true", Scalar(deployment, "spec", "template", "spec", "hostNetwork"));
    }

    [Fact]
    public void Configure_IpipWithInterfaceAndOptions_RendersThem()
    {
        var node = FakePluginContext.Settings(_dir.Path) with { ClusterCidr = "10.60.0.0/16" };
        var context = new FakePluginContext(node, new Dictionary<string, string>
        {
            ["iface"] = "eth1", ["encapsulation"] = "ipip", ["mtu"] = "1400", ["bin-dir"] = "/var/lib/coracle/cni/bin", ["conf-dir"] = "/var/lib/coracle/cni/net.d",
        });
        var cni = new CalicoPlugin().Configure(context);

        Assert.Equal(new CniSettings("/var/lib/coracle/cni/bin", "/var/lib/coracle/cni/net.d"), cni);
        var install = Documents(context.Manifests.Written["calico-installation.yaml"])[0];
        Assert.Equal("Enabled", Scalar(install, "spec", "calicoNetwork", "bgp"));
        Assert.Equal("1400", Scalar(install, "spec", "calicoNetwork", "mtu"));
        Assert.Equal("eth1", Scalar(install, "spec", "calicoNetwork", "nodeAddressAutodetectionV4", "interface"));
        Assert.Equal("10.60.0.0/16", Scalar(install, "spec", "calicoNetwork", "ipPools", 0, "cidr"));
        Assert.Equal("IPIP", Scalar(install, "spec", "calicoNetwork", "ipPools", 0, "encapsulation"));
    }

    [Fact]
    public void Configure_UnknownEncapsulation_ThrowsNamingTheKey()
    {
        var context = new FakePluginContext(FakePluginContext.Settings(_dir.Path), new Dictionary<string, string> { ["encapsulation"] = "gre" });
        var e = Assert.Throws<PluginConfigException>(() => new CalicoPlugin().Configure(context));
        Assert.Equal("encapsulation", e.Key);
        Assert.Equal("encapsulation \"gre\" is not supported; use one of: VXLAN, IPIP, None", e.Message);
        Assert.Empty(context.Manifests.Written);
    }

    [Fact]
    public void Metadata_ConflictsWithFlannel()
    {
        var attribute = (CoraclePluginAttribute)Attribute.GetCustomAttribute(typeof(CalicoPlugin), typeof(CoraclePluginAttribute))!;
        Assert.Equal("calico", attribute.Name);
        Assert.True(attribute.Implemented);
        Assert.Equal(["flannel"], attribute.Conflicts);
    }

    public void Dispose() => _dir.Dispose();
}
