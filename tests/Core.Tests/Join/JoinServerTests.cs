using System.Formats.Asn1;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using Coracle.Core.Identity;
using Coracle.Core.Join;

namespace Coracle.Core.Tests.Join;

/// <summary>
/// The join API served for real on a free port (<see cref="JoinServerFixture"/>): every refusal of
/// <c>GET /v1/config</c> and <c>POST /v1/certificates</c> with its exact <c>{"error": "..."}</c> text, and the
/// certificates a valid request gets. Where the text ends with a message of the framework (JSON parser, PEM
/// loader), Coracle's part is asserted exactly and the framework's part only for being there.
/// </summary>
public sealed class JoinServerTests(JoinServerFixture server) : IClassFixture<JoinServerFixture>
{
    private const string AuthenticationRequired = "authentication required: send the token as HTTP basic auth (user node) or a bearer token";
    private const string ServerAuth = "1.3.6.1.5.5.7.3.1";
    private const string ClientAuth = "1.3.6.1.5.5.7.3.2";
    private const string OrganizationOid = "2.5.4.10";

    private static readonly string[] CsrFields = ["kubeletServingCsr", "kubeletClientCsr", "kubeProxyClientCsr", "controllerClientCsr"];

    private string ServerPassword => server.ServerToken.Password;

    private static AuthenticationHeaderValue Bearer(string secret) => new("Bearer", secret);

    private static AuthenticationHeaderValue Basic(string user, string secret) => new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{secret}")));

    private async Task<(HttpStatusCode Status, string Body)> SendAsync(HttpMethod method, string path, AuthenticationHeaderValue? auth, string? body = null)
    {
        using var request = new HttpRequestMessage(method, path);
        request.Headers.Authorization = auth;
        if (body is not null)
        {
            request.Content = new StringContent(body, Encoding.UTF8, "application/json");
        }

        using var answer = await server.Client.SendAsync(request);
        return (answer.StatusCode, await answer.Content.ReadAsStringAsync());
    }

    private static string ErrorOf(string body)
    {
        using var json = JsonDocument.Parse(body);
        Assert.Equal(JsonValueKind.Object, json.RootElement.ValueKind);
        Assert.Single(json.RootElement.EnumerateObject());
        return json.RootElement.GetProperty("error").GetString()!;
    }

    private async Task<string> RefusedAsync(HttpStatusCode expected, HttpMethod method, string path, AuthenticationHeaderValue? auth, string? body = null)
    {
        var (status, text) = await SendAsync(method, path, auth, body);
        Assert.Equal(expected, status);
        return ErrorOf(text);
    }

    private Task<string> CertificatesRefusedAsync(string body) =>
        RefusedAsync(HttpStatusCode.BadRequest, HttpMethod.Post, "/v1/certificates", Bearer(ServerPassword), body);

    private static string EcCsr(ECDsa key) => new CertificateRequest("CN=ignored", key, HashAlgorithmName.SHA256).CreateSigningRequestPem();

    private static string RsaCsr(RSA key) => new CertificateRequest("CN=ignored", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1).CreateSigningRequestPem();

    /// <summary>A body with four valid ECDSA CSRs, then <paramref name="change"/> applied (null removes a field).</summary>
    private static string Body(params (string Field, object? Value)[] change)
    {
        var fields = new Dictionary<string, object?>
        {
            ["role"] = "agent",
            ["nodeName"] = JoinServerFixture.SeededNode,
            ["nodePassword"] = JoinServerFixture.SeededPassword,
            ["nodeIps"] = new[] { "10.0.0.7" },
        };
        foreach (var field in CsrFields)
        {
            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            fields[field] = EcCsr(key);
        }

        foreach (var (field, value) in change)
        {
            if (value is null)
            {
                fields.Remove(field);
            }
            else
            {
                fields[field] = value;
            }
        }

        return JsonSerializer.Serialize(fields);
    }

