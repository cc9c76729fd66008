using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Coracle.Core.Configuration;
using Coracle.Core.Identity;
using Coracle.Core.Logging;
using Coracle.Core.Tunnel;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;

namespace Coracle.Core.Join;

/// <summary>
/// The join API on the supervisor port (HTTPS, the supervisor certificate): <c>GET /cacerts</c> without auth; with the
/// server token or a join token (HTTP basic <c>node:SECRET</c> or bearer): <c>GET /v1/config</c>,
/// <c>POST /v1/certificates</c>, <c>GET /v1/readyz</c> and the agent tunnel <c>GET /v1/tunnel</c> (websocket).
/// </summary>
internal sealed partial class JoinServer
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);
    private readonly CoracleConfig _config;
    private readonly ClusterCertificates _certs;
    private readonly ClusterToken _serverToken;
    private readonly JoinTokenStore _joinTokens;
    private readonly TunnelRegistry _tunnels;
    private readonly NodePasswords _nodePasswords;
    private readonly ILogger _log;
    private readonly TimeProvider _time;

    public JoinServer(CoracleConfig config, ClusterCertificates certs, ClusterToken serverToken, JoinTokenStore joinTokens, TunnelRegistry tunnels, NodePasswords nodePasswords, ILogger log, TimeProvider? time = null)
    {
        _config = config;
        _certs = certs;
        _serverToken = serverToken;
        _joinTokens = joinTokens;
        _tunnels = tunnels;
        _nodePasswords = nodePasswords;
        _log = log;
        _time = time ?? TimeProvider.System;
    }

    /// <summary>The service load balancer plugin this server runs, told to joining agents; empty for none.</summary>
    public string LoadBalancer { get; init; } = "";

    /// <summary>The ingress plugin this server runs, told to joining agents; empty for none.</summary>
    public string Ingress { get; init; } = "";

    /// <summary>This server's datastore as joining servers need it (<c>POST /v1/server-join</c>); null: no server may join this one.</summary>
    public ServerJoinDatastore? Datastore { get; init; }

    /// <summary>The largest body <c>POST /v1/certificates</c> reads; four CSRs (even RSA 4096) are a few kilobytes.</summary>
    public const int MaxBodyBytes = 64 * 1024;

    /// <summary>The longest node password accepted (agents send 32 hex digits).</summary>
    public const int MaxPasswordLength = 512;

    /// <summary>The only role a node joins with here: a cluster has one server.</summary>
    public const string AgentRole = "agent";

    public async Task RunAsync(CancellationToken ct)
    {
        // The content root is the host's folder, never the working directory: the builder watches its content root
        // (appsettings.json, reload on change) recursively, and a node started from / (systemd's default, a chroot)
        // would watch /proc and /sys and overflow the stack (found running the installed image, tests/Packaging.Tests).
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ApplicationName = "coracle-join", ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.ClearProviders();
        using var serving = X509Certificate2.CreateFromPemFile(_certs.CertFile("supervisor"), _certs.KeyFile("supervisor"));
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Listen(IPAddress.Any, _config.SupervisorPort, listen => listen.UseHttps(serving));
        });
        await using var app = builder.Build();
        app.UseWebSockets(new WebSocketOptions { KeepAliveInterval = TimeSpan.FromSeconds(15) });
        app.MapGet("/cacerts", () => Results.Bytes(File.ReadAllBytes(_certs.CertFile(ClusterCertificates.ServerCa)), "application/x-pem-file"));
        app.MapGet("/ping", () => Results.Text("pong"));
        app.MapGet("/v1/config", (HttpContext http) => Authenticated(http, () => Results.Json(ClusterConfig(http), Json)));
        app.MapGet("/v1/readyz", (HttpContext http) => Authenticated(http, () => Results.Json(new { ready = true }, Json)));
        app.MapPost("/v1/certificates", (Func<HttpContext, Task<IResult>>)(http => AuthenticatedAsync(http, () => SignAsync(http))));
        app.MapPost("/v1/server-join", (Func<HttpContext, Task<IResult>>)ServerJoinAsync);
        app.MapGet("/v1/tunnel", (Func<HttpContext, Task<IResult>>)(http => AuthenticatedAsync(http, () => TunnelAsync(http, ct))));
        app.MapFallback((HttpContext http) => Error(StatusCodes.Status404NotFound, $"no endpoint {http.Request.Method} {http.Request.Path}; the join API serves /cacerts, /v1/config, /v1/certificates, /v1/server-join, /v1/readyz and /v1/tunnel"));
        await app.StartAsync(ct);
        _log.JoinListening(_config.SupervisorPort);
        try
        {
            await Task.Delay(Timeout.Infinite, ct);
        }
        catch (OperationCanceledException)
        {
        }

        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await app.StopAsync(stop.Token);
    }

    private ClusterConfigResponse ClusterConfig(HttpContext http)
    {
        var host = http.Request.Host.Host;
        var hostPart = IPAddress.TryParse(host, out var ip) && ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{host}]" : host;
        return new ClusterConfigResponse
        {
            ClusterCidr = _config.ClusterCidr.ToString(),
            ServiceCidr = _config.ServiceCidr.ToString(),
            ClusterDns = _config.ClusterDns.ToString(),
            ClusterDomain = _config.ClusterDomain,
            PluginSettings = _config.Sources.Where(kv => kv.Key.ClusterWide)
                .GroupBy(kv => kv.Key.Plugin, StringComparer.Ordinal)
                .ToDictionary(g => g.Key, g => g.ToDictionary(kv => kv.Key.Key, kv => Configuration.Setting.PlainText(kv.Value.Value), StringComparer.Ordinal), StringComparer.Ordinal),
            ServerUrl = $"https://{hostPart}:{_config.HttpsListenPort}",
            ServerNodeName = _config.NodeName,
            PodCidr = null,
            DisableCloudController = _config.DisableCloudController,
            LoadBalancer = LoadBalancer,
            Ingress = Ingress,
        };
    }

    private IResult Authenticated(HttpContext http, Func<IResult> next) =>
        Authenticate(http) is { } rejection ? rejection : next();

    private async Task<IResult> AuthenticatedAsync(HttpContext http, Func<Task<IResult>> next) =>
        Authenticate(http) is { } rejection ? rejection : await next();

    /// <summary>Null when the request carries a valid token; otherwise the 401 to send.</summary>
    private IResult? Authenticate(HttpContext http)
    {
        var secret = PresentedSecret(http);
        var remote = http.Connection.RemoteIpAddress?.ToString() ?? "?";
        if (secret is null)
        {
            _log.JoinRejected(remote, http.Request.Path, "no credentials");
            return Error(StatusCodes.Status401Unauthorized, "authentication required: send the token as HTTP basic auth (user node) or a bearer token");
        }

        if (ClusterToken.SecretEquals(secret, _serverToken.Password))
        {
            return null;
        }

        switch (_joinTokens.Check(secret, out var record))
        {
            case TokenCheck.Valid:
                return null;
            case TokenCheck.Expired:
                _log.JoinRejected(remote, http.Request.Path, $"join token {record!.Id} expired");
                return Error(StatusCodes.Status401Unauthorized, $"join token {record.Id} expired at {record.Expires:u}; create a new one with 'coracle token create'");
            default:
                _log.JoinRejected(remote, http.Request.Path, "invalid token");
                return Error(StatusCodes.Status401Unauthorized, "invalid token");
        }
    }

    /// <summary>The secret of the request's credentials (HTTP basic <c>node:SECRET</c> or bearer), or null.</summary>
    private static string? PresentedSecret(HttpContext http)
    {
        var header = http.Request.Headers.Authorization.ToString();
        string? secret = null;
        if (header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            secret = header["Bearer ".Length..].Trim();
        }
        else if (header.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase))
        {
            try
            {
                var pair = Encoding.UTF8.GetString(Convert.FromBase64String(header["Basic ".Length..].Trim()));
                var colon = pair.IndexOf(':', StringComparison.Ordinal);
                secret = colon >= 0 && pair[..colon] == "node" ? pair[(colon + 1)..] : null;
            }
            catch (FormatException)
            {
                secret = null;
            }
        }

        return secret;
    }

    private async Task<IResult> SignAsync(HttpContext http)
    {
        if (http.Request.ContentLength > MaxBodyBytes)
        {
            return BodyTooLarge();
        }

        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
        {
            limit.MaxRequestBodySize = MaxBodyBytes;
        }

        CertificatesRequest? request;
        try
        {
            request = await JsonSerializer.DeserializeAsync<CertificatesRequest>(http.Request.Body, Json, http.RequestAborted);
        }
        catch (JsonException ex)
        {
            return Error(StatusCodes.Status400BadRequest, $"the body is not valid JSON: {ex.Message}");
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return BodyTooLarge();
        }

        if (request is null)
        {
            return Error(StatusCodes.Status400BadRequest, "the body is empty; send {role, nodeName, nodePassword, nodeIps, kubeletServingCsr, kubeletClientCsr, kubeProxyClientCsr, controllerClientCsr}");
        }

        if (request.Role is { } role && role != AgentRole)
        {
            return Error(StatusCodes.Status400BadRequest, $"role '{role}' is not a role the join API grants: it joins agents only (role '{AgentRole}', the default)");
        }

        if (string.IsNullOrEmpty(request.NodeName) || request.NodeName.Length > 253 || !NodeNamePattern().IsMatch(request.NodeName))
        {
            return Error(StatusCodes.Status400BadRequest, $"nodeName '{request.NodeName}' is not a valid node name (lower-case letters, digits, '-' and '.')");
        }

        if (request.NodeName.Length > NodePasswords.MaxNodeName)
        {
            return Error(StatusCodes.Status400BadRequest, $"nodeName '{request.NodeName}' is longer than {NodePasswords.MaxNodeName} characters, too long for its node password Secret; give the agent a shorter --node-name");
        }

        if (string.IsNullOrEmpty(request.NodePassword))
        {
            return Error(StatusCodes.Status400BadRequest, "nodePassword is missing; send the agent's node password (coracle agent keeps it in DATA_DIR/agent/node-password)");
        }

        if (request.NodePassword.Length > MaxPasswordLength)
        {
            return Error(StatusCodes.Status400BadRequest, $"nodePassword is longer than {MaxPasswordLength} characters; send the agent's node password (32 hex digits)");
        }

        var ips = new List<IPAddress>();
        foreach (var text in request.NodeIps ?? [])
        {
            if (!IPAddress.TryParse(text, out var ip))
            {
                return Error(StatusCodes.Status400BadRequest, $"nodeIps: '{text}' is not an IP address");
            }

            ips.Add(ip);
        }

        var keys = new Dictionary<string, PublicKey>();
        foreach (var (field, pem) in new[] { ("kubeletServingCsr", request.KubeletServingCsr), ("kubeletClientCsr", request.KubeletClientCsr), ("kubeProxyClientCsr", request.KubeProxyClientCsr), ("controllerClientCsr", request.ControllerClientCsr) })
        {
            if (string.IsNullOrEmpty(pem))
            {
                return Error(StatusCodes.Status400BadRequest, $"{field} is missing; send a PEM certificate signing request");
            }

            var csr = CsrKey(field, pem);
            if (csr.Key is null)
            {
                return Error(StatusCodes.Status400BadRequest, csr.Error);
            }

            keys[field] = csr.Key;
        }

        var name = request.NodeName;
        if (await NodePasswordRefusalAsync(name, request.NodePassword, http) is { } refused)
        {
            return refused;
        }

        var now = _time.GetUtcNow();
        using var serverCa = _certs.LoadCa(ClusterCertificates.ServerCa);
        using var clientCa = _certs.LoadCa(ClusterCertificates.ClientCa);
        var servingSubject = new CertSubject(name, [], ["localhost", name], [IPAddress.Loopback, IPAddress.IPv6Loopback, .. ips]);
        using var serving = CertificateFactory.Sign(serverCa, servingSubject, keys["kubeletServingCsr"], CertUsage.Server, now, _certs.LeafLifetime);
        using var kubelet = CertificateFactory.Sign(clientCa, CertSubject.Named($"system:node:{name}", "system:nodes"), keys["kubeletClientCsr"], CertUsage.Client, now, _certs.LeafLifetime);
        using var proxy = CertificateFactory.Sign(clientCa, CertSubject.Named("system:kube-proxy"), keys["kubeProxyClientCsr"], CertUsage.Client, now, _certs.LeafLifetime);
        using var controller = CertificateFactory.Sign(clientCa, CertSubject.Named(Kubernetes.ClusterRbac.ControllerUser), keys["controllerClientCsr"], CertUsage.Client, now, _certs.LeafLifetime);
        _log.JoinSigned(name, string.Join(",", ips.Select(i => i.ToString())), http.Connection.RemoteIpAddress?.ToString() ?? "?");
        return Results.Json(new CertificatesResponse
        {
            KubeletServing = serving.ExportCertificatePem() + "\n",
            KubeletClient = kubelet.ExportCertificatePem() + "\n",
            KubeProxyClient = proxy.ExportCertificatePem() + "\n",
            ControllerClient = controller.ExportCertificatePem() + "\n",
            ServerCa = serverCa.CertificatePem,
            ClientCa = clientCa.CertificatePem,
        }, Json);
    }

    /// <summary>
    /// Checks (at a first join, stores) the node's password, for a join and for a tunnel alike: null when accepted,
    /// else the answer — 403 when the name is the server's own or holds another machine's password, 503 while it cannot
    /// be decided.
    /// </summary>
    private async Task<IResult?> NodePasswordRefusalAsync(string node, string password, HttpContext http)
    {
        if (node == _config.NodeName)
        {
            // The server's own node has no agent password: no agent may join or tunnel under its name.
            _log.JoinRejected(http.Connection.RemoteIpAddress?.ToString() ?? "?", http.Request.Path, $"node name {node} is the server's own");
            return Error(StatusCodes.Status403Forbidden, $"node name {node} is this server's own node; give the agent another --node-name");
        }

        var check = await _nodePasswords.CheckAsync(node, password, http.RequestAborted);
        return check.Verdict switch
        {
            NodePasswordVerdict.Conflict => Error(StatusCodes.Status403Forbidden, check.Message),
            NodePasswordVerdict.Unavailable => Error(StatusCodes.Status503ServiceUnavailable, check.Message),
            _ => null,
        };
    }

    private async Task<IResult> TunnelAsync(HttpContext http, CancellationToken stopping)
    {
        if (!http.WebSockets.IsWebSocketRequest)
        {
            return Error(StatusCodes.Status400BadRequest, "/v1/tunnel needs a websocket upgrade");
        }

        var node = http.Request.Headers["X-Coracle-Node"].ToString();
        if (node.Length == 0 || !NodeNamePattern().IsMatch(node))
        {
            return Error(StatusCodes.Status400BadRequest, "the X-Coracle-Node header must carry the agent's node name");
        }

        var addresses = http.Request.Headers["X-Coracle-Addresses"].ToString()
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(a => IPAddress.TryParse(a, out _))
            .ToList();
        if (http.Connection.RemoteIpAddress is { } remote)
        {
            addresses.Add((remote.IsIPv4MappedToIPv6 ? remote.MapToIPv4() : remote).ToString());
        }

        if (!http.WebSockets.WebSocketRequestedProtocols.Contains(TunnelMux.SubProtocol, StringComparer.Ordinal))
        {
            // An agent older than this server speaks tunnel protocol version 1 (no flow control): refuse it clearly
            // instead of letting its frames fail later.
            var reason = $"the agent does not speak {TunnelMux.SubProtocol} (a Coracle agent older than this server?); upgrade the agent";
            _log.TunnelVersionRefused(node, reason);
            return Error(StatusCodes.Status400BadRequest, reason);
        }

        // The node's password (the one its join stored): a holder of the token cannot take over another node's tunnel.
        var nodePassword = http.Request.Headers["X-Coracle-Node-Password"].ToString();
        if (nodePassword.Length is 0 or > MaxPasswordLength)
        {
            return Error(StatusCodes.Status400BadRequest, "the X-Coracle-Node-Password header must carry the agent's node password (DATA_DIR/agent/node-password)");
        }

        if (await NodePasswordRefusalAsync(node, nodePassword, http) is { } refused)
        {
            return refused;
        }

        var socket = await http.WebSockets.AcceptWebSocketAsync(new WebSocketAcceptContext { SubProtocol = TunnelMux.SubProtocol });
        await using var mux = new TunnelMux(socket, $"node {node}", _log);
        var session = new TunnelSession(node, addresses.Distinct().ToList(), mux);
        _tunnels.Add(session);
        _log.TunnelConnected(node, string.Join(",", session.Addresses));
        try
        {
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(stopping, http.RequestAborted);
            await mux.RunAsync(linked.Token);
        }
        finally
        {
            _tunnels.Remove(session);
            _log.TunnelDisconnected(node);
        }

        return Results.Empty;
    }

    private static IResult Error(int status, string message) => Results.Json(new ErrorResponse(message), Json, statusCode: status);

    private static IResult BodyTooLarge() =>
        Error(StatusCodes.Status413PayloadTooLarge, $"the body is larger than {MaxBodyBytes} bytes; a join request (four CSRs) is a few kilobytes");

    /// <summary>
    /// The CSR's public key, or the one-line error: the key type is checked first (so an unsupported algorithm is named
    /// as such), then the CSR's signature against that key.
    /// </summary>
    private static CsrCheck CsrKey(string field, string pem)
    {
        CertificateRequest csr;
        try
        {
            csr = CertificateRequest.LoadSigningRequestPem(pem, HashAlgorithmName.SHA256, CertificateRequestLoadOptions.SkipSignatureValidation);
        }
        catch (Exception ex) when (ex is CryptographicException or ArgumentException)
        {
            return CsrCheck.Fail($"{field} is not a valid PEM certificate signing request ({ex.Message})");
        }

        if (KeyProblem(csr.PublicKey) is { } problem)
        {
            return CsrCheck.Fail($"{field}: the key is {problem}; use ECDSA P-256, P-384 or P-521, or RSA of at least 2048 bits");
        }

        try
        {
            CertificateRequest.LoadSigningRequestPem(pem, HashAlgorithmName.SHA256, CertificateRequestLoadOptions.Default);
        }
        catch (Exception ex) when (ex is CryptographicException or ArgumentException)
        {
            return CsrCheck.Fail($"{field}: the request's signature does not verify with its own public key ({ex.Message}); sign the CSR with the key it carries");
        }

        return new CsrCheck(csr.PublicKey, "");
    }

    /// <summary>Null for a key the cluster's TLS peers accept (ECDSA on P-256/P-384/P-521, RSA of 2048 bits or more); else what the key is.</summary>
    private static string? KeyProblem(PublicKey key)
    {
        switch (key.Oid.Value)
        {
            case "1.2.840.10045.2.1":
                string curve;
                try
                {
                    curve = System.Formats.Asn1.AsnDecoder.ReadObjectIdentifier(key.EncodedParameters?.RawData ?? [], System.Formats.Asn1.AsnEncodingRules.DER, out _);
                }
                catch (System.Formats.Asn1.AsnContentException)
                {
                    return "ECDSA without a named curve";
                }

                return curve switch
                {
                    "1.2.840.10045.3.1.7" or "1.3.132.0.34" or "1.3.132.0.35" => null,
                    _ => $"ECDSA on curve {new Oid(curve).FriendlyName ?? curve}",
                };
            case "1.2.840.113549.1.1.1":
                int bits;
                try
                {
                    bits = key.GetRSAPublicKey()?.KeySize ?? 0;
                }
                catch (CryptographicException)
                {
                    return "RSA that cannot be read";
                }

                return bits >= 2048 ? null : $"RSA of {bits} bits";
            case "1.3.101.112":
                return "Ed25519";
            case "1.3.101.113":
                return "Ed448";
            case "1.2.840.10040.4.1":
                return "DSA";
            default:
                return $"of algorithm {key.Oid.Value}";
        }
    }

    private sealed record CsrCheck(PublicKey? Key, string Error)
    {
        public static CsrCheck Fail(string error) => new(null, error);
    }

    // A DNS subdomain, as Kubernetes requires of node names (and of the node password Secret's name).
    [GeneratedRegex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")]
    private static partial Regex NodeNamePattern();
}
