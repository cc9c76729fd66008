using Coracle.Plugins.Ingress.Tests.Support;
using Coracle.Plugins.Ingress.Yarp.Routing;
using k8s.Models;
using static Coracle.Plugins.Ingress.Tests.Support.K8sObjects;

namespace Coracle.Plugins.Ingress.Tests.Routing;

public sealed class RoutingTableBuilderTests
{
    private static readonly ClassSelection Yarp = new("yarp", IsDefault: true);

    private static RoutingTable Build(V1Ingress[] ingresses, V1Service[]? services = null, V1EndpointSlice[]? slices = null, V1Secret[]? secrets = null, ClassSelection? selection = null) =>
        RoutingTableBuilder.Build(new ClusterObjects(ingresses, services ?? [], slices ?? [], secrets ?? []), selection ?? Yarp);

    /// <summary>Services a..e on port 80, each with one ready endpoint 10.0.0.N:8080, so a match names its service.</summary>
    private static (V1Service[] Services, V1EndpointSlice[] Slices) Backends(params string[] names) =>
        (names.Select(n => Service(n, (null, 80))).ToArray(),
         names.Select((n, i) => Slice(n, null, 8080, ($"10.0.0.{i + 1}", true))).ToArray());

    private static string? ServiceFor(RoutingTable table, string host, string path) => table.Match(host, path)?.Backend.Service;

    [Fact]
    public void Match_ExactAndPrefixOfSamePath_ExactWins()
    {
        var (svc, sl) = Backends("exact", "prefix");
        var table = Build([NewIngress("i", [Rule("a.test", Path("/foo", "Prefix", "prefix", 80), Path("/foo", "Exact", "exact", 80))])], svc, sl);

        Assert.Equal("exact", ServiceFor(table, "a.test", "/foo"));
        Assert.Equal("prefix", ServiceFor(table, "a.test", "/foo/bar"));
        Assert.Equal("prefix", ServiceFor(table, "a.test", "/foo/"));
    }

    [Fact]
    public void Match_SeveralPrefixes_LongestMatchingWins()
    {
        var (svc, sl) = Backends("root", "api", "v1");
        var table = Build([NewIngress("i", [Rule("a.test", Path("/", "Prefix", "root", 80), Path("/api", "Prefix", "api", 80), Path("/api/v1/", "Prefix", "v1", 80))])], svc, sl);

        Assert.Equal("v1", ServiceFor(table, "a.test", "/api/v1/users"));
        Assert.Equal("v1", ServiceFor(table, "a.test", "/api/v1"));
        Assert.Equal("api", ServiceFor(table, "a.test", "/api/v2"));
        Assert.Equal("root", ServiceFor(table, "a.test", "/apis"));
        Assert.Equal("root", ServiceFor(table, "a.test", "/"));
    }

    [Theory]
    [InlineData("/foo", "/foo", true)]
    [InlineData("/foo", "/foo/", true)]
    [InlineData("/foo", "/foo/bar", true)]
    [InlineData("/foo/", "/foo", true)]
    [InlineData("/foo", "/foobar", false)]
    [InlineData("/aaa/bb", "/aaa/bbb", false)]
    [InlineData("/aaa/bbb", "/aaa/bbb/ccc", true)]
    [InlineData("/", "/anything", true)]
    [InlineData("/foo", "/FOO", false)]
    public void Match_Prefix_IsElementWiseAndCaseSensitive(string prefix, string request, bool matches)
    {
        var (svc, sl) = Backends("s");
        var table = Build([NewIngress("i", [Rule("a.test", Path(prefix, "Prefix", "s", 80))])], svc, sl);

        Assert.Equal(matches, table.Match("a.test", request) is not null);
    }

    [Fact]
    public void Match_ExactPath_DoesNotMatchTrailingSlashOrCase()
    {
        var (svc, sl) = Backends("s");
        var table = Build([NewIngress("i", [Rule("a.test", Path("/foo", "Exact", "s", 80))])], svc, sl);

        Assert.NotNull(table.Match("a.test", "/foo"));
        Assert.Null(table.Match("a.test", "/foo/"));
        Assert.Null(table.Match("a.test", "/Foo"));
    }

