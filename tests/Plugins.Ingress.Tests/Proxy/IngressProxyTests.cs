using System.Net;
using System.Net.Http;
using System.Net.Security;
using System.Net.WebSockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Coracle.Plugins.Ingress.Tests.Support;
using Coracle.Plugins.Ingress.Yarp.Proxy;
using Coracle.Plugins.Ingress.Yarp.Routing;
using k8s.Models;
using Microsoft.Extensions.Logging.Abstractions;
using static Coracle.Plugins.Ingress.Tests.Support.K8sObjects;

namespace Coracle.Plugins.Ingress.Tests.Proxy;

/// <summary>The proxy on loopback ports in front of real Kestrel backends; every request goes through real sockets.</summary>
public sealed class IngressProxyTests : IAsyncLifetime, IAsyncDisposable
{
    private static readonly TimeSpan HangGuard = TimeSpan.FromSeconds(30);
    private TestBackend _one = null!;
    private TestBackend _two = null!;
    private IngressProxy _proxy = null!;

    public async Task InitializeAsync()
    {
        _one = await TestBackend.StartAsync("one");
        _two = await TestBackend.StartAsync("two");
        _proxy = new IngressProxy(new ProxyOptions(IPAddress.Loopback, 0, 0, TimeSpan.FromSeconds(60)), NullLoggerFactory.Instance);
        await _proxy.StartAsync(CancellationToken.None);
    }

    public async Task DisposeAsync()
    {
        await _proxy.StopAsync(TimeSpan.FromSeconds(2));
        await ((IAsyncDisposable)this).DisposeAsync();
    }

    async ValueTask IAsyncDisposable.DisposeAsync()
    {
        await _proxy.DisposeAsync();
        await _one.DisposeAsync();
        await _two.DisposeAsync();
    }

    /// <summary>Service <paramref name="name"/> port 80 whose endpoints are the given backends (one slice each, as their ports differ).</summary>
    private static (V1Service Service, V1EndpointSlice[] Slices) ServiceOf(string name, params TestBackend[] backends) =>
        (Service(name, (null, 80)), backends.Select(b => Slice(name, null, b.Port, ("127.0.0.1", true))).ToArray());

    private static RoutingTable Table(V1Ingress[] ingresses, IEnumerable<(V1Service Service, V1EndpointSlice[] Slices)> services, V1Secret[]? secrets = null) =>
        RoutingTableBuilder.Build(
            new ClusterObjects(ingresses, services.Select(s => s.Service).ToList(), services.SelectMany(s => s.Slices).ToList(), secrets ?? []),
            new ClassSelection("yarp", true));

    private static HttpClient Client(Action<SocketsHttpHandler>? configure = null)
    {
        var handler = new SocketsHttpHandler { UseProxy = false, AllowAutoRedirect = false };
        configure?.Invoke(handler);
        return new HttpClient(handler) { Timeout = HangGuard };
    }

