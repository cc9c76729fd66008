using System.Net;
using System.Text.Json;
using Coracle.Core.Tunnel;

namespace Coracle.Core.Tests.Tunnel;

/// <summary>Reading Nodes, Services and EndpointSlices as kube-apiserver serves them, and the table built from them.</summary>
public sealed class EgressTableTests
{
    private static JsonElement Json(string text)
    {
        using var doc = JsonDocument.Parse(text);
        return doc.RootElement.Clone();
    }

    [Fact]
    public void NodeFromJson_RealNodeShape_ReadsInternalAndExternalAddressesAndPodCidrs()
    {
        var node = NodeEntry.FromJson(Json("""
            {"kind":"Node","metadata":{"name":"agt","resourceVersion":"5"},
             "spec":{"podCIDR":"10.42.1.0/24","podCIDRs":["10.42.1.0/24","fd00:42:1::/64"]},
             "status":{"addresses":[{"type":"InternalIP","address":"10.0.0.2"},{"type":"Hostname","address":"agt"},{"type":"ExternalIP","address":"198.51.100.2"}]}}
            """))!;
        Assert.Equal("agt", node.Name);
        Assert.Equal([IPAddress.Parse("10.0.0.2"), IPAddress.Parse("198.51.100.2")], node.Addresses);
        Assert.Equal([IPNetwork.Parse("10.42.1.0/24"), IPNetwork.Parse("fd00:42:1::/64")], node.PodCidrs);
    }

    [Fact]
    public void NodeFromJson_NoPodCidrYet_HasNone()
    {
        var node = NodeEntry.FromJson(Json("""{"metadata":{"name":"new"},"spec":{},"status":{}}"""))!;
        Assert.Empty(node.PodCidrs);
        Assert.Empty(node.Addresses);
    }

    [Fact]
    public void ServiceFromJson_ClusterIpService_ReadsIpsAndTcpPorts()
    {
        var service = ServiceEntry.FromJson(Json("""
            {"metadata":{"name":"metrics-server","namespace":"kube-system"},
             "spec":{"clusterIP":"10.43.0.50","clusterIPs":["10.43.0.50"],"ports":[{"name":"https","port":443,"protocol":"TCP","targetPort":"https"},{"name":"dns","port":53,"protocol":"UDP"}]}}
            """))!;
        Assert.Equal("kube-system/metrics-server", service.Key);
        Assert.Equal([IPAddress.Parse("10.43.0.50")], service.ClusterIps);
        Assert.Equal([new ServiceEntry.Port("https", 443)], service.Ports);
    }

    [Theory]
    [InlineData("""{"metadata":{"name":"h","namespace":"d"},"spec":{"clusterIP":"None","ports":[{"port":80}]}}""")]
    [InlineData("""{"metadata":{"name":"e","namespace":"d"},"spec":{"type":"ExternalName","externalName":"example.com"}}""")]
    public void ServiceFromJson_HeadlessOrExternalName_IsIgnored(string json) => Assert.Null(ServiceEntry.FromJson(Json(json)));

    [Fact]
    public void EndpointSliceFromJson_ReadyMissingMeansReady_NotReadyKept()
    {
        var slice = EndpointSliceEntry.FromJson(Json("""
            {"metadata":{"name":"ms-x1","namespace":"kube-system","labels":{"kubernetes.io/service-name":"metrics-server"}},
             "addressType":"IPv4",
             "ports":[{"name":"https","port":10250,"protocol":"TCP"}],
             "endpoints":[{"addresses":["10.42.1.7"],"nodeName":"agt"},{"addresses":["10.42.0.9"],"conditions":{"ready":false},"nodeName":"srv"}]}
            """))!;
        Assert.Equal("kube-system/metrics-server", slice.ServiceKey);
        Assert.Equal(
            [new EndpointSliceEntry.Endpoint(IPAddress.Parse("10.42.1.7"), "agt", true), new EndpointSliceEntry.Endpoint(IPAddress.Parse("10.42.0.9"), "srv", false)],
            slice.Endpoints);
    }

    [Theory]
    [InlineData("""{"metadata":{"name":"x","namespace":"d"},"addressType":"IPv4","endpoints":[]}""")]
    [InlineData("""{"metadata":{"name":"x","namespace":"d","labels":{"kubernetes.io/service-name":"s"}},"addressType":"FQDN","endpoints":[]}""")]
    public void EndpointSliceFromJson_WithoutServiceOrNotIp_IsIgnored(string json) => Assert.Null(EndpointSliceEntry.FromJson(Json(json)));

    [Fact]
    public void ReadyEndpoints_TwoSlicesAndNamedPorts_PairsTheServicePortWithTheSlicePortOfTheSameName()
    {
        var service = new ServiceEntry("d", "web", [IPAddress.Parse("10.43.0.7")], [new ServiceEntry.Port("http", 80), new ServiceEntry.Port("admin", 81)]);
        var table = EgressTable.Build([], [service],
        [
            new EndpointSliceEntry("d", "web-a", "web", [new ServiceEntry.Port("http", 8080), new ServiceEntry.Port("admin", 9090)],
                [new EndpointSliceEntry.Endpoint(IPAddress.Parse("10.42.0.5"), "srv", true)]),
            new EndpointSliceEntry("d", "web-b", "web", [new ServiceEntry.Port("http", 8080)],
                [new EndpointSliceEntry.Endpoint(IPAddress.Parse("10.42.1.5"), "agt", true), new EndpointSliceEntry.Endpoint(IPAddress.Parse("10.42.1.6"), "agt", false)]),
        ]);
        Assert.Equal([(IPAddress.Parse("10.42.0.5"), 8080, "srv"), (IPAddress.Parse("10.42.1.5"), 8080, "agt")], table.ReadyEndpoints(service, 80));
        Assert.Equal([(IPAddress.Parse("10.42.0.5"), 9090, (string?)"srv")], table.ReadyEndpoints(service, 81));
        Assert.Empty(table.ReadyEndpoints(service, 82));
    }
}
