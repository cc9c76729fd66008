using System.Net;
using System.Text.Json;
using Coracle.Plugins.Cni.Flannel;
using Xunit;

namespace Coracle.Plugins.Cni.Tests.Flannel;

public sealed class FlannelFilesTests
{
    [Fact]
    public void SubnetEnv_Render_WritesFlannelsFourVariables()
    {
        Assert.Equal("FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.3.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n",
            SubnetEnv.Render(Ipv4Cidr.Parse("10.42.0.0/16"), Ipv4Cidr.Parse("10.42.3.0/24"), 1450, true));
    }

    [Fact]
    public void CniConflist_Render_BridgeCni0HostLocalOverTheSubnetThenPortmap()
    {
        using var doc = JsonDocument.Parse(CniConflist.Render(Ipv4Cidr.Parse("10.42.3.0/24"), 1450, "/var/lib/x"));
        var root = doc.RootElement;
        Assert.Equal("1.0.0", root.GetProperty("cniVersion").GetString());
        Assert.Equal("cbr0", root.GetProperty("name").GetString());
        var bridge = root.GetProperty("plugins")[0];
        Assert.Equal("bridge", bridge.GetProperty("type").GetString());
        Assert.Equal("cni0", bridge.GetProperty("bridge").GetString());
        Assert.True(bridge.GetProperty("isGateway").GetBoolean());
        Assert.True(bridge.GetProperty("isDefaultGateway").GetBoolean());
        Assert.True(bridge.GetProperty("hairpinMode").GetBoolean());
        Assert.False(bridge.GetProperty("ipMasq").GetBoolean());
        Assert.Equal(1450, bridge.GetProperty("mtu").GetInt32());
        var ipam = bridge.GetProperty("ipam");
        Assert.Equal("host-local", ipam.GetProperty("type").GetString());
        Assert.Equal("10.42.3.0/24", ipam.GetProperty("ranges")[0][0].GetProperty("subnet").GetString());
        Assert.Equal("10.42.3.1", ipam.GetProperty("ranges")[0][0].GetProperty("gateway").GetString());
        Assert.Equal("/var/lib/x", ipam.GetProperty("dataDir").GetString());
        var portmap = root.GetProperty("plugins")[1];
        Assert.Equal("portmap", portmap.GetProperty("type").GetString());
        Assert.True(portmap.GetProperty("capabilities").GetProperty("portMappings").GetBoolean());
    }

    [Fact]
    public void Annotations_Vxlan_SpelledAsFlannelDoes()
    {
        var annotations = FlannelAnnotations.For(new LocalAttributes(IPAddress.Parse("192.168.1.5"), "vxlan", "02:aa:bb:cc:dd:ee"));
        Assert.Equal("vxlan", annotations["flannel.alpha.coreos.com/backend-type"]);
        Assert.Equal("{\"VNI\":1,\"VtepMAC\":\"02:aa:bb:cc:dd:ee\"}", annotations["flannel.alpha.coreos.com/backend-data"]);
        Assert.Equal("192.168.1.5", annotations["flannel.alpha.coreos.com/public-ip"]);
        Assert.Equal("true", annotations["flannel.alpha.coreos.com/kube-subnet-manager"]);
        Assert.Equal("null", FlannelAnnotations.RenderBackendData(new LocalAttributes(IPAddress.Parse("192.168.1.5"), "host-gw", null)));
    }

    [Fact]
    public void ParsePeer_AnnotatedNode_ReturnsLease()
    {
        var annotations = FlannelAnnotations.For(new LocalAttributes(IPAddress.Parse("192.168.1.6"), "vxlan", "02:aa:bb:cc:dd:ee"));
        var peer = FlannelAnnotations.ParsePeer("n2", "10.42.7.0/24", annotations, out _);
        Assert.Equal(new PeerLease("n2", IPAddress.Parse("192.168.1.6"), Ipv4Cidr.Parse("10.42.7.0/24"), "02:aa:bb:cc:dd:ee", "vxlan"), peer);
        Assert.Null(FlannelAnnotations.ParsePeer("n3", "10.42.8.0/24", new Dictionary<string, string>(), out var reason));
        Assert.Equal("flannel annotations not published yet", reason);
    }

    [Fact]
    public void Masquerade_Rules_RenderAsIptablesPrintsThem()
    {
        Assert.Equal(
        [
            "-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment \"flanneld masq\" -j RETURN",
            "-A FLANNEL-POSTRTG -s 10.42.1.0/24 -d 10.42.0.0/16 -m comment --comment \"flanneld masq\" -j RETURN",
            "-A FLANNEL-POSTRTG -s 10.42.0.0/16 -d 10.42.1.0/24 -m comment --comment \"flanneld masq\" -j RETURN",
            "-A FLANNEL-POSTRTG ! -s 10.42.0.0/16 -d 10.42.1.0/24 -m comment --comment \"flanneld masq\" -j RETURN",
            "-A FLANNEL-POSTRTG -s 10.42.0.0/16 ! -d 224.0.0.0/4 -m comment --comment \"flanneld masq\" -j MASQUERADE --random-fully",
            "-A FLANNEL-POSTRTG ! -s 10.42.0.0/16 -d 10.42.0.0/16 -m comment --comment \"flanneld masq\" -j MASQUERADE --random-fully",
        ], Masquerade.Render(Masquerade.NatChain, Masquerade.NatRules(Ipv4Cidr.Parse("10.42.0.0/16"), Ipv4Cidr.Parse("10.42.1.0/24"))));
    }

    [Fact]
    public void StaticPeersFile_BadPeerIp_NamesFileAndField()
    {
        var e = Assert.Throws<FormatException>(() => StaticPeersFile.Parse("""{"subnet":"10.42.1.0/24","peers":[{"name":"h2","public-ip":"x","subnet":"10.42.2.0/24"}]}""", "peers.json"));
        Assert.Equal("peers.json: peers[0]: \"public-ip\" \"x\" is not an IPv4 address", e.Message);
    }

    [Fact]
    public void VtepMac_Derive_StableLocallyAdministeredUnicast()
    {
        var mac = VtepMac.Derive("node-a");
        Assert.Equal(mac, VtepMac.Derive("node-a"));
        Assert.NotEqual(mac, VtepMac.Derive("node-b"));
        Assert.True(VtepMac.IsValid(mac));
        Assert.Equal(0x02, Convert.ToByte(mac[..2], 16) & 0x03);
    }
}
