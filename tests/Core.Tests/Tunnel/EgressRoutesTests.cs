using System.Net;
using Coracle.Core.Tunnel;

namespace Coracle.Core.Tests.Tunnel;

/// <summary>The routing rule of the egress proxy, table → route, in each egress selector mode.</summary>
public sealed class EgressRoutesTests
{
    private const string Server = "srv";

    // srv (this server): 10.0.0.1, pods 10.42.0.0/24; agt: 10.0.0.2, pods 10.42.1.0/24.
    private static readonly EgressTable Table = EgressTable.Build(
        [
            new NodeEntry(Server, [IPAddress.Parse("10.0.0.1")], [IPNetwork.Parse("10.42.0.0/24")]),
            new NodeEntry("agt", [IPAddress.Parse("10.0.0.2"), IPAddress.Parse("198.51.100.2")], [IPNetwork.Parse("10.42.1.0/24")]),
        ],
        [
            new ServiceEntry("kube-system", "metrics-server", [IPAddress.Parse("10.43.0.50")], [new ServiceEntry.Port("https", 443)]),
            new ServiceEntry("default", "empty", [IPAddress.Parse("10.43.0.60")], [new ServiceEntry.Port("", 80)]),
        ],
        [
            new EndpointSliceEntry("kube-system", "metrics-server-abc", "metrics-server", [new ServiceEntry.Port("https", 10250)],
            [
                new EndpointSliceEntry.Endpoint(IPAddress.Parse("10.42.1.7"), "agt", Ready: true),
                new EndpointSliceEntry.Endpoint(IPAddress.Parse("10.42.0.9"), Server, Ready: false),
            ]),

            // A pod outside every podCIDR (a CNI with its own IPAM), placed by its EndpointSlice on agt.
            new EndpointSliceEntry("default", "other-ipam", "other", [new ServiceEntry.Port("", 8080)],
                [new EndpointSliceEntry.Endpoint(IPAddress.Parse("192.168.77.5"), "agt", Ready: true)]),
        ]);

    private static EgressRoutes Routes(EgressMode mode) => new(mode, Server, ["10.0.0.1", "localhost"]);

    private static EgressRoute Decide(EgressMode mode, string host, int port, EgressTable? table = null, string? tunnelNode = null) =>
        Routes(mode).Decide(table ?? Table, host, port, _ => tunnelNode);

    [Theory]
    [InlineData("agent")]
    [InlineData("pod")]
    [InlineData("cluster")]
    public void Decide_OtherNodeByNameOrAddress_GoesThroughItsTunnel(string mode)
    {
        foreach (var host in new[] { "agt", "10.0.0.2", "198.51.100.2" })
        {
            var route = Decide(EgressModes.Parse(mode), host, 10250);
            Assert.Equal(EgressRouteKind.Tunnel, route.Kind);
            Assert.Equal("agt", route.Node);
            Assert.Equal($"{host}:10250", route.Target);
        }
    }

    [Theory]
    [InlineData("srv", "srv:10250")]
    [InlineData("10.0.0.1", "10.0.0.1:10250")]
    [InlineData("127.0.0.1", "127.0.0.1:10250")]
    [InlineData("localhost", "localhost:10250")]
    [InlineData("[::1]", "[::1]:10250")]
    public void Decide_ThisServerOrLoopback_DialsDirectly(string host, string target)
    {
        var route = Decide(EgressMode.Pod, host, 10250);
        Assert.Equal(EgressRouteKind.Direct, route.Kind);
        Assert.Equal(target, route.Target);
    }

    [Fact]
    public void Decide_NodeKnownOnlyByItsTunnel_GoesThroughTheTunnelBeforeTheFirstList()
    {
        var route = Decide(EgressMode.Agent, "10.0.0.3", 10250, EgressTable.Empty, tunnelNode: "new-agent");
        Assert.Equal(EgressRouteKind.Tunnel, route.Kind);
        Assert.Equal("new-agent", route.Node);
    }

    [Theory]
    [InlineData("10.99.99.99")]
    [InlineData("not-connected")]
    public void Decide_UnknownHostBeforeTheFirstList_IsNoTunnel502(string host)
    {
        var route = Decide(EgressMode.Cluster, host, 10250, EgressTable.Empty);
        Assert.Equal(EgressRouteKind.Refuse, route.Kind);
        Assert.Equal(502, route.Status);
        Assert.Equal($"no tunnel to {host}: the node is not connected", route.Reason);
    }

    [Fact]
    public void Decide_PodOfAnotherNodeInAgentMode_DialsDirectlyFromThisServer()
    {
        var route = Decide(EgressMode.Agent, "10.42.1.7", 10250);
        Assert.Equal(EgressRouteKind.Direct, route.Kind);
        Assert.Equal("10.42.1.7:10250", route.Target);
    }