    [Theory]
    [InlineData("GET", "/v1/config")]
    [InlineData("POST", "/v1/certificates")]
    [InlineData("GET", "/v1/readyz")]
    public async Task Authenticate_NoCredentials_Answers401AuthenticationRequired(string method, string path)
    {
        var error = await RefusedAsync(HttpStatusCode.Unauthorized, new HttpMethod(method), path, null, method == "POST" ? Body() : null);

        Assert.Equal(AuthenticationRequired, error);
    }

    [Theory]
    [InlineData("GET", "/v1/config")]
    [InlineData("POST", "/v1/certificates")]
    public async Task Authenticate_WrongBearerToken_Answers401InvalidToken(string method, string path)
    {
        var error = await RefusedAsync(HttpStatusCode.Unauthorized, new HttpMethod(method), path, Bearer(ServerPassword + "x"), method == "POST" ? Body() : null);

        Assert.Equal("invalid token", error);
    }

    [Theory]
    [InlineData("GET", "/v1/config")]
    [InlineData("POST", "/v1/certificates")]
    public async Task Authenticate_WrongBasicPassword_Answers401InvalidToken(string method, string path)
    {
        var error = await RefusedAsync(HttpStatusCode.Unauthorized, new HttpMethod(method), path, Basic("node", "not-the-secret"), method == "POST" ? Body() : null);

        Assert.Equal("invalid token", error);
    }

    [Fact]
    public async Task Authenticate_BasicWithAnotherUserThanNode_Answers401AuthenticationRequired()
    {
        var error = await RefusedAsync(HttpStatusCode.Unauthorized, HttpMethod.Get, "/v1/config", Basic("admin", ServerPassword));

        Assert.Equal(AuthenticationRequired, error);
    }

    [Fact]
    public async Task Authenticate_BasicNotBase64_Answers401AuthenticationRequired()
    {
        var error = await RefusedAsync(HttpStatusCode.Unauthorized, HttpMethod.Get, "/v1/config", new AuthenticationHeaderValue("Basic", "%%%not-base64%%%"));

        Assert.Equal(AuthenticationRequired, error);
    }

    [Fact]
    public async Task Authenticate_OtherScheme_Answers401AuthenticationRequired()
    {
        var error = await RefusedAsync(HttpStatusCode.Unauthorized, HttpMethod.Get, "/v1/config", new AuthenticationHeaderValue("Digest", ServerPassword));

        Assert.Equal(AuthenticationRequired, error);
    }

    [Fact]
    public async Task Authenticate_FullK10TokenAsBearer_Answers401InvalidToken()
    {
        var error = await RefusedAsync(HttpStatusCode.Unauthorized, HttpMethod.Get, "/v1/config", Bearer(server.ServerToken.ToString()));

        Assert.Equal("invalid token", error);
    }

    [Fact]
    public async Task Authenticate_ExpiredJoinToken_Answers401SayingWhenItExpired()
    {
        var record = server.ExpiredRecord;

        var error = await RefusedAsync(HttpStatusCode.Unauthorized, HttpMethod.Get, "/v1/config", Basic("node", server.ExpiredJoinToken));

        Assert.Equal($"join token {record.Id} expired at {record.Expires:u}; create a new one with 'coracle token create'", error);
    }

    [Fact]
    public async Task Authenticate_JoinTokenWithWrongSecret_Answers401InvalidToken()
    {
        var id = server.ValidJoinToken.Split('.')[0];

        var error = await RefusedAsync(HttpStatusCode.Unauthorized, HttpMethod.Get, "/v1/config", Bearer($"{id}.wrongsecret"));

        Assert.Equal("invalid token", error);
    }

    [Fact]
    public async Task GetConfig_ValidJoinTokenAsBasic_AnswersTheClusterValues()
    {
        var (status, body) = await SendAsync(HttpMethod.Get, "/v1/config", Basic("node", server.ValidJoinToken));

        Assert.Equal(HttpStatusCode.OK, status);
        using var json = JsonDocument.Parse(body);
        var root = json.RootElement;
        Assert.Equal($"https://127.0.0.1:{server.ApiPort}", root.GetProperty("serverUrl").GetString());
        Assert.Equal("srv", root.GetProperty("serverNodeName").GetString());
        Assert.Equal("10.42.0.0/16", root.GetProperty("clusterCidr").GetString());
        Assert.Equal("10.43.0.0/16", root.GetProperty("serviceCidr").GetString());
        Assert.Equal("10.43.0.10", root.GetProperty("clusterDns").GetString());
        Assert.Equal("cluster.local", root.GetProperty("clusterDomain").GetString());
        Assert.Equal(JsonValueKind.Null, root.GetProperty("podCidr").ValueKind);
    }

