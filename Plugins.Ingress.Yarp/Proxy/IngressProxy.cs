using System.Collections.Concurrent;
using System.Net;
using System.Net.Http;
using System.Net.Security;
using System.Runtime.CompilerServices;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Coracle.Plugins.Ingress.Yarp.Routing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy.Forwarder;

namespace Coracle.Plugins.Ingress.Yarp.Proxy;

/// <summary>Where and how the proxy listens.</summary>
/// <param name="Address">The address to bind (0.0.0.0 for every IPv4 address of the node).</param>
/// <param name="HttpPort">Plain HTTP port; 0 picks a free one (tests).</param>
/// <param name="HttpsPort">HTTPS port; 0 picks a free one (tests).</param>
/// <param name="RequestTimeout">How long a backend may stay silent before the request fails with 504.</param>
internal sealed record ProxyOptions(IPAddress Address, int HttpPort, int HttpsPort, TimeSpan RequestTimeout);

/// <summary>
/// The ingress proxy: Kestrel on the HTTP and HTTPS ports, each request matched against the current
/// <see cref="RoutingTable"/> and forwarded by YARP's <see cref="IHttpForwarder"/> to one ready endpoint (round robin).
/// A new table replaces the old one in one reference swap: requests in flight keep the table they started with and
/// no connection is dropped. TLS certificates are chosen per handshake from the current table by SNI.
/// </summary>
internal sealed class IngressProxy : IAsyncDisposable
{
    private readonly ProxyOptions _options;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, StrongBox<int>> _roundRobin = new(StringComparer.Ordinal);
    private readonly HttpMessageInvoker _client;
    private readonly ForwardedHeadersTransformer _transformer = new();
    private readonly SslStreamCertificateContext _fallbackCertificate;
    private volatile RoutingTable _table = RoutingTable.Empty;
    private WebApplication? _app;

    public IngressProxy(ProxyOptions options, ILoggerFactory loggerFactory)
    {
        _options = options;
        _loggerFactory = loggerFactory;
        _logger = loggerFactory.CreateLogger("yarp");
        _client = new HttpMessageInvoker(new SocketsHttpHandler
        {
            UseProxy = false,
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            UseCookies = false,
            EnableMultipleHttp2Connections = true,
            ConnectTimeout = TimeSpan.FromSeconds(5),
            ActivityHeadersPropagator = null,
        });
        _fallbackCertificate = FallbackCertificate();
    }

    /// <summary>The table requests are matched against.</summary>
    public RoutingTable Table
    {
        get => _table;
        set => _table = value;
    }

    /// <summary>The bound HTTP port (after <see cref="StartAsync"/>).</summary>
    public int HttpPort { get; private set; }

    /// <summary>The bound HTTPS port (after <see cref="StartAsync"/>).</summary>
    public int HttpsPort { get; private set; }

