using Coracle.Plugins;
using Coracle.Plugins.Cni.Flannel;
using Coracle.Plugins.Cni.Tests.Support;
using Xunit;

namespace Coracle.Plugins.Cni.Tests.Flannel;

public sealed class FlannelSettingsTests : IDisposable
{
    private readonly TempDir _dir = new("flset");

    private string SysNet()
    {
        Directory.CreateDirectory(_dir.Combine("net", "eth0"));
        Directory.CreateDirectory(_dir.Combine("net", "lo"));
        return _dir.Combine("net");
    }

    private string _backend = "vxlan";
    private string _iface = "";

    /// <summary>The node settings; <paramref name="backend"/> and <paramref name="iface"/> are the plugin's own settings, added to the options by <see cref="Resolve"/>.</summary>
    private NodeSettings Node(string cidr = "10.42.0.0/16", string backend = "vxlan", string iface = "")
    {
        _backend = backend;
        _iface = iface;
        return FakePluginContext.Settings(_dir.Path) with { ClusterCidr = cidr };
    }

    /// <summary>Resolves as the host calls it: the declared settings backend and iface always present.</summary>
    private FlannelSettings Resolve(NodeSettings node, IReadOnlyDictionary<string, string> options, string sysClassNet = "/sys/class/net", IReadOnlyList<string>? cniBinCandidates = null)
    {
        var all = new Dictionary<string, string>(options, StringComparer.OrdinalIgnoreCase);
        all.TryAdd("backend", _backend);
        all.TryAdd("iface", _iface);
        return FlannelSettings.Resolve(node, all, sysClassNet, cniBinCandidates);
    }

    [Fact]
    public void Resolve_ClusterCidrTooSmallForASlash24_ThrowsNamingClusterCidr()
    {
        var e = Assert.Throws<PluginConfigException>(() => Resolve(Node("10.42.0.0/25"), new Dictionary<string, string>(), SysNet()));
        Assert.Equal("cluster-cidr", e.Key);
        Assert.Equal("--cluster-cidr \"10.42.0.0/25\" cannot hold a /24 subnet per node; use a prefix of /24 or shorter (for example 10.42.0.0/16)", e.Message);
    }

    [Fact]
    public void Resolve_ClusterCidrNotCidr_ThrowsNamingClusterCidr()
    {
        var e = Assert.Throws<PluginConfigException>(() => Resolve(Node("10.42.0.1/16"), new Dictionary<string, string>(), SysNet()));
        Assert.Equal("cluster-cidr", e.Key);
        Assert.Equal("--cluster-cidr \"10.42.0.1/16\" is not an IPv4 network in CIDR form (for example 10.42.0.0/16)", e.Message);
    }

    [Fact]
    public void Resolve_UnknownBackend_ThrowsNamingFlannelBackend()
    {
        var e = Assert.Throws<PluginConfigException>(() => Resolve(Node(backend: "wireguard"), new Dictionary<string, string>(), SysNet()));
        Assert.Equal("backend", e.Key);
        Assert.Equal("--flannel-backend \"wireguard\" is not supported; use one of: vxlan, host-gw, none", e.Message);
    }

    [Fact]
    public void Resolve_InterfaceMissing_ThrowsNamingFlannelIfaceWithTheInterfaces()
    {
        var e = Assert.Throws<PluginConfigException>(() => Resolve(Node(iface: "eth9"), new Dictionary<string, string>(), SysNet()));
        Assert.Equal("iface", e.Key);
        Assert.Equal("--flannel-iface \"eth9\" does not exist on this host; interfaces: eth0, lo", e.Message);
    }

    [Fact]
    public void Resolve_UnknownOption_ThrowsListingKnownOptions()
    {
        var e = Assert.Throws<PluginConfigException>(() =>
            Resolve(Node(), new Dictionary<string, string> { ["vxlan-port"] = "1" }, SysNet()));
        Assert.Equal("vxlan-port", e.Key);
        Assert.StartsWith("unknown option \"vxlan-port\" in [plugins.flannel]; known options: backend, iface, ", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Resolve_SeveralProblems_ReportsAllKeyedByTheFirst()
    {
        var e = Assert.Throws<PluginConfigException>(() => Resolve(Node("10.42.0.0/28", "udp"), new Dictionary<string, string>(), SysNet()));
        Assert.Equal("backend", e.Key);
        Assert.Contains("; --cluster-cidr \"10.42.0.0/28\" cannot hold", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Resolve_Defaults_FollowK3sLayout()
    {
        Directory.CreateDirectory(_dir.Combine("opt", "bin"));
        File.WriteAllText(_dir.Combine("opt", "bin", "bridge"), "");
        var settings = Resolve(Node(iface: "eth0") with { NodeIps = ["192.168.1.5"] }, new Dictionary<string, string>(), SysNet(),
            [_dir.Combine("usr", "lib", "cni"), _dir.Combine("opt", "bin")]);
        Assert.Equal("vxlan", settings.Backend);
        Assert.Equal("10.42.0.0/16", settings.Network.ToString());
        Assert.Equal(Path.Combine(_dir.Path, "data", "server", "cred", "coracle-controller.kubeconfig"), settings.Kubeconfig); // the host's
        Assert.Equal(Path.Combine(_dir.Path, "data", "agent", "etc", "cni", "net.d"), settings.ConfDir);
        Assert.Equal(_dir.Combine("opt", "bin"), settings.BinDir);
        Assert.Equal("/run/flannel/subnet.env", settings.SubnetFile);
        Assert.Equal("flannel.1", settings.VxlanDevice);
        Assert.Equal(8472, settings.Port);
        Assert.Equal("192.168.1.5", settings.NodeIp!.ToString());
        Assert.True(settings.IpMasq);
    }

    [Fact]
    public void Resolve_NoKubeconfigFromHostOrOption_ThrowsNamingKubeconfig()
    {
        var e = Assert.Throws<PluginConfigException>(() => Resolve(Node() with { ControllerKubeconfig = "" }, new Dictionary<string, string>(), SysNet()));
        Assert.Equal("kubeconfig", e.Key);
        Assert.Equal("the host provides no controller kubeconfig; set kubeconfig to one allowed to list, watch and patch Nodes", e.Message);
    }

    public void Dispose() => _dir.Dispose();
}