    [Theory]
    [InlineData("pod")]
    [InlineData("cluster")]
    public void Decide_PodOfAnotherNodeInPodOrClusterMode_GoesThroughTheTunnelOfTheNodeWhosePodCidrHoldsIt(string mode)
    {
        var route = Decide(EgressModes.Parse(mode), "10.42.1.200", 443);
        Assert.Equal(EgressRouteKind.Tunnel, route.Kind);
        Assert.Equal("agt", route.Node);
        Assert.Equal("10.42.1.200:443", route.Target);
    }

    [Theory]
    [InlineData("pod")]
    [InlineData("cluster")]
    public void Decide_PodOfThisServersNode_DialsDirectly(string mode)
    {
        var route = Decide(EgressModes.Parse(mode), "10.42.0.9", 10250);
        Assert.Equal(EgressRouteKind.Direct, route.Kind);
        Assert.Equal("10.42.0.9:10250", route.Target);
    }

    [Fact]
    public void Decide_EndpointOutsideEveryPodCidr_ClusterModeUsesItsSliceNodePodModeDialsDirectly()
    {
        var cluster = Decide(EgressMode.Cluster, "192.168.77.5", 8080);
        Assert.Equal((EgressRouteKind.Tunnel, "agt"), (cluster.Kind, cluster.Node));
        var pod = Decide(EgressMode.Pod, "192.168.77.5", 8080);
        Assert.Equal(EgressRouteKind.Direct, pod.Kind);
    }

    [Theory]
    [InlineData("agent")]
    [InlineData("pod")]
    public void Decide_ServiceIpInAgentOrPodMode_DialsTheServiceFromThisServer(string mode)
    {
        var route = Decide(EgressModes.Parse(mode), "10.43.0.50", 443);
        Assert.Equal(EgressRouteKind.Direct, route.Kind);
        Assert.Equal("10.43.0.50:443", route.Target);
    }

    [Fact]
    public void Decide_ServiceIpInClusterMode_ResolvesToTheReadyEndpointAndItsNodesTunnel()
    {
        // Only 10.42.1.7 is ready; the service port 443 is the slice's port "https", 10250.
        for (var i = 0; i < 3; i++)
        {
            var route = Decide(EgressMode.Cluster, "10.43.0.50", 443);
            Assert.Equal(EgressRouteKind.Tunnel, route.Kind);
            Assert.Equal("agt", route.Node);
            Assert.Equal("10.42.1.7:10250", route.Target);
        }
    }

    [Fact]
    public void Decide_ServiceWithoutReadyEndpointInClusterMode_Is503()
    {
        var route = Decide(EgressMode.Cluster, "10.43.0.60", 80);
        Assert.Equal((EgressRouteKind.Refuse, 503), (route.Kind, route.Status));
        Assert.Equal("service default/empty port 80 has no ready endpoint", route.Reason);
    }

    [Theory]
    [InlineData("agent")]
    [InlineData("cluster")]
    public void Decide_ServiceIpOnAPortItDoesNotServe_IsForbidden(string mode)
    {
        var route = Decide(EgressModes.Parse(mode), "10.43.0.50", 22);
        Assert.Equal((EgressRouteKind.Refuse, 403), (route.Kind, route.Status));
        Assert.Equal("service kube-system/metrics-server has no TCP port 22", route.Reason);
    }

    [Theory]
    [InlineData("agent", "192.0.2.10")]
    [InlineData("pod", "10.42.200.1")]
    [InlineData("cluster", "10.43.0.99")]
    [InlineData("cluster", "8.8.8.8")]
    public void Decide_NeitherNodePodNorService_IsForbidden(string mode, string host)
    {
        var route = Decide(EgressModes.Parse(mode), host, 443);
        Assert.Equal((EgressRouteKind.Refuse, 403), (route.Kind, route.Status));
        Assert.Equal($"{host} is neither a node, a pod (no node's podCIDR holds it) nor a service cluster IP of this cluster", route.Reason);
    }

    [Fact]
    public void Decide_HostNameThatIsNoNode_IsForbidden()
    {
        var route = Decide(EgressMode.Agent, "example.com", 443);
        Assert.Equal((EgressRouteKind.Refuse, 403), (route.Kind, route.Status));
        Assert.Equal("example.com is not a node of this cluster; the egress proxy reaches nodes, pods and services only", route.Reason);
    }

    [Fact]
    public void Decide_MoreSpecificPodCidr_Wins()
    {
        var table = EgressTable.Build(
            [
                new NodeEntry("wide", [IPAddress.Parse("10.0.0.5")], [IPNetwork.Parse("10.42.0.0/16")]),
                new NodeEntry("narrow", [IPAddress.Parse("10.0.0.6")], [IPNetwork.Parse("10.42.9.0/24")]),
            ],
            [],
            []);
        Assert.Equal("narrow", Decide(EgressMode.Pod, "10.42.9.3", 80, table).Node);
        Assert.Equal("wide", Decide(EgressMode.Pod, "10.42.8.3", 80, table).Node);
    }
}
