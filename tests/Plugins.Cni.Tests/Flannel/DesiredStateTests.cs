using System.Net;
using Coracle.Plugins.Cni.Flannel;
using Xunit;

namespace Coracle.Plugins.Cni.Tests.Flannel;

public sealed class DesiredStateTests
{
    private static readonly Uplink Eth0 = new("eth0", IPAddress.Parse("192.168.77.1"), 24, 1500);
    private static readonly Ipv4Cidr Local = Ipv4Cidr.Parse("10.42.1.0/24");

    private static FlannelSettings Settings(string backend) => new()
    {
        NodeName = "h1",
        Backend = backend,
        Network = Ipv4Cidr.Parse("10.42.0.0/16"),
        Kubeconfig = "/k",
        ConfDir = "/c",
        BinDir = "/b",
    };

    private static PeerLease Peer(int i, string ip) =>
        new($"h{i}", IPAddress.Parse(ip), Ipv4Cidr.Parse($"10.42.{i}.0/24"), $"02:00:00:00:0{i}:01");

    [Fact]
    public void Build_Vxlan_RendersFlannelRouteNeighbourAndFdbCommands()
    {
        var state = DesiredState.Build(Settings("vxlan"), Local, Eth0, [Peer(2, "192.168.77.2")]);
        var commands = state.Plan(ObservedState.Empty).Select(c => c.ToString()).ToList();
        Assert.Equal(
        [
            "ip route replace 10.42.2.0/24 via 10.42.2.0 dev flannel.1 onlink",
            "ip neigh replace 10.42.2.0 lladdr 02:00:00:00:02:01 dev flannel.1 nud permanent",
            "bridge fdb replace 02:00:00:00:02:01 dev flannel.1 dst 192.168.77.2 self permanent",
        ], commands);
    }

    [Fact]
    public void Build_HostGw_RoutesViaThePeersPublicIp()
    {
        var state = DesiredState.Build(Settings("host-gw"), Local, Eth0, [Peer(2, "192.168.77.2")]);
        Assert.Equal("ip route replace 10.42.2.0/24 via 192.168.77.2 dev eth0", Assert.Single(state.Plan(ObservedState.Empty)).ToString());
    }

    [Fact]
    public void Build_HostGwPeerOffTheSegment_RefusedWithTheReason()
    {
        var state = DesiredState.Build(Settings("host-gw"), Local, Eth0, [Peer(3, "10.9.0.3")]);
        Assert.Empty(state.Routes);
        Assert.Equal("host-gw needs every node on one L2 segment: public ip 10.9.0.3 is not on eth0's network 192.168.77.0/24; use the vxlan backend",
            state.Refused["h3"]);
    }

    [Fact]
    public void Plan_StaleAndMissingEntries_DeletesAndReplacesOnlyThose()
    {
        var state = DesiredState.Build(Settings("vxlan"), Local, Eth0, [Peer(2, "192.168.77.2")]);
        var stale = DesiredState.Build(Settings("vxlan"), Local, Eth0, [Peer(3, "192.168.77.3")]);
        var observed = new ObservedState([.. state.Routes, .. stale.Routes], state.Neighbors, [.. state.Fdb, .. stale.Fdb]);
        var commands = state.Plan(observed).Select(c => c.ToString()).ToList();
        Assert.Equal(
        [
            "ip route del 10.42.3.0/24 dev flannel.1",
            "bridge fdb del 02:00:00:00:03:01 dev flannel.1 dst 192.168.77.3 self",
        ], commands);
    }

    [Fact]
    public void ParseRoutes_IpJsonOutput_KeepsOnlyClusterRoutesWithGateway()
    {
        const string json = """[{"dst":"10.42.2.0/24","gateway":"10.42.2.0","flags":["onlink"]},{"dst":"192.168.5.0/24","protocol":"kernel","scope":"link"},{"dst":"10.42.1.0/24","gateway":"1.1.1.1","flags":[]}]""";
        var route = Assert.Single(ObservedState.ParseRoutes(json, "flannel.1", Ipv4Cidr.Parse("10.42.0.0/16"), Local));
        Assert.Equal(new RouteEntry(Ipv4Cidr.Parse("10.42.2.0/24"), IPAddress.Parse("10.42.2.0"), "flannel.1", true), route);
    }

    [Fact]
    public void ParseNeighborsAndFdb_IpJsonOutput_ReadsPermanentRemoteEntries()
    {
        var neighbor = Assert.Single(ObservedState.ParseNeighbors("""[{"dst":"10.42.2.0","lladdr":"02:00:00:00:02:01","state":["PERMANENT"]},{"dst":"10.42.9.0","lladdr":"02:00:00:00:09:01","state":["STALE"]}]""", "flannel.1"));
        Assert.Equal("10.42.2.0", neighbor.Address.ToString());
        var fdb = Assert.Single(ObservedState.ParseFdb("""[{"mac":"02:00:00:00:02:01","dst":"192.168.5.2","flags":["self"],"state":"permanent"},{"mac":"8e:34:78:46:0c:42","flags":["self"],"state":"permanent"}]""", "flannel.1"));
        Assert.Equal(new FdbEntry("02:00:00:00:02:01", IPAddress.Parse("192.168.5.2"), "flannel.1"), fdb);
    }

    [Fact]
    public void VxlanAdd_Uplink_RendersFlannelDevice()
    {
        Assert.Equal("ip link add flannel.1 type vxlan id 1 local 192.168.77.1 dev eth0 dstport 8472 nolearning",
            FlannelDataPlane.VxlanAdd("flannel.1", Eth0, 1, 8472).ToString());
    }

    [Fact]
    public void Describe_Peers_ListsSubnetBackendAndPeers()
    {
        Assert.Equal("subnet 10.42.1.0/24, backend vxlan, peers: h2 10.42.2.0/24 via 192.168.77.2, h3 10.42.3.0/24 refused (no)",
            FlannelDataPlane.Describe("vxlan", Local, [Peer(3, "192.168.77.3"), Peer(2, "192.168.77.2")], new Dictionary<string, string> { ["h3"] = "no" }));
    }
}