    private async Task<(HttpStatusCode Status, string Body)> GetAsync(string host, string path, HttpClient? client = null)
    {
        using var own = client is null ? Client() : null;
        using var request = new HttpRequestMessage(HttpMethod.Get, $"http://127.0.0.1:{_proxy.HttpPort}{path}");
        request.Headers.Host = host;
        using var response = await (client ?? own!).SendAsync(request);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Http_HostAndPathRule_ForwardsWithOriginalHostAndForwardedHeaders()
    {
        _proxy.Table = Table([NewIngress("i", [Rule("a.test", Path("/app", "Prefix", "web", 80))])], [ServiceOf("web", _one)]);

        var (status, body) = await GetAsync("a.test", "/app/page?q=1");

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Contains("backend=one\n", body, StringComparison.Ordinal);
        Assert.Contains("path=/app/page\n", body, StringComparison.Ordinal);
        Assert.Contains($"host=a.test\n", body, StringComparison.Ordinal);
        Assert.Contains("xff=127.0.0.1\n", body, StringComparison.Ordinal);
        Assert.Contains("xfp=http\n", body, StringComparison.Ordinal);
        Assert.Contains("xfh=a.test\n", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Http_ClientSentForwardedFor_IsReplacedNotTrusted()
    {
        _proxy.Table = Table([NewIngress("i", [Rule("a.test", Path("/", "Prefix", "web", 80))])], [ServiceOf("web", _one)]);
        using var client = Client();
        using var request = new HttpRequestMessage(HttpMethod.Get, $"http://127.0.0.1:{_proxy.HttpPort}/");
        request.Headers.Host = "a.test";
        request.Headers.TryAddWithoutValidation("X-Forwarded-For", "6.6.6.6");

        using var response = await client.SendAsync(request);

        Assert.Contains("xff=127.0.0.1\n", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Http_TwoReadyEndpoints_RoundRobin()
    {
        _proxy.Table = Table([NewIngress("i", [Rule("a.test", Path("/", "Prefix", "web", 80))])], [ServiceOf("web", _one, _two)]);
        using var client = Client();

        var seen = new List<string>();
        for (var i = 0; i < 4; i++)
        {
            var (_, body) = await GetAsync("a.test", "/", client);
            seen.Add(body.Split('\n')[0]);
        }

        Assert.Equal(2, seen.Count(s => s == "backend=one"));
        Assert.Equal(2, seen.Count(s => s == "backend=two"));
        Assert.NotEqual(seen[0], seen[1]);
    }

    [Fact]
    public async Task Http_NoRule_404NamesHostAndPath()
    {
        _proxy.Table = Table([NewIngress("i", [Rule("a.test", Path("/app", "Prefix", "web", 80))])], [ServiceOf("web", _one)]);

        var (status, body) = await GetAsync("b.test", "/else");

        Assert.Equal(HttpStatusCode.NotFound, status);
        Assert.Equal("no ingress rule for host b.test path /else\n", body);
    }

    [Fact]
    public async Task Http_NoRule_DefaultBackendAnswers()
    {
        _proxy.Table = Table([NewIngress("i", [Rule("a.test", Path("/app", "Prefix", "web", 80))], defaultBackend: ("fallback", 80))], [ServiceOf("web", _one), ServiceOf("fallback", _two)]);

        var (status, body) = await GetAsync("b.test", "/else");

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.StartsWith("backend=two\n", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Http_MissingService_503NamesTheService()
    {
        _proxy.Table = Table([NewIngress("i", [Rule("a.test", Path("/", "Prefix", "gone", 80))], ns: "default")], []);

        var (status, body) = await GetAsync("a.test", "/");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, status);
        Assert.Equal("service default/gone not found\n", body);
    }

    [Fact]
    public async Task Http_NoReadyEndpoint_503NamesTheService()
    {
        var notReady = (Service("web", (null, 80)), new[] { Slice("web", null, _one.Port, ("127.0.0.1", false)) });
        _proxy.Table = Table([NewIngress("i", [Rule("a.test", Path("/", "Prefix", "web", 80))])], [notReady]);

        var (status, body) = await GetAsync("a.test", "/");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, status);
        Assert.Equal("no ready endpoint for service default/web port 80\n", body);
    }

    [Fact]
    public async Task Http_BackendSilentPastRequestTimeout_504()
    {
        await using var proxy = new IngressProxy(new ProxyOptions(IPAddress.Loopback, 0, 0, TimeSpan.FromSeconds(1)), NullLoggerFactory.Instance);
        await proxy.StartAsync(CancellationToken.None);
        proxy.Table = Table([NewIngress("i", [Rule("a.test", Path("/", "Prefix", "web", 80))])], [ServiceOf("web", _one)]);
        using var client = Client();
        using var request = new HttpRequestMessage(HttpMethod.Get, $"http://127.0.0.1:{proxy.HttpPort}/hang");
        request.Headers.Host = "a.test";

        using var response = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        Assert.StartsWith("backend default/web:80 at 127.0.0.1:", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        await proxy.StopAsync(TimeSpan.FromSeconds(2));
    }

    [Fact]
    public async Task RouteChange_WhileLongRequestInFlight_RequestCompletesAndNewRequestsSeeTheNewTable()
    {
        _proxy.Table = Table([NewIngress("i", [Rule("a.test", Path("/", "Prefix", "web", 80))])], [ServiceOf("web", _one)]);
        using var client = Client();
        using var request = new HttpRequestMessage(HttpMethod.Get, $"http://127.0.0.1:{_proxy.HttpPort}/slow");
        request.Headers.Host = "a.test";
        var inFlight = client.SendAsync(request);
        await _one.SlowArrived.WaitAsync(HangGuard);

        // The route goes away and another appears while /slow is held by the backend.
        _proxy.Table = Table([NewIngress("j", [Rule("b.test", Path("/", "Prefix", "web2", 80))])], [ServiceOf("web2", _two)]);
        var (oldStatus, _) = await GetAsync("a.test", "/x");
        var (newStatus, newBody) = await GetAsync("b.test", "/x");
        _one.Release();
        using var response = await inFlight.WaitAsync(HangGuard);

        Assert.Equal(HttpStatusCode.NotFound, oldStatus);
        Assert.Equal(HttpStatusCode.OK, newStatus);
        Assert.StartsWith("backend=two\n", newBody, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("one slow done", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task WebSocket_Upgrade_EchoesThroughTheProxy()
    {
        _proxy.Table = Table([NewIngress("i", [Rule(null, Path("/ws", "Exact", "web", 80))])], [ServiceOf("web", _one)]);
        using var ws = new ClientWebSocket();
        using var cts = new CancellationTokenSource(HangGuard);

        await ws.ConnectAsync(new Uri($"ws://127.0.0.1:{_proxy.HttpPort}/ws"), cts.Token);
        await ws.SendAsync(Encoding.UTF8.GetBytes("hello"), WebSocketMessageType.Text, true, cts.Token);
        var buffer = new byte[1024];
        var r = await ws.ReceiveAsync(buffer, cts.Token);
        await ws.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", cts.Token);

        Assert.Equal("one echo: hello", Encoding.UTF8.GetString(buffer, 0, r.Count));
    }

    [Fact]
    public async Task Tls_SniPicksTheHostsCertificate_ChainVerifiesAgainstTheTestCa_Http2Negotiated()
    {
        using var ca = new TestCa();
        var (aCrt, aKey) = ca.Issue("a.test", "a.test");
        var (bCrt, bKey) = ca.Issue("b.test", "b.test");
        _proxy.Table = Table(
            [NewIngress("i", [Rule("a.test", Path("/", "Prefix", "web", 80)), Rule("b.test", Path("/", "Prefix", "web", 80))],
                tls: [new V1IngressTLS { Hosts = ["a.test"], SecretName = "a" }, new V1IngressTLS { Hosts = ["b.test"], SecretName = "b" }])],
            [ServiceOf("web", _one)],
            [TlsSecret("a", aCrt, aKey), TlsSecret("b", bCrt, bKey)]);

        var (aSubject, aVerified, aErrors, aVersion, aBody) = await GetTlsAsync("a.test", ca);
        var (bSubject, bVerified, _, _, _) = await GetTlsAsync("b.test", ca);

        Assert.Equal("CN=a.test", aSubject);
        Assert.True(aVerified);
        Assert.Equal(SslPolicyErrors.None, aErrors & ~SslPolicyErrors.RemoteCertificateChainErrors);
        Assert.Equal(HttpVersion.Version20, aVersion);
        Assert.Contains("xfp=https\n", aBody, StringComparison.Ordinal);
        Assert.Equal("CN=b.test", bSubject);
        Assert.True(bVerified);
    }

    [Fact]
    public async Task Tls_SecretChanged_NextHandshakeGetsTheNewCertificateWithoutRestart()
    {
        using var ca = new TestCa();
        var (oldCrt, oldKey) = ca.Issue("old a.test", "a.test");
        var (newCrt, newKey) = ca.Issue("new a.test", "a.test");
        V1Ingress[] ingress = [NewIngress("i", [Rule("a.test", Path("/", "Prefix", "web", 80))], tls: [new V1IngressTLS { Hosts = ["a.test"], SecretName = "a" }])];
        _proxy.Table = Table(ingress, [ServiceOf("web", _one)], [TlsSecret("a", oldCrt, oldKey)]);
        var (before, _, _, _, _) = await GetTlsAsync("a.test", ca);

        _proxy.Table = Table(ingress, [ServiceOf("web", _one)], [TlsSecret("a", newCrt, newKey)]);
        var (after, verified, _, _, _) = await GetTlsAsync("a.test", ca);

        Assert.Equal("CN=old a.test", before);
        Assert.Equal("CN=new a.test", after);
        Assert.True(verified);
    }

    [Fact]
    public async Task Tls_UnknownServerName_GetsTheSelfSignedDefaultCertificate()
    {
        using var ca = new TestCa();
        _proxy.Table = Table([NewIngress("i", [Rule("a.test", Path("/", "Prefix", "web", 80))])], [ServiceOf("web", _one)]);

        var (subject, verified, _, _, _) = await GetTlsAsync("a.test", ca);

        Assert.Equal("CN=coracle yarp default certificate", subject);
        Assert.False(verified);
    }

    /// <summary>An HTTPS GET with SNI <paramref name="host"/> over HTTP/2 (or lower); returns what the server presented.</summary>
    private async Task<(string Subject, bool VerifiedByCa, SslPolicyErrors Errors, Version Version, string Body)> GetTlsAsync(string host, TestCa ca)
    {
        string subject = "";
        var verified = false;
        var errors = SslPolicyErrors.None;
        using var request = new HttpRequestMessage(HttpMethod.Get, $"https://{host}:{_proxy.HttpsPort}/")
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionOrLower,
        };
        using var pinned = Client(h =>
        {
            h.SslOptions = new SslClientAuthenticationOptions
            {
                TargetHost = host,
                RemoteCertificateValidationCallback = (_, cert, _, e) =>
                {
                    using var c = X509CertificateLoader.LoadCertificate(cert!.GetRawCertData());
                    subject = c.Subject;
                    verified = ca.Verifies(c);
                    errors = e;

                    // Accepted so the test can assert what was presented; the assertions check the chain and the name.
                    return cert is not null;
                },
            };

            // The name resolves to the proxy's loopback port, as a DNS entry for the ingress host would.
            h.ConnectCallback = async (ctx, ct) =>
            {
                var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp) { NoDelay = true };
                await socket.ConnectAsync(IPAddress.Loopback, ctx.DnsEndPoint.Port, ct);
                return new System.Net.Sockets.NetworkStream(socket, ownsSocket: true);
            };
        });
        using var response = await pinned.SendAsync(request);
        return (subject, verified, errors, response.Version, await response.Content.ReadAsStringAsync());
    }
}