    [Fact]
    public async Task GetConfig_ServerTokenAsBearer_Answers200()
    {
        var (status, _) = await SendAsync(HttpMethod.Get, "/v1/config", Bearer(ServerPassword));

        Assert.Equal(HttpStatusCode.OK, status);
    }

    [Fact]
    public async Task GetCacerts_NoCredentials_AnswersTheServerCaFile()
    {
        var (status, body) = await SendAsync(HttpMethod.Get, "/cacerts", null);

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(await File.ReadAllTextAsync(server.Certificates.CertFile(ClusterCertificates.ServerCa)), body);
    }

    [Fact]
    public async Task Fallback_UnknownPath_Answers404ListingTheEndpoints()
    {
        var error = await RefusedAsync(HttpStatusCode.NotFound, HttpMethod.Get, "/v1/nope", Bearer(ServerPassword));

        Assert.Equal("no endpoint GET /v1/nope; the join API serves /cacerts, /v1/config, /v1/certificates, /v1/server-join, /v1/readyz and /v1/tunnel", error);
    }

    [Fact]
    public async Task GetTunnel_WithoutWebsocketUpgrade_Answers400()
    {
        var error = await RefusedAsync(HttpStatusCode.BadRequest, HttpMethod.Get, "/v1/tunnel", Bearer(ServerPassword));

        Assert.Equal("/v1/tunnel needs a websocket upgrade", error);
    }

    [Fact]
    public async Task PostCertificates_EmptyBody_Answers400NotValidJson()
    {
        var error = await CertificatesRefusedAsync("");

        Assert.StartsWith("the body is not valid JSON: ", error, StringComparison.Ordinal);
        Assert.True(error.Length > "the body is not valid JSON: ".Length, error);
    }

    [Fact]
    public async Task PostCertificates_JsonNull_Answers400BodyIsEmpty()
    {
        var error = await CertificatesRefusedAsync("null");

        Assert.Equal("the body is empty; send {role, nodeName, nodePassword, nodeIps, kubeletServingCsr, kubeletClientCsr, kubeProxyClientCsr, controllerClientCsr}", error);
    }

    [Theory]
    [InlineData("{not json")]
    [InlineData("[1, 2]")]
    [InlineData("{\"nodeName\": 42}")]
    [InlineData("{\"nodeName\": \"agent-1\", \"nodeIps\": \"10.0.0.7\"}")]
    public async Task PostCertificates_InvalidJson_Answers400NotValidJson(string body)
    {
        var error = await CertificatesRefusedAsync(body);

        Assert.StartsWith("the body is not valid JSON: ", error, StringComparison.Ordinal);
        Assert.True(error.Length > "the body is not valid JSON: ".Length, error);
    }

    [Theory]
    [InlineData("Agent-1")]
    [InlineData("agent_1")]
    [InlineData("-agent")]
    [InlineData("agent-")]
    [InlineData("agent 1")]
    [InlineData("agent..1")]
    [InlineData("agent.-1")]
    [InlineData("")]
    public async Task PostCertificates_BadNodeName_Answers400(string name)
    {
        var error = await CertificatesRefusedAsync(Body(("nodeName", name)));

        Assert.Equal($"nodeName '{name}' is not a valid node name (lower-case letters, digits, '-' and '.')", error);
    }

    [Fact]
    public async Task PostCertificates_NodeNameMissing_Answers400()
    {
        var error = await CertificatesRefusedAsync(Body(("nodeName", null)));

        Assert.Equal("nodeName '' is not a valid node name (lower-case letters, digits, '-' and '.')", error);
    }

    [Fact]
    public async Task PostCertificates_NodeNameLongerThan253_Answers400()
    {
        var name = new string('a', 254);

        var error = await CertificatesRefusedAsync(Body(("nodeName", name)));

        Assert.Equal($"nodeName '{name}' is not a valid node name (lower-case letters, digits, '-' and '.')", error);
    }

