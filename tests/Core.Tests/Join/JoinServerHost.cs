using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Coracle.Core.Configuration;
using Coracle.Core.Identity;
using Coracle.Core.Join;
using Coracle.Core.Tunnel;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Coracle.Core.Tests.Join;

/// <summary>
/// One real <see cref="JoinServer"/> on a free port: a data dir with the server's certificates and token (as
/// <c>ServerIdentity.Prepare</c> makes them, without kubeconfigs), a node password store made by the caller, and an
/// HTTPS client that trusts only the server CA. Its join token store, node passwords and signing run on
/// <see cref="Time"/>, which starts an hour back while the caller prepares (so a join token made then with a shorter
/// TTL is expired) and is the current time when the server starts.
/// </summary>
internal sealed class JoinServerHost : IAsyncDisposable, IDisposable
{
    private static readonly TimeSpan HangGuard = TimeSpan.FromSeconds(60);
    private readonly CancellationTokenSource _stop = new();
    private Task _run = Task.CompletedTask;

    private JoinServerHost(string dataDir, CoracleConfig config, FakeTimeProvider time)
    {
        DataDir = dataDir;
        Config = config;
        Time = time;
    }

    public string DataDir { get; }

    public CoracleConfig Config { get; }

    public FakeTimeProvider Time { get; }

    public ClusterCertificates Certificates { get; private set; } = null!;

    public ClusterToken ServerToken { get; private set; } = null!;

    public JoinTokenStore JoinTokens { get; private set; } = null!;

    public HttpClient Client { get; private set; } = null!;

    /// <summary><c>https://127.0.0.1:PORT</c>, the agents' <c>--server</c>.</summary>
    public string Url => $"https://127.0.0.1:{Config.SupervisorPort}";

    /// <summary>
    /// Makes the server's identity in <paramref name="dataDir"/> (node name <c>srv</c>, kube-apiserver expected on
    /// <paramref name="apiPort"/>), lets <paramref name="prepare"/> create join tokens an hour back, and starts the
    /// join API with the passwords <paramref name="passwords"/> makes; servers may join it when <paramref name="datastore"/> is given.
    /// </summary>
    public static async Task<JoinServerHost> StartAsync(string dataDir, int apiPort, Func<CoracleConfig, FakeTimeProvider, NodePasswords> passwords, Action<JoinServerHost>? prepare = null,
        ServerJoinDatastore? datastore = null)
    {
        var config = ConfigLoader.Load("server", null, new Dictionary<string, string> { ["CORACLE_CONFIG_FILE"] = "", ["HOME"] = dataDir }, new Dictionary<Setting, IReadOnlyList<string>>
        {
            [Settings.DataDir] = [dataDir],
            [Settings.NodeName] = ["srv"],
            [Settings.NodeIp] = ["127.0.0.1"],
            [Settings.SupervisorPort] = [FreePorts.Next().ToString(CultureInfo.InvariantCulture)],
            [Settings.HttpsListenPort] = [apiPort.ToString(CultureInfo.InvariantCulture)],
            [Settings.WriteKubeconfig] = [Path.Combine(dataDir, "admin.yaml")],
        });
        var certificates = ClusterCertificates.ForServer(config);
        certificates.Ensure();

        // Current again once the server starts after the CAs exist, so what it signs on this clock is never older than its CAs.
        var host = new JoinServerHost(dataDir, config, new FakeTimeProvider(DateTimeOffset.UtcNow - TimeSpan.FromHours(1)))
        {
            Certificates = certificates,
            ServerToken = Coracle.Core.Identity.ServerToken.Ensure(dataDir, certificates.CertFile(ClusterCertificates.ServerCa), ""),
        };
        host.JoinTokens = new JoinTokenStore(dataDir, host.Time);
        prepare?.Invoke(host);
        host.Time.Advance(TimeSpan.FromHours(1));
        var server = new JoinServer(config, certificates, host.ServerToken, host.JoinTokens, new TunnelRegistry(), passwords(config, host.Time), NullLogger.Instance, host.Time)
        {
            Datastore = datastore,
        };
        host._run = server.RunAsync(host._stop.Token);
        host.Client = TrustingClient(certificates.CertFile(ClusterCertificates.ServerCa), new Uri(host.Url));
        await host.WaitUntilListeningAsync();
        return host;
    }

    /// <summary>An HTTPS client that trusts only the CA in <paramref name="caFile"/>.</summary>
    public static HttpClient TrustingClient(string caFile, Uri baseAddress)
    {
        var ca = X509CertificateLoader.LoadCertificateFromFile(caFile);
        var policy = new X509ChainPolicy { TrustMode = X509ChainTrustMode.CustomRootTrust, RevocationMode = X509RevocationMode.NoCheck };
        policy.CustomTrustStore.Add(ca);
        return new HttpClient(new SocketsHttpHandler { SslOptions = new SslClientAuthenticationOptions { CertificateChainPolicy = policy } })
        {
            BaseAddress = baseAddress,
            Timeout = HangGuard,
        };
    }

    private async Task WaitUntilListeningAsync()
    {
        using var guard = new CancellationTokenSource(HangGuard);
        while (true)
        {
            if (_run.IsCompleted)
            {
                await _run;
                throw new InvalidOperationException("the join server stopped before it listened");
            }

            try
            {
                using var answer = await Client.GetAsync("/ping", guard.Token);
                if (answer.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }

            await Task.Delay(50, guard.Token);
        }
    }

    /// <summary>Stops the server.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _run.WaitAsync(HangGuard);
        Dispose();
    }

    public void Dispose()
    {
        Client?.Dispose();
        _stop.Dispose();
    }
}
