using System.Net;
using Coracle.Plugins.LoadBalancer.ServiceLb;
using Xunit;

namespace Coracle.Plugins.LoadBalancer.Tests.ServiceLb;

public sealed class PlannerTests
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private static LbNode Node(string name, string ip, string? external = null, bool ready = true, params (string, string)[] labels) => new()
    {
        Name = name,
        InternalIps = [ip],
        ExternalIps = external is null ? [] : [external],
        Ready = ready,
        Labels = labels.ToDictionary(l => l.Item1, l => l.Item2),
    };

    private static LbService Web(string name = "web", int port = 8080, string protocol = "TCP", int ageMinutes = 0, string type = "LoadBalancer",
        string? lbClass = null, bool local = false, params (string, string)[] labels) => new()
    {
        Namespace = "default",
        Name = name,
        Type = type,
        LoadBalancerClass = lbClass,
        LocalTraffic = local,
        Ports = [new LbPort("http", protocol, port)],
        Created = T0.AddMinutes(-ageMinutes),
        Labels = labels.ToDictionary(l => l.Item1, l => l.Item2),
    };

    private static readonly LbBackend[] OnA = [new("10.42.0.5", 80, "a")];

    private static IReadOnlyList<LbBackend> Backends(LbService s, LbPort p) => OnA;

    [Fact]
    public void Eligible_NoEnableLabelAnywhere_EveryReadyNode()
    {
        LbNode[] nodes = [Node("a", "192.168.1.1"), Node("b", "192.168.1.2"), Node("c", "192.168.1.3", ready: false)];

        Assert.Equal(["a", "b"], nodes.Where(n => Planner.Eligible(Web(), n, nodes, OnA)).Select(n => n.Name));
    }

    [Fact]
    public void Eligible_SomeNodeEnabled_OnlyNodesLabelledTrue()
    {
        LbNode[] nodes =
        [
            Node("a", "192.168.1.1", labels: (Planner.EnableLabel, "true")),
            Node("b", "192.168.1.2"),
            Node("c", "192.168.1.3", labels: (Planner.EnableLabel, "false")),
        ];

        Assert.Equal(["a"], nodes.Where(n => Planner.Eligible(Web(), n, nodes, OnA)).Select(n => n.Name));
    }

    [Fact]
    public void Eligible_ServiceInAPool_OnlyThatPoolsNodes_UnpooledServiceUsesAll()
    {
        LbNode[] nodes =
        [
            Node("a", "192.168.1.1", labels: (Planner.PoolLabel, "edge")),
            Node("b", "192.168.1.2", labels: (Planner.PoolLabel, "core")),
            Node("c", "192.168.1.3"),
        ];
        var pooled = Web(labels: (Planner.PoolLabel, "edge"));

        Assert.Equal(["a"], nodes.Where(n => Planner.Eligible(pooled, n, nodes, OnA)).Select(n => n.Name));
        Assert.Equal(["a", "b", "c"], nodes.Where(n => Planner.Eligible(Web(), n, nodes, OnA)).Select(n => n.Name));
    }

    [Fact]
    public void Eligible_PoolAndEnableLabel_BothMustHold()
    {
        LbNode[] nodes =
        [
            Node("a", "192.168.1.1", labels: [(Planner.PoolLabel, "edge"), (Planner.EnableLabel, "true")]),
            Node("b", "192.168.1.2", labels: (Planner.PoolLabel, "edge")),
        ];

        Assert.Equal(["a"], nodes.Where(n => Planner.Eligible(Web(labels: (Planner.PoolLabel, "edge")), n, nodes, OnA)).Select(n => n.Name));
    }

    [Fact]
    public void Eligible_OtherLoadBalancerClassOrNotLoadBalancer_Never()
    {
        LbNode[] nodes = [Node("a", "192.168.1.1")];

        Assert.False(Planner.Eligible(Web(lbClass: "example.com/metallb"), nodes[0], nodes, OnA));
        Assert.False(Planner.Eligible(Web(type: "NodePort"), nodes[0], nodes, OnA));
        Assert.True(Planner.Eligible(Web(lbClass: ""), nodes[0], nodes, OnA));
    }

    [Fact]
    public void Eligible_LocalTrafficPolicy_OnlyNodesWithAReadyLocalEndpoint()
    {
        LbNode[] nodes = [Node("a", "192.168.1.1"), Node("b", "192.168.1.2")];

        Assert.Equal(["a"], nodes.Where(n => Planner.Eligible(Web(local: true), n, nodes, OnA)).Select(n => n.Name));
    }

    [Fact]
    public void For_ClusterPolicy_ForwardsEveryNodeAddressToAllBackendsWithMasquerade()
    {
        var a = Node("a", "192.168.1.1", external: "203.0.113.1");
        LbBackend[] two = [new("10.42.0.5", 80, "a"), new("10.42.1.7", 80, "b")];

        var plan = Planner.For(a, [a], [Web()], (_, _) => two, []);

        Assert.Equal(["203.0.113.1", "192.168.1.1"], plan.Forwards.Select(f => f.NodeIp).Order(StringComparer.Ordinal).Reverse());
        Assert.All(plan.Forwards, f => Assert.Equal(two, f.Backends));
        Assert.All(plan.Forwards, f => Assert.True(f.Masquerade));
        Assert.Equal(["default/web"], plan.Report.Serving);
        Assert.Equal("1 service, 1 port", plan.Describe());
    }

    [Fact]
    public void For_LocalPolicy_OnlyThisNodesEndpointsAndNoMasquerade()
    {
        var a = Node("a", "192.168.1.1");
        LbBackend[] two = [new("10.42.0.5", 80, "a"), new("10.42.1.7", 80, "b")];

        var plan = Planner.For(a, [a], [Web(local: true)], (_, _) => two, []);

        var forward = Assert.Single(plan.Forwards);
        Assert.Equal([new LbBackend("10.42.0.5", 80, "a")], forward.Backends);
        Assert.False(forward.Masquerade);
    }

    [Fact]
    public void For_PortHeldByAListener_ServiceRefusedWithTheHolder()
    {
        var a = Node("a", "192.168.1.1");
        Listener[] listeners = [new("TCP", IPAddress.Any, 8080, 77) { Owner = "pid 42 (socat)" }];

        var plan = Planner.For(a, [a], [Web()], Backends, listeners);

        Assert.Empty(plan.Forwards);
        Assert.Empty(plan.Report.Serving);
        var conflict = Assert.Single(plan.Report.Conflicts);
        Assert.Equal(new PortConflict("default/web", "8080/TCP", "pid 42 (socat) on 0.0.0.0:8080/TCP"), conflict);
        Assert.Equal("0 services, 0 ports; 1 conflict", plan.Describe());
    }

    [Fact]
    public void For_ListenerOnLoopbackOrOtherProtocol_NoConflict()
    {
        var a = Node("a", "192.168.1.1");
        Listener[] listeners = [new("TCP", IPAddress.Loopback, 8080, 1), new("UDP", IPAddress.Any, 8080, 2), new("TCP", IPAddress.Parse("192.168.1.9"), 8080, 3)];

        var plan = Planner.For(a, [a], [Web()], Backends, listeners);

        Assert.Equal(["default/web"], plan.Report.Serving);
        Assert.Empty(plan.Report.Conflicts);
    }

    [Fact]
    public void For_TwoServicesOnOnePort_OlderKeepsItNewerRefused()
    {
        var a = Node("a", "192.168.1.1");
        var older = Web("old", ageMinutes: 10);
        var newer = Web("new", ageMinutes: 1);

        var plan = Planner.For(a, [a], [newer, older], Backends, []);

        Assert.Equal(["default/old"], plan.Report.Serving);
        Assert.Equal(new PortConflict("default/new", "8080/TCP", "service default/old"), Assert.Single(plan.Report.Conflicts));
    }

    [Fact]
    public void For_SamePortOtherProtocol_BothServed()
    {
        var a = Node("a", "192.168.1.1");

        var plan = Planner.For(a, [a], [Web("tcp"), Web("udp", protocol: "UDP")], Backends, []);

        Assert.Equal(["default/tcp", "default/udp"], plan.Report.Serving);
    }

    [Fact]
    public void For_SctpPort_ServiceRefusedNamingTheProtocolAndTheFix()
    {
        var a = Node("a", "192.168.1.1");

        var plan = Planner.For(a, [a], [Web(protocol: "SCTP")], Backends, []);

        Assert.Empty(plan.Forwards);
        var refusal = Assert.Single(plan.Report.Conflicts);
        Assert.Equal(Planner.UnsupportedProtocol, refusal.Reason);
        Assert.Equal(
            "node a does not serve this Service: port 8080/SCTP: ServiceLB forwards TCP and UDP only; use TCP or UDP, or set spec.loadBalancerClass for another load balancer",
            refusal.Message("a"));
    }

    [Fact]
    public void For_PortOutsideTheAllowedOnes_ThatServiceRefusedTheOthersServed()
    {
        var a = Node("a", "192.168.1.1");

        var plan = Planner.For(a, [a], [Web("web"), Web("ssh", port: 22)], Backends, [], allowed: PortRanges.Parse("80, 1024-65535"));

        Assert.Equal(["default/web"], plan.Report.Serving);
        var refusal = Assert.Single(plan.Report.Conflicts);
        Assert.Equal((Planner.PortNotAllowed, "default/ssh"), (refusal.Reason, refusal.Service));
        Assert.Equal(
            "node a does not serve this Service: port 22/TCP is outside the ports ServiceLB may take (80,1024-65535, [plugins.servicelb] ports); use a port in them, or widen that setting",
            refusal.Message("a"));
    }

    [Theory]
    [InlineData("80,443", true)]
    [InlineData("1-65535", true)]
    [InlineData("0", false)]
    [InlineData("65536", false)]
    [InlineData("90-80", false)]
    [InlineData("80,", false)]
    [InlineData("http", false)]
    public void PortRanges_Parse_BadValuesNameThePartAndTheFix(string text, bool valid)
    {
        if (valid)
        {
            Assert.Equal(text, PortRanges.Parse(text).ToString());
            return;
        }

        var error = Assert.Throws<PluginConfigException>(() => PortRanges.Parse(text));
        Assert.Equal("ports", error.Key);
        Assert.EndsWith("is not a port or a range of ports from 1 to 65535; write for example ports = \"80,443,8000-8999\"", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void PortConflict_Message_NamesNodePortHolderAndFix()
    {
        Assert.Equal(
            "node b does not serve this Service: port 8080/TCP is held by service default/old; free the port there, or keep the Service off the node (label svccontroller.k3s.cattle.io/lbpool)",
            new PortConflict("default/new", "8080/TCP", "service default/old").Message("b"));
    }

    [Fact]
    public void StatusAddresses_NodesReportingServing_ExternalFirstSortedNumerically()
    {
        var serving = new NodeReport(["default/web"], []);
        LbNode[] nodes =
        [
            Node("a", "192.168.1.10") with { Report = serving },
            Node("b", "192.168.1.9", external: "203.0.113.5") with { Report = serving },
            Node("c", "192.168.1.2") with { Report = serving },
            Node("d", "192.168.1.3") with { Report = new NodeReport([], [new PortConflict("default/web", "8080/TCP", "x")]) },
            Node("e", "192.168.1.4"),
            Node("f", "192.168.1.5", ready: false) with { Report = serving },
        ];

        Assert.Equal(["192.168.1.2", "192.168.1.10", "203.0.113.5"], Planner.StatusAddresses(Web(), nodes));
        Assert.Empty(Planner.StatusAddresses(Web(lbClass: "other"), nodes));
    }

    [Fact]
    public void NodeReport_RoundTripsAndRejectsGarbage()
    {
        var report = new NodeReport(["default/web"], [new PortConflict("default/db", "5432/TCP", "pid 1 (postgres) on 0.0.0.0:5432/TCP")]);

        var parsed = NodeReport.Parse(report.ToJson());

        Assert.NotNull(parsed);
        Assert.Equal(report.Serving, parsed.Serving);
        Assert.Equal(report.Conflicts, parsed.Conflicts);
        Assert.Null(NodeReport.Parse("{not json"));
        Assert.Null(NodeReport.Parse(""));
        Assert.Empty(NodeReport.Parse("{}")!.Serving);
    }
}