    [Fact]
    public void Match_ImplementationSpecific_IsServedAsPrefix()
    {
        var (svc, sl) = Backends("s");
        var table = Build([NewIngress("i", [Rule("a.test", Path("/foo", "ImplementationSpecific", "s", 80))])], svc, sl);

        Assert.Equal("s", ServiceFor(table, "a.test", "/foo/bar"));
        Assert.Null(table.Match("a.test", "/foobar"));
    }

    [Fact]
    public void Match_Hosts_ExactThenWildcardThenAnyHost()
    {
        var (svc, sl) = Backends("exact", "wild", "any");
        var table = Build(
            [NewIngress("i", [Rule("a.example.test", Path("/", "Prefix", "exact", 80)), Rule("*.example.test", Path("/", "Prefix", "wild", 80)), Rule(null, Path("/", "Prefix", "any", 80))])],
            svc, sl);

        Assert.Equal("exact", ServiceFor(table, "a.example.test", "/"));
        Assert.Equal("exact", ServiceFor(table, "A.Example.Test:8080", "/"));
        Assert.Equal("wild", ServiceFor(table, "b.example.test", "/"));
        Assert.Equal("any", ServiceFor(table, "c.b.example.test", "/"));   // a wildcard covers one label only
        Assert.Equal("any", ServiceFor(table, "example.test", "/"));
        Assert.Equal("any", ServiceFor(table, "10.1.2.3", "/x"));
    }

    [Fact]
    public void Match_HostWithoutMatchingPath_FallsThroughToRulesWithoutHost()
    {
        var (svc, sl) = Backends("api", "any");
        var table = Build([NewIngress("i", [Rule("a.test", Path("/api", "Prefix", "api", 80)), Rule(null, Path("/", "Prefix", "any", 80))])], svc, sl);

        Assert.Equal("api", ServiceFor(table, "a.test", "/api/x"));
        Assert.Equal("any", ServiceFor(table, "a.test", "/other"));
    }

    [Fact]
    public void Match_NoRule_DefaultBackendElseNull()
    {
        var (svc, sl) = Backends("a", "fallback");
        var withDefault = Build([NewIngress("i", [Rule("a.test", Path("/", "Prefix", "a", 80))], defaultBackend: ("fallback", 80))], svc, sl);
        var without = Build([NewIngress("i", [Rule("a.test", Path("/", "Prefix", "a", 80))])], svc, sl);

        var match = withDefault.Match("unknown.test", "/x");
        Assert.NotNull(match);
        Assert.Null(match.Route);
        Assert.Equal("fallback", match.Backend.Service);
        Assert.Null(without.Match("unknown.test", "/x"));
    }

    [Fact]
    public void Build_TwoDefaultBackends_OldestWinsAndTheOtherGetsAProblem()
    {
        var (svc, sl) = Backends("old", "young");
        var table = Build(
            [
                NewIngress("young", [], defaultBackend: ("young", 80), created: new DateTime(2026, 2, 1, 0, 0, 0, DateTimeKind.Utc)),
                NewIngress("old", [], defaultBackend: ("old", 80), created: new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc)),
            ],
            svc, sl);