    [Theory]
    [InlineData("10.0.0.300")]
    [InlineData("agent-1")]
    [InlineData("")]
    [InlineData("10.0.0.0/24")]
    public async Task PostCertificates_BadNodeIp_Answers400(string ip)
    {
        var error = await CertificatesRefusedAsync(Body(("nodeIps", new[] { "10.0.0.7", ip })));

        Assert.Equal($"nodeIps: '{ip}' is not an IP address", error);
    }

    [Theory]
    [InlineData("kubeletServingCsr")]
    [InlineData("kubeletClientCsr")]
    [InlineData("kubeProxyClientCsr")]
    [InlineData("controllerClientCsr")]
    public async Task PostCertificates_CsrMissing_Answers400NamingTheField(string field)
    {
        var error = await CertificatesRefusedAsync(Body((field, null)));

        Assert.Equal($"{field} is missing; send a PEM certificate signing request", error);
    }

    [Theory]
    [InlineData("kubeletServingCsr")]
    [InlineData("controllerClientCsr")]
    public async Task PostCertificates_CsrEmptyString_Answers400NamingTheField(string field)
    {
        var error = await CertificatesRefusedAsync(Body((field, "")));

        Assert.Equal($"{field} is missing; send a PEM certificate signing request", error);
    }

    [Theory]
    [InlineData("kubeletServingCsr")]
    [InlineData("kubeletClientCsr")]
    [InlineData("kubeProxyClientCsr")]
    [InlineData("controllerClientCsr")]
    public async Task PostCertificates_CsrNotPem_Answers400NamingTheField(string field)
    {
        var error = await CertificatesRefusedAsync(Body((field, "this is not a CSR")));

        Assert.StartsWith($"{field} is not a valid PEM certificate signing request (", error, StringComparison.Ordinal);
        Assert.EndsWith(")", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task PostCertificates_CertificateInsteadOfCsr_Answers400NotACsr()
    {
        var caPem = await File.ReadAllTextAsync(server.Certificates.CertFile(ClusterCertificates.ServerCa));

        var error = await CertificatesRefusedAsync(Body(("kubeletClientCsr", caPem)));

        Assert.StartsWith("kubeletClientCsr is not a valid PEM certificate signing request (", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task PostCertificates_CsrSignatureDoesNotMatchItsKey_Answers400NotACsr()
    {
        using var claimed = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var signer = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var forged = new CertificateRequest(new X500DistinguishedName("CN=forged"), new PublicKey(claimed), HashAlgorithmName.SHA256)
            .CreateSigningRequestPem(X509SignatureGenerator.CreateForECDsa(signer));

        var error = await CertificatesRefusedAsync(Body(("kubeProxyClientCsr", forged)));

        Assert.StartsWith("kubeProxyClientCsr: the request's signature does not verify with its own public key (", error, StringComparison.Ordinal);
        Assert.EndsWith("); sign the CSR with the key it carries", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("kubeletServingCsr")]
    [InlineData("kubeletClientCsr")]
    [InlineData("kubeProxyClientCsr")]
    [InlineData("controllerClientCsr")]
    public async Task PostCertificates_RsaKeyShorterThan2048Bits_Answers400(string field)
    {
        using var weak = RSA.Create(1024);

        var error = await CertificatesRefusedAsync(Body((field, RsaCsr(weak))));

        Assert.Equal($"{field}: the key is RSA of 1024 bits; use ECDSA P-256, P-384 or P-521, or RSA of at least 2048 bits", error);
    }

    [Theory]
    [InlineData("kubeletServingCsr")]
    [InlineData("controllerClientCsr")]
    public async Task PostCertificates_Ed25519Key_Answers400NamingTheKeyType(string field)
    {
        var error = await CertificatesRefusedAsync(Body((field, Ed25519Csr())));

        Assert.Equal($"{field}: the key is Ed25519; use ECDSA P-256, P-384 or P-521, or RSA of at least 2048 bits", error);
    }

    [Fact]
    public async Task PostCertificates_EcdsaOnACurveGoCannotVerify_Answers400NamingTheCurve()
    {
        using var brainpool = ECDsa.Create(ECCurve.NamedCurves.brainpoolP256r1);

        var error = await CertificatesRefusedAsync(Body(("kubeletClientCsr", EcCsr(brainpool))));

        Assert.Equal("kubeletClientCsr: the key is ECDSA on curve brainpoolP256r1; use ECDSA P-256, P-384 or P-521, or RSA of at least 2048 bits", error);
    }

    [Fact]
    public async Task PostCertificates_BodyOver64KiBWithContentLength_Answers413()
    {
        var body = Body(("padding", new string('x', JoinServer.MaxBodyBytes)));

        var error = await RefusedAsync(HttpStatusCode.RequestEntityTooLarge, HttpMethod.Post, "/v1/certificates", Bearer(ServerPassword), body);

        Assert.Equal("the body is larger than 65536 bytes; a join request (four CSRs) is a few kilobytes", error);
    }

    [Fact]
    public async Task PostCertificates_BodyOver64KiBChunked_Answers413()
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/certificates");
        request.Headers.Authorization = Bearer(ServerPassword);
        request.Content = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes(Body(("padding", new string('x', JoinServer.MaxBodyBytes))))));
        request.Headers.TransferEncodingChunked = true;

        using var answer = await server.Client.SendAsync(request);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, answer.StatusCode);
        Assert.Equal("the body is larger than 65536 bytes; a join request (four CSRs) is a few kilobytes", ErrorOf(await answer.Content.ReadAsStringAsync()));
    }

    [Theory]
    [InlineData("server")]
    [InlineData("control-plane")]
    [InlineData("Agent")]
    [InlineData("")]
    public async Task PostCertificates_UnknownRole_Answers400(string role)
    {
        var error = await CertificatesRefusedAsync(Body(("role", role)));

        Assert.Equal($"role '{role}' is not a role the join API grants: it joins agents only (role 'agent', the default)", error);
    }

    [Fact]
    public async Task PostCertificates_NodePasswordMissing_Answers400()
    {
        var error = await CertificatesRefusedAsync(Body(("nodePassword", null)));

        Assert.Equal("nodePassword is missing; send the agent's node password (coracle agent keeps it in DATA_DIR/agent/node-password)", error);
    }

    [Fact]
    public async Task PostCertificates_NodePasswordTooLong_Answers400()
    {
        var error = await CertificatesRefusedAsync(Body(("nodePassword", new string('a', 513))));

        Assert.Equal("nodePassword is longer than 512 characters; send the agent's node password (32 hex digits)", error);
    }

    [Fact]
    public async Task PostCertificates_NodeNameTooLongForItsSecret_Answers400()
    {
        var name = new string('a', 232);

        var error = await CertificatesRefusedAsync(Body(("nodeName", name)));

        Assert.Equal($"nodeName '{name}' is longer than 231 characters, too long for its node password Secret; give the agent a shorter --node-name", error);
    }

    [Fact]
    public async Task PostCertificates_TheServersOwnNodeName_Answers403()
    {
        var error = await RefusedAsync(HttpStatusCode.Forbidden, HttpMethod.Post, "/v1/certificates", Bearer(ServerPassword), Body(("nodeName", "srv")));

        Assert.Equal("node name srv is this server's own node; give the agent another --node-name", error);
    }

    [Fact]
    public async Task PostCertificates_KubeApiServerDownAndNodeUnknown_Answers503Retry()
    {
        var error = await RefusedAsync(HttpStatusCode.ServiceUnavailable, HttpMethod.Post, "/v1/certificates", Bearer(ServerPassword), Body(("nodeName", "agent-new")));

        Assert.StartsWith("cannot check the node password of agent-new now: kube-apiserver cannot tell yet whether node agent-new already has another password (GET /api/v1/namespaces/kube-system/secrets/agent-new.node-password.coracle: ", error, StringComparison.Ordinal);
        Assert.EndsWith("); retry when the server's kube-apiserver is up", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task PostCertificates_KubeApiServerDownAndAnotherPassword_Answers503NeverAccepts()
    {
        var error = await RefusedAsync(HttpStatusCode.ServiceUnavailable, HttpMethod.Post, "/v1/certificates", Bearer(ServerPassword), Body(("nodePassword", "another-password")));

        Assert.StartsWith("cannot check the node password of agent-1 now: node agent-1's password differs from the one this server last accepted and kube-apiserver cannot tell yet whether node agent-1 still exists (GET /api/v1/namespaces/kube-system/secrets/agent-1.node-password.coracle: ", error, StringComparison.Ordinal);
        Assert.EndsWith("); retry when the server's kube-apiserver is up", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Authenticate_RevokedJoinToken_Answers401InvalidToken()
    {
        var error = await RefusedAsync(HttpStatusCode.Unauthorized, HttpMethod.Get, "/v1/config", Basic("node", server.RevokedJoinToken));

        Assert.Equal("invalid token", error);
    }

    [Fact]
    public async Task Authenticate_ValidJoinTokenReplayed_AcceptedUntilItExpires()
    {
        // Join tokens are reusable until they expire, as K3s's bootstrap tokens: a replayed token joins another node,
        // and only the node password keeps it from taking an existing node's name.
        var (first, _) = await SendAsync(HttpMethod.Post, "/v1/certificates", Basic("node", server.ValidJoinToken), Body());
        var (second, _) = await SendAsync(HttpMethod.Post, "/v1/certificates", Basic("node", server.ValidJoinToken), Body());

        Assert.Equal(HttpStatusCode.OK, first);
        Assert.Equal(HttpStatusCode.OK, second);
    }

    /// <summary>A CSR for an Ed25519 key, DER-built (.NET cannot sign with Ed25519); its signature is never looked at, as the key is refused first.</summary>
    private static string Ed25519Csr()
    {
        var writer = new AsnWriter(AsnEncodingRules.DER);
        using (writer.PushSequence())
        {
            using (writer.PushSequence())
            {
                writer.WriteInteger(0);
                writer.WriteEncodedValue(new X500DistinguishedName("CN=ed").RawData);
                using (writer.PushSequence())
                {
                    using (writer.PushSequence())
                    {
                        writer.WriteObjectIdentifier("1.3.101.112");
                    }

                    writer.WriteBitString(RandomNumberGenerator.GetBytes(32));
                }

                writer.WriteEncodedValue([0xA0, 0x00]);
            }

            using (writer.PushSequence())
            {
                writer.WriteObjectIdentifier("1.3.101.112");
            }

            writer.WriteBitString(RandomNumberGenerator.GetBytes(64));
        }

        return PemEncoding.WriteString("CERTIFICATE REQUEST", writer.Encode());
    }

    [Fact]
    public async Task PostCertificates_ValidCsrs_SignsTheirKeysWithTheServersSubjects()
    {
        using var servingKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var kubeletKey = RSA.Create(2048);
        using var proxyKey = ECDsa.Create(ECCurve.NamedCurves.nistP384);
        using var controllerKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var body = JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["nodeName"] = JoinServerFixture.SeededNode,
            ["nodePassword"] = JoinServerFixture.SeededPassword,
            ["nodeIps"] = new[] { "10.0.0.7", "fd00::7" },
            ["kubeletServingCsr"] = new CertificateRequest("CN=system:masters-please", servingKey, HashAlgorithmName.SHA256).CreateSigningRequestPem(),
            ["kubeletClientCsr"] = RsaCsr(kubeletKey),
            ["kubeProxyClientCsr"] = new CertificateRequest("CN=x", proxyKey, HashAlgorithmName.SHA384).CreateSigningRequestPem(),
            ["controllerClientCsr"] = EcCsr(controllerKey),
        });

        var (status, text) = await SendAsync(HttpMethod.Post, "/v1/certificates", Basic("node", server.ValidJoinToken), body);

        Assert.True(status == HttpStatusCode.OK, text);
        using var json = JsonDocument.Parse(text);
        var root = json.RootElement;
        var serverCaFile = await File.ReadAllTextAsync(server.Certificates.CertFile(ClusterCertificates.ServerCa));
        var clientCaFile = await File.ReadAllTextAsync(server.Certificates.CertFile(ClusterCertificates.ClientCa));
        Assert.Equal(serverCaFile, root.GetProperty("serverCa").GetString());
        Assert.Equal(clientCaFile, root.GetProperty("clientCa").GetString());
        using var serverCa = X509Certificate2.CreateFromPem(serverCaFile);
        using var clientCa = X509Certificate2.CreateFromPem(clientCaFile);

        using var serving = Issued(root, "kubeletServing", serverCa, servingKey, ServerAuth);
        Assert.Equal("agent-1", serving.GetNameInfo(X509NameType.SimpleName, forIssuer: false));
        Assert.Empty(Organizations(serving));
        var sans = serving.Extensions.OfType<X509SubjectAlternativeNameExtension>().Single();
        Assert.Equal(["agent-1", "localhost"], sans.EnumerateDnsNames().Order(StringComparer.Ordinal));
        Assert.Equal(
            new[] { IPAddress.Loopback, IPAddress.IPv6Loopback, IPAddress.Parse("10.0.0.7"), IPAddress.Parse("fd00::7") }.Select(a => a.ToString()).Order(StringComparer.Ordinal),
            sans.EnumerateIPAddresses().Select(a => a.ToString()).Order(StringComparer.Ordinal));

        using var kubelet = Issued(root, "kubeletClient", clientCa, kubeletKey, ClientAuth);
        Assert.Equal("system:node:agent-1", kubelet.GetNameInfo(X509NameType.SimpleName, forIssuer: false));
        Assert.Equal(["system:nodes"], Organizations(kubelet));

        using var proxy = Issued(root, "kubeProxyClient", clientCa, proxyKey, ClientAuth);
        Assert.Equal("system:kube-proxy", proxy.GetNameInfo(X509NameType.SimpleName, forIssuer: false));
        Assert.Empty(Organizations(proxy));

        using var controller = Issued(root, "controllerClient", clientCa, controllerKey, ClientAuth);
        Assert.Equal("system:coracle-controller", controller.GetNameInfo(X509NameType.SimpleName, forIssuer: false));
        Assert.Empty(Organizations(controller));

        Assert.False(ChainsTo(kubelet, serverCa), "a client certificate must not chain to the server CA");
    }

    /// <summary>The certificate in <paramref name="field"/>: chains to <paramref name="ca"/>, carries the CSR's key and one usage.</summary>
    private X509Certificate2 Issued(JsonElement root, string field, X509Certificate2 ca, AsymmetricAlgorithm key, string usage)
    {
        var pem = root.GetProperty(field).GetString()!;
        var cert = X509Certificate2.CreateFromPem(pem);
        Assert.True(ChainsTo(cert, ca), $"{field} does not chain to {ca.Subject}");
        Assert.Equal(ca.Subject, cert.Issuer);
        var spki = key switch
        {
            ECDsa ec => ec.ExportSubjectPublicKeyInfo(),
            RSA rsa => rsa.ExportSubjectPublicKeyInfo(),
            _ => throw new ArgumentException("unexpected key type", nameof(key)),
        };
        Assert.Equal(spki, cert.PublicKey.ExportSubjectPublicKeyInfo());
        var usages = cert.Extensions.OfType<X509EnhancedKeyUsageExtension>().Single().EnhancedKeyUsages.Cast<Oid>().Select(o => o.Value);
        Assert.Equal([usage], usages);
        Assert.False(cert.Extensions.OfType<X509BasicConstraintsExtension>().SingleOrDefault()?.CertificateAuthority ?? false);
        return cert;
    }

    private bool ChainsTo(X509Certificate2 cert, X509Certificate2 ca)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(ca);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.VerificationTime = server.Time.GetUtcNow().UtcDateTime;
        return chain.Build(cert);
    }

    private static List<string> Organizations(X509Certificate2 cert) =>
        cert.SubjectName.EnumerateRelativeDistinguishedNames()
            .Where(r => r.GetSingleElementType().Value == OrganizationOid)
            .Select(r => r.GetSingleElementValue()!)
            .ToList();
}