    /// <summary>Binds both ports and starts serving.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.ClearProviders();
        builder.Services.Replace(ServiceDescriptor.Singleton(_loggerFactory));
        builder.Services.Replace(ServiceDescriptor.Singleton<IHostLifetime, EmbeddedLifetime>());
        builder.Services.AddHttpForwarder();
        builder.WebHost.UseKestrelHttpsConfiguration();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = null;
            // HTTP/2 needs ALPN, so the plain port speaks HTTP/1.1 (Kestrel would warn about Http1AndHttp2 without TLS).
            k.Listen(_options.Address, _options.HttpPort, l => l.Protocols = HttpProtocols.Http1);
            k.Listen(_options.Address, _options.HttpsPort, l =>
            {
                l.Protocols = HttpProtocols.Http1AndHttp2;
                l.UseHttps(new TlsHandshakeCallbackOptions
                {
                    HandshakeTimeout = TimeSpan.FromSeconds(10),
                    OnConnection = c => ValueTask.FromResult(new SslServerAuthenticationOptions
                    {
                        ServerCertificateContext = _table.CertificateFor(c.ClientHelloInfo.ServerName) ?? _fallbackCertificate,
                        ApplicationProtocols = [SslApplicationProtocol.Http2, SslApplicationProtocol.Http11],
                        EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
                    }),
                });
            });
        });

        var app = builder.Build();
        var forwarder = app.Services.GetRequiredService<IHttpForwarder>();
        app.Run(context => HandleAsync(context, forwarder));
        await app.StartAsync(cancellationToken);
        _app = app;

        var addresses = app.Urls.Select(u => new Uri(u.Replace("0.0.0.0", "127.0.0.1", StringComparison.Ordinal))).ToList();
        HttpPort = addresses.First(u => u.Scheme == "http").Port;
        HttpsPort = addresses.First(u => u.Scheme == "https").Port;
        Log.Listening(_logger, _options.Address.ToString(), HttpPort, HttpsPort);
    }

    /// <summary>Stops accepting, lets requests in flight finish for up to <paramref name="drain"/>.</summary>
    public async Task StopAsync(TimeSpan drain)
    {
        if (_app is { } app)
        {
            using var cts = new CancellationTokenSource(drain);
            await app.StopAsync(cts.Token);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is { } app)
        {
            await app.DisposeAsync();
        }

        _client.Dispose();
    }

    private async Task HandleAsync(HttpContext context, IHttpForwarder forwarder)
    {
        var table = _table;
        var host = context.Request.Host.Host;
        var path = context.Request.Path.Value ?? "/";
        if (table.Match(host, path) is not { } match)
        {
            await PlainAsync(context, StatusCodes.Status404NotFound, $"no ingress rule for host {(host.Length == 0 ? "(none)" : host)} path {path}");
            return;
        }

        var backend = match.Backend;
        if (backend.Problem is { } problem)
        {
            await PlainAsync(context, StatusCodes.Status503ServiceUnavailable, problem);
            return;
        }

        if (backend.Destinations.Count == 0)
        {
            await PlainAsync(context, StatusCodes.Status503ServiceUnavailable, $"no ready endpoint for service {backend.Namespace}/{backend.Service} port {backend.Port}");
            return;
        }

        var counter = _roundRobin.GetOrAdd(backend.Key, _ => new StrongBox<int>(-1));
        var index = (int)((uint)Interlocked.Increment(ref counter.Value) % (uint)backend.Destinations.Count);
        var destination = backend.Destinations[index];
        var config = new ForwarderRequestConfig { ActivityTimeout = _options.RequestTimeout };
        var error = await forwarder.SendAsync(context, "http://" + destination, _client, config, _transformer);
        if (error != ForwarderError.None)
        {
            var detail = context.Features.Get<IForwarderErrorFeature>()?.Exception?.Message ?? "";
            Log.ForwardFailed(_logger, backend.Key, destination, error.ToString(), detail);
            if (!context.Response.HasStarted)
            {
                var status = context.Response.StatusCode is >= 500 ? context.Response.StatusCode : StatusCodes.Status502BadGateway;
                await PlainAsync(context, status, $"backend {backend.Key} at {destination} failed: {error}");
            }
        }
    }

    private static Task PlainAsync(HttpContext context, int status, string message)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "text/plain; charset=utf-8";
        return context.Response.WriteAsync(message + "\n");
    }

    /// <summary>The certificate for a TLS handshake no Ingress has one for: self-signed, made at start (as Traefik's default).</summary>
    private static SslStreamCertificateContext FallbackCertificate()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=coracle yarp default certificate", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        using var cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddYears(10));
        var withKey = X509CertificateLoader.LoadPkcs12(cert.Export(X509ContentType.Pkcs12), null);
        return SslStreamCertificateContext.Create(withKey, null, offline: true);
    }

    /// <summary>Copies the request, keeps the client's Host, and sets X-Forwarded-For/Proto/Host from this hop (not trusting the client's).</summary>
    private sealed class ForwardedHeadersTransformer : HttpTransformer
    {
        public override async ValueTask TransformRequestAsync(HttpContext httpContext, HttpRequestMessage proxyRequest, string destinationPrefix, CancellationToken cancellationToken)
        {
            await base.TransformRequestAsync(httpContext, proxyRequest, destinationPrefix, cancellationToken);
            var headers = proxyRequest.Headers;
            headers.Host = httpContext.Request.Host.Value;
            headers.Remove("X-Forwarded-For");
            headers.Remove("X-Forwarded-Proto");
            headers.Remove("X-Forwarded-Host");
            if (httpContext.Connection.RemoteIpAddress is { } remote)
            {
                headers.TryAddWithoutValidation("X-Forwarded-For", (remote.IsIPv4MappedToIPv6 ? remote.MapToIPv4() : remote).ToString());
            }

            headers.TryAddWithoutValidation("X-Forwarded-Proto", httpContext.Request.Scheme);
            headers.TryAddWithoutValidation("X-Forwarded-Host", httpContext.Request.Host.Value);
        }
    }

    private sealed class EmbeddedLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