        Assert.Equal("old", table.DefaultBackend?.Service);
        var problem = Assert.Single(table.Problems);
        Assert.Equal(("young", "DefaultBackendConflict"), (problem.Name, problem.Reason));
    }

    [Fact]
    public void Build_SameHostAndPathInTwoIngresses_OldestWinsAndTheOtherGetsRuleConflict()
    {
        var (svc, sl) = Backends("old", "young");
        var table = Build(
            [
                NewIngress("young", [Rule("a.test", Path("/x", "Prefix", "young", 80))], created: new DateTime(2026, 2, 1, 0, 0, 0, DateTimeKind.Utc)),
                NewIngress("old", [Rule("a.test", Path("/x/", "Prefix", "old", 80))], created: new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc)),
            ],
            svc, sl);

        Assert.Equal("old", ServiceFor(table, "a.test", "/x"));
        Assert.Equal("RuleConflict", Assert.Single(table.Problems).Reason);
    }

    [Fact]
    public void Build_Classes_OwnClassServed_OtherClassNot_ClassLessOnlyWhenDefault()
    {
        var (svc, sl) = Backends("s");
        V1Ingress[] ingresses =
        [
            NewIngress("mine", [Rule("mine.test", Path("/", "Prefix", "s", 80))], className: "yarp"),
            NewIngress("other", [Rule("other.test", Path("/", "Prefix", "s", 80))], className: "nginx"),
            NewIngress("none", [Rule("none.test", Path("/", "Prefix", "s", 80))], className: null),
        ];
        var annotated = NewIngress("annotated", [Rule("annotated.test", Path("/", "Prefix", "s", 80))], className: null);
        annotated.Metadata.Annotations = new Dictionary<string, string> { ["kubernetes.io/ingress.class"] = "yarp" };

        var asDefault = Build([.. ingresses, annotated], svc, sl, selection: new ClassSelection("yarp", true));
        var notDefault = Build([.. ingresses, annotated], svc, sl, selection: new ClassSelection("yarp", false));

        Assert.Equal(["annotated", "mine", "none"], asDefault.Served.Select(s => s.Name).Order());
        Assert.Equal(["annotated", "mine"], notDefault.Served.Select(s => s.Name).Order());
        Assert.Null(asDefault.Match("other.test", "/"));
    }

    [Fact]
    public void Build_Endpoints_ReadyOnlyAndTargetPortFromSlice()
    {
        var table = Build(
            [NewIngress("i", [Rule("a.test", Path("/", "Prefix", "web", 80))])],
            [Service("web", ("http", 80))],
            [Slice("web", "http", 8080, ("10.0.0.1", true), ("10.0.0.2", false), ("10.0.0.3", null)), Slice("web", "http", 8080, ("10.0.0.4", true))]);

        var backend = table.Match("a.test", "/")!.Backend;
        Assert.Null(backend.Problem);
        Assert.Equal(["10.0.0.1:8080", "10.0.0.3:8080", "10.0.0.4:8080"], backend.Destinations);
    }

    [Fact]
    public void Build_ServicePortByName_PicksThatPortsEndpoints()
    {
        var ingress = NewIngress("i", [Rule("a.test", Path("/", "Prefix", "web", 0))]);
        ingress.Spec.Rules[0].Http.Paths[0].Backend.Service.Port = new V1ServiceBackendPort { Name = "metrics" };
        var slice = Slice("web", "http", 8080, ("10.0.0.1", true));
        slice.Ports.Add(new Discoveryv1EndpointPort { Name = "metrics", Port = 9090 });

        var table = Build([ingress], [Service("web", ("http", 80), ("metrics", 9100))], [slice]);

        Assert.Equal(["10.0.0.1:9090"], table.Match("a.test", "/")!.Backend.Destinations);
    }

    [Fact]
    public void Build_MissingService_ServiceNotFoundProblemAnd503TextWhileOtherRulesWork()
    {
        var (svc, sl) = Backends("good");
        var table = Build([NewIngress("shop", [Rule("a.test", Path("/good", "Prefix", "good", 80), Path("/gone", "Prefix", "gone", 80))], ns: "default")], svc, sl);

        var problem = Assert.Single(table.Problems);
        Assert.Equal(("default", "shop", "ServiceNotFound"), (problem.Namespace, problem.Name, problem.Reason));
        Assert.Equal("rule a.test/gone: service default/gone not found", problem.Message);
        Assert.Equal("service default/gone not found", table.Match("a.test", "/gone")!.Backend.Problem);
        Assert.Equal(["10.0.0.1:8080"], table.Match("a.test", "/good")!.Backend.Destinations);
    }

    [Fact]
    public void Build_MissingServicePort_ServicePortNotFoundListsThePorts()
    {
        var table = Build([NewIngress("i", [Rule("a.test", Path("/", "Prefix", "web", 81))])], [Service("web", ("http", 80))]);

        var problem = Assert.Single(table.Problems);
        Assert.Equal("ServicePortNotFound", problem.Reason);
        Assert.Equal("rule a.test/: service default/web has no port 81 (ports: http/80)", problem.Message);
    }

    [Fact]
    public void Build_ResourceBackend_BackendNotSupported()
    {
        var ingress = NewIngress("i", [Rule("a.test", Path("/", "Prefix", "web", 80))]);
        ingress.Spec.Rules[0].Http.Paths[0].Backend = new V1IngressBackend { Resource = new V1TypedLocalObjectReference { Kind = "StorageBucket", Name = "b" } };

        var table = Build([ingress]);

        Assert.Equal("BackendNotSupported", Assert.Single(table.Problems).Reason);
        Assert.NotNull(table.Match("a.test", "/")!.Backend.Problem);
    }

    [Fact]
    public void Build_TlsSecret_CertificateBySniAndWildcard()
    {
        using var ca = new TestCa();
        var (crt, key) = ca.Issue("a.test", "a.test", "*.b.test");
        var (svc, sl) = Backends("s");
        var table = Build(
            [NewIngress("i", [Rule("a.test", Path("/", "Prefix", "s", 80))], tls: [new V1IngressTLS { Hosts = ["a.test", "*.b.test"], SecretName = "cert" }])],
            svc, sl, [TlsSecret("cert", crt, key)]);

        Assert.Empty(table.Problems);
        Assert.Equal("CN=a.test", table.CertificateFor("a.test")?.TargetCertificate.Subject);
        Assert.Equal("CN=a.test", table.CertificateFor("x.b.test")?.TargetCertificate.Subject);
        Assert.Null(table.CertificateFor("y.x.b.test"));
        Assert.Null(table.CertificateFor("other.test"));
    }

    [Fact]
    public void Build_MissingTlsSecret_SecretNotFoundAndRoutesStillServed()
    {
        var (svc, sl) = Backends("s");
        var table = Build([NewIngress("i", [Rule("a.test", Path("/", "Prefix", "s", 80))], tls: [new V1IngressTLS { Hosts = ["a.test"], SecretName = "nope" }])], svc, sl);

        var problem = Assert.Single(table.Problems);
        Assert.Equal("SecretNotFound", problem.Reason);
        Assert.Equal("TLS secret default/nope not found; create a kubernetes.io/tls Secret with tls.crt and tls.key", problem.Message);
        Assert.NotNull(table.Match("a.test", "/"));
        Assert.Null(table.CertificateFor("a.test"));
    }

    [Fact]
    public void Build_TlsSecretWithGarbage_SecretInvalid()
    {
        var (svc, sl) = Backends("s");
        var table = Build(
            [NewIngress("i", [Rule("a.test", Path("/", "Prefix", "s", 80))], tls: [new V1IngressTLS { Hosts = ["a.test"], SecretName = "bad" }])],
            svc, sl, [TlsSecret("bad", "not a certificate", "not a key")]);

        var problem = Assert.Single(table.Problems);
        Assert.Equal("SecretInvalid", problem.Reason);
        Assert.Equal("TLS secret default/bad: tls.crt holds no PEM certificate", problem.Message);
    }

    [Fact]
    public void Build_Served_ListsHostsAndDefault()
    {
        var (svc, sl) = Backends("s");
        var table = Build([NewIngress("i", [Rule("a.test", Path("/", "Prefix", "s", 80)), Rule("b.test", Path("/", "Prefix", "s", 80))], defaultBackend: ("s", 80))], svc, sl);

        Assert.Equal(["*", "a.test", "b.test"], Assert.Single(table.Served).Hosts);
    }
}
