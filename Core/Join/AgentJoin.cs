using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using Coracle.Core.Configuration;
using Coracle.Core.Hosting;
using Coracle.Core.Identity;
using Coracle.Core.Logging;
using Microsoft.Extensions.Logging;

namespace Coracle.Core.Join;

/// <summary>Joining failed for a reason retrying cannot fix (wrong token, wrong CA). The message is one line.</summary>
internal sealed class JoinException(string message) : Exception(message);

/// <summary>The server cannot decide now (503: its kube-apiserver is not up to check the node password); the agent retries.</summary>
internal sealed class JoinNotReadyException(string message) : Exception(message);

/// <summary>What an agent holds after joining: the cluster config, its folder and a way to reach the server.</summary>
internal sealed record AgentIdentity(ClusterConfigResponse Cluster, string Directory, ClusterToken Token, byte[] ServerCa, Uri Server);

/// <summary>
/// The agent's join recipe, step by step in one function: check the CA against the token, authenticate, send CSRs
/// (keys stay here), write certificates and kubeconfigs under <c>DATA/agent</c>.
/// </summary>
internal static class AgentJoin
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public static string AgentDir(string dataDir) => Path.Combine(dataDir, "agent");

    /// <summary>The agent's node password (K3s's <c>/etc/rancher/node/password</c>), 0600, made at the first join and kept.</summary>
    public static string NodePasswordFile(string dataDir) => Path.Combine(AgentDir(dataDir), "node-password");

    /// <summary>Reads the node password, or makes one (32 random hex digits) when the file does not exist yet.</summary>
    public static string EnsureNodePassword(string dataDir, string nodeName, ILogger log)
    {
        ArgumentNullException.ThrowIfNull(log);
        var file = NodePasswordFile(dataDir);
        if (File.Exists(file))
        {
            var text = File.ReadAllText(file).Trim();
            if (text.Length == 0 || text.Length > JoinServer.MaxPasswordLength)
            {
                throw new JoinException($"{file} holds no usable node password ({(text.Length == 0 ? "empty" : "too long")}); delete it to make a new one, and on the server 'kubectl -n kube-system delete secret {NodePasswords.SecretName(nodeName)}'");
            }

            return text;
        }

        FileUtil.PrivateDirectory(AgentDir(dataDir));
        var password = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        FileUtil.WriteAtomic(file, password + "\n", ClusterCertificates.KeyMode);
        log.NodePasswordCreated(file, nodeName);
        return password;
    }

    /// <summary>
    /// The supervisor URLs of the servers this agent's load balancer learned before (<c>DATA/agent/load-balancer.json</c>),
    /// at <paramref name="server"/>'s port, other than <paramref name="server"/> itself; none on a first join.
    /// </summary>
    internal static IReadOnlyList<Uri> KnownServers(CoracleConfig config, Uri server)
    {
        var file = Path.Combine(AgentDir(config.DataDir), "load-balancer.json");
        if (!File.Exists(file))
        {
            return [];
        }

        var known = Agent.ServerList.Load(file, Agent.ServerList.Format(server.Host.Trim('[', ']'), config.HttpsListenPort), Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
        return Agent.AgentTunnels.SupervisorUrls(known.Servers, known.Default, server).Where(u => u != server).ToList();
    }

    /// <summary>
    /// <paramref name="server"/> when it accepts a connection, else the first of <paramref name="others"/> that does, in
    /// rounds with backoff until one answers; <paramref name="server"/> at once when there are no others (the join's own
    /// retries then wait for it).
    /// </summary>
    internal static async Task<Uri> ReachableServerAsync(Uri server, IReadOnlyList<Uri> others, ILogger log, TimeProvider time, CancellationToken ct)
    {
        if (others.Count == 0)
        {
            return server;
        }

        for (var n = 0; ; n++)
        {
            string? reason = null;
            foreach (var candidate in new[] { server }.Concat(others))
            {
                using var tcp = new TcpClient();
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
                timeout.CancelAfter(TimeSpan.FromSeconds(3));
                try
                {
                    await tcp.ConnectAsync(candidate.Host.Trim('[', ']'), candidate.Port, timeout.Token);
                    if (candidate != server)
                    {
                        log.JoiningThroughAnotherServer(server.ToString(), reason ?? "no answer", candidate.ToString());
                    }

                    return candidate;
                }
                catch (Exception ex) when (ex is SocketException || (ex is OperationCanceledException && !ct.IsCancellationRequested))
                {
                    reason ??= ex is OperationCanceledException ? "no answer within 3 s" : ex.Message;
                }
            }

            var delay = Backoff(n, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(30));
            log.WaitingForServer(string.Join(", ", new[] { server }.Concat(others)), reason ?? "no answer", (long)delay.TotalSeconds);
            await Task.Delay(delay, time, ct);
        }
    }

    /// <summary>Where the agent's components reach the API servers: its load balancer on loopback.</summary>
    public static Uri LoadBalancerUrl(CoracleConfig config) =>
        new($"https://127.0.0.1:{config.LbServerPort.ToString(System.Globalization.CultureInfo.InvariantCulture)}/");

    public static async Task<AgentIdentity> JoinAsync(CoracleConfig config, ILogger log, CancellationToken ct, TimeProvider? time = null)
    {
        time ??= TimeProvider.System;
        var server = new Uri(config.ServerUrl.TrimEnd('/') + "/");

        // 1. The token must carry the CA hash: nothing from the server is trusted before it matches.
        ClusterToken token;
        try
        {
            token = ClusterToken.Parse(config.Token);
        }
        catch (TokenFormatException ex)
        {
            throw new JoinException($"--token: {ex.Message}");
        }

        // 2. Fetch the CA bundle without trusting the connection, retrying while the server is unreachable. An agent that
        //    ran before knows the cluster's other servers: while --server does not answer, it joins through one that does.
        server = await ReachableServerAsync(server, KnownServers(config, server), log, time, ct);
        var ca = await FetchCaAsync(server, log, time, ct);

        // 3. Compare its hash with the token's.
        var actual = ClusterToken.HashCa(ca);
        if (!CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(actual), Encoding.ASCII.GetBytes(token.CaHash)))
        {
            throw new JoinException($"the server's CA does not match the token: {server}cacerts hashes to {actual}, the token expects {token.CaHash}; check --server and --token");
        }

        // 4. From here on, only that CA is trusted, and the server's name is checked.
        using var client = TrustedClient(ca, token);

        // 5. Authenticate and read the cluster configuration.
        var cluster = await RetryAsync(server, log, time, async () =>
        {
            using var response = await client.GetAsync(new Uri(server, "v1/config"), ct);
            await EnsureOkAsync(response, "v1/config", ct);
            return (await response.Content.ReadFromJsonAsync<ClusterConfigResponse>(Json, ct))!;
        }, ct);

        // 6. Make keys here, send CSRs, get certificates back.
        var dir = FileUtil.PrivateDirectory(AgentDir(config.DataDir));
        var nodePassword = EnsureNodePassword(config.DataDir, config.NodeName, log);
        using var servingKey = CertificateFactory.NewKey();
        using var kubeletKey = CertificateFactory.NewKey();
        using var proxyKey = CertificateFactory.NewKey();
        using var controllerKey = CertificateFactory.NewKey();
        var ips = config.NodeIps.Count > 0 ? config.NodeIps : ClusterCertificates.NodeAddresses(config).Select(a => a.ToString()).ToList();
        var request = new CertificatesRequest
        {
            Role = JoinServer.AgentRole,
            NodeName = config.NodeName,
            NodePassword = nodePassword,
            NodeIps = ips,
            KubeletServingCsr = Csr(servingKey, config.NodeName),
            KubeletClientCsr = Csr(kubeletKey, $"system:node:{config.NodeName}"),
            KubeProxyClientCsr = Csr(proxyKey, "system:kube-proxy"),
            ControllerClientCsr = Csr(controllerKey, Kubernetes.ClusterRbac.ControllerUser),
        };
        var signed = await RetryAsync(server, log, time, async () =>
        {
            using var response = await client.PostAsJsonAsync(new Uri(server, "v1/certificates"), request, Json, ct);
            await EnsureOkAsync(response, "v1/certificates", ct);
            return (await response.Content.ReadFromJsonAsync<CertificatesResponse>(Json, ct))!;
        }, ct);

        // 7. Write certificates, keys and kubeconfigs.
        var certMode = ClusterCertificates.CertMode;
        var keyMode = ClusterCertificates.KeyMode;
        FileUtil.WriteAtomic(Path.Combine(dir, "server-ca.crt"), signed.ServerCa, certMode);
        FileUtil.WriteAtomic(Path.Combine(dir, "client-ca.crt"), signed.ClientCa, certMode);
        foreach (var (name, key, pem) in new[] { ("serving-kubelet", servingKey, signed.KubeletServing), ("client-kubelet", kubeletKey, signed.KubeletClient), ("client-kube-proxy", proxyKey, signed.KubeProxyClient), ("client-coracle-controller", controllerKey, signed.ControllerClient) })
        {
            FileUtil.WriteAtomic(Path.Combine(dir, name + ".key"), CertificateWithKey.KeyToPem(key), keyMode);
            FileUtil.WriteAtomic(Path.Combine(dir, name + ".crt"), pem, certMode);
        }

        // The agent's components reach the API servers through its load balancer (Agent/ApiLoadBalancer), which fails
        // over between every server of the cluster; kube-apiserver's certificate names 127.0.0.1.
        var apiServer = LoadBalancerUrl(config).ToString().TrimEnd('/');
        Kubeconfig.Write(Path.Combine(dir, "kubelet.kubeconfig"), apiServer, Path.Combine(dir, "server-ca.crt"), Path.Combine(dir, "client-kubelet.crt"), Path.Combine(dir, "client-kubelet.key"), $"system:node:{config.NodeName}", false, keyMode);
        Kubeconfig.Write(Path.Combine(dir, "kubeproxy.kubeconfig"), apiServer, Path.Combine(dir, "server-ca.crt"), Path.Combine(dir, "client-kube-proxy.crt"), Path.Combine(dir, "client-kube-proxy.key"), "system:kube-proxy", false, keyMode);
        Kubeconfig.Write(Path.Combine(dir, ServerIdentity.ControllerKubeconfigFile), apiServer, Path.Combine(dir, "server-ca.crt"), Path.Combine(dir, "client-coracle-controller.crt"), Path.Combine(dir, "client-coracle-controller.key"), Kubernetes.ClusterRbac.ControllerUser, false, keyMode);
        FileUtil.WriteAtomic(Path.Combine(dir, "cluster.json"), JsonSerializer.Serialize(cluster, Json) + "\n", certMode);
        log.AgentJoined(server.ToString(), config.NodeName, dir);
        return new AgentIdentity(cluster, dir, token, ca, server);
    }

    /// <summary>
    /// The server's CA bundle from <c>/cacerts</c>, fetched without trusting the connection (the caller compares its hash
    /// with the token's before trusting anything), retrying with backoff while the server is unreachable.
    /// </summary>
    public static Task<byte[]> FetchCaAsync(Uri server, ILogger log, TimeProvider time, CancellationToken ct) =>
        RetryAsync(server, log, time, async () =>
        {
#pragma warning disable CA5359 // /cacerts is fetched untrusted on purpose: its hash is checked against the token before anything is trusted.
            using var insecure = new HttpClient(new SocketsHttpHandler
            {
                SslOptions = new SslClientAuthenticationOptions { RemoteCertificateValidationCallback = (_, _, _, _) => true },
#pragma warning restore CA5359
                ConnectTimeout = TimeSpan.FromSeconds(5),
            });
            using var response = await insecure.GetAsync(new Uri(server, "cacerts"), ct);
            if (!response.IsSuccessStatusCode)
            {
                throw new JoinException($"{server}cacerts answered {(int)response.StatusCode}; is {server} a coracle server's supervisor port?");
            }

            return await response.Content.ReadAsByteArrayAsync(ct);
        }, ct);

    /// <summary>An HTTP client that trusts only <paramref name="ca"/> and sends the token as a bearer credential.</summary>
    public static HttpClient TrustedClient(byte[] ca, ClusterToken token)
    {
        var client = new HttpClient(new SocketsHttpHandler { SslOptions = TrustOnly(ca), ConnectTimeout = TimeSpan.FromSeconds(5) })
        {
            Timeout = TimeSpan.FromSeconds(30),
        };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token.Password);
        return client;
    }

    public static SslClientAuthenticationOptions TrustOnly(byte[] ca)
    {
        var roots = new X509Certificate2Collection();
        roots.ImportFromPem(Encoding.ASCII.GetString(ca));
        var policy = new X509ChainPolicy { TrustMode = X509ChainTrustMode.CustomRootTrust, RevocationMode = X509RevocationMode.NoCheck };
        policy.CustomTrustStore.AddRange(roots);
        return new SslClientAuthenticationOptions { CertificateChainPolicy = policy };
    }

    /// <summary>The next wait: <paramref name="initial"/> doubling per attempt up to <paramref name="max"/>.</summary>
    public static TimeSpan Backoff(int attempt, TimeSpan initial, TimeSpan max) =>
        TimeSpan.FromTicks(Math.Min(max.Ticks, initial.Ticks * (1L << Math.Min(attempt, 20))));

    private static string Csr(ECDsa key, string commonName) =>
        new CertificateRequest(CertSubject.Named(commonName).DistinguishedName(), key, HashAlgorithmName.SHA256).CreateSigningRequestPem();

    private static async Task EnsureOkAsync(HttpResponseMessage response, string what, CancellationToken ct)
    {
        if (response.IsSuccessStatusCode)
        {
            return;
        }

        string detail;
        try
        {
            detail = (await response.Content.ReadFromJsonAsync<ErrorResponse>(Json, ct))?.Error ?? "";
        }
        catch (JsonException)
        {
            detail = "";
        }

        throw response.StatusCode switch
        {
            HttpStatusCode.Unauthorized => new JoinException($"the server rejected the token: {detail}"),
            HttpStatusCode.Forbidden => new JoinException($"the server refused this node: {detail}"),
            HttpStatusCode.ServiceUnavailable => new JoinNotReadyException(detail.Length > 0 ? detail : $"{what} answered 503"),
            _ => new JoinException($"{what} failed with {(int)response.StatusCode}: {detail}"),
        };
    }

    internal static async Task<T> RetryAsync<T>(Uri server, ILogger log, TimeProvider time, Func<Task<T>> attempt, CancellationToken ct)
    {
        for (var n = 0; ; n++)
        {
            try
            {
                return await attempt();
            }
            catch (HttpRequestException ex) when (ex.InnerException is SocketException or IOException || ex.HttpRequestError is HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError)
            {
                var delay = Backoff(n, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(30));
                log.WaitingForServer(server.ToString(), ex.InnerException?.Message ?? ex.Message, (long)delay.TotalSeconds);
                await Task.Delay(delay, time, ct);
            }
            catch (JoinNotReadyException ex)
            {
                var delay = Backoff(n, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(30));
                log.WaitingForServer(server.ToString(), ex.Message, (long)delay.TotalSeconds);
                await Task.Delay(delay, time, ct);
            }
            catch (HttpRequestException ex) when (ex.InnerException is System.Security.Authentication.AuthenticationException auth)
            {
                throw new JoinException($"TLS with {server} failed: {auth.Message}; the server's certificate must be issued by the CA the token pins (check --server: is it the server the token is from?) and name this address (--tls-san on the server)");
            }
            catch (TaskCanceledException) when (!ct.IsCancellationRequested)
            {
                var delay = Backoff(n, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(30));
                log.WaitingForServer(server.ToString(), "timed out", (long)delay.TotalSeconds);
                await Task.Delay(delay, time, ct);
            }
        }
    }
}
