using Coracle.Plugins.Ingress.Yarp.Kubernetes;
using Coracle.Plugins.Ingress.Yarp.Routing;
using static Coracle.Plugins.Ingress.Tests.Support.K8sObjects;

namespace Coracle.Plugins.Ingress.Tests.Kubernetes;

public sealed class IngressControllerTests
{
    [Fact]
    public void Detail_ServedHostsRoutesAndFirstError_OneLine()
    {
        var table = RoutingTableBuilder.Build(
            new ClusterObjects(
                [
                    NewIngress("site", [Rule("a.test", Path("/", "Prefix", "web", 80)), Rule("b.test", Path("/x", "Exact", "web", 80))]),
                    NewIngress("broken", [Rule("c.test", Path("/", "Prefix", "missing", 80))]),
                ],
                [Service("web", (null, 80))],
                [Slice("web", null, 8080)],
                []),
            new ClassSelection("yarp", true));

        Assert.Equal(
            "2 ingresses, 3 hosts, 3 routes, 0 TLS hosts, 2 backends without ready endpoints, 1 errors (first: default/broken ServiceNotFound)",
            IngressController.Detail(table));
    }

    [Fact]
    public void Detail_EmptyTable_SaysNothingServed()
    {
        Assert.Equal("0 ingresses, 0 hosts, 0 routes, 0 TLS hosts", IngressController.Detail(RoutingTable.Empty));
    }
}
