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
/// One real <see cref="JoinServer"/> for the join API tests: a temp data dir with the server's certificates and token
/// (as <c>ServerIdentity.Prepare</c> makes them, without kubeconfigs), a free port, and an HTTPS client that trusts
/// only the server CA. The join token store runs on a fake clock that starts an hour back, so one token is already
/// expired and one is valid when the tests run.
/// </summary>
public sealed class JoinServerFixture : IAsyncLifetime, IDisposable
{
    private static readonly TimeSpan HangGuard = TimeSpan.FromSeconds(60);
    private readonly TempDir _temp = new("crt-join");
    private readonly CancellationTokenSource _stop = new();
    private Task _run = Task.CompletedTask;

    public FakeTimeProvider Time { get; private set; } = null!;

    public HttpClient Client { get; private set; } = null!;

    internal ClusterCertificates Certificates { get; private set; } = null!;

    internal ClusterToken ServerToken { get; private set; } = null!;

    internal JoinTokenRecord ExpiredRecord { get; private set; } = null!;

    public string ExpiredJoinToken { get; private set; } = "";

    public string ValidJoinToken { get; private set; } = "";

    public string DataDir => _temp.Path;

    public async Task InitializeAsync()
    {
        var port = FreePort();
        var config = ConfigLoader.Load("server", null, new Dictionary<string, string> { ["CORACLE_CONFIG_FILE"] = "", ["HOME"] = _temp.Path }, new Dictionary<Setting, IReadOnlyList<string>>
        {
            [Settings.DataDir] = [_temp.Path],
            [Settings.NodeName] = ["srv"],
            [Settings.NodeIp] = ["127.0.0.1"],
            [Settings.SupervisorPort] = [port.ToString(System.Globalization.CultureInfo.InvariantCulture)],
            [Settings.WriteKubeconfig] = [_temp.Combine("admin.yaml")],
        });
        Certificates = ClusterCertificates.ForServer(config);
        Certificates.Ensure();
        ServerToken = Coracle.Core.Identity.ServerToken.Ensure(_temp.Path, Certificates.CertFile(ClusterCertificates.ServerCa), "");

        // Started after the CAs exist, so what the server signs on this clock is never older than its CAs.
        Time = new FakeTimeProvider(DateTimeOffset.UtcNow - TimeSpan.FromHours(1));
        var joinTokens = new JoinTokenStore(_temp.Path, Time);
        (ExpiredRecord, ExpiredJoinToken) = joinTokens.Create(TimeSpan.FromMinutes(1), "expires before the tests run");
        (_, ValidJoinToken) = joinTokens.Create(TimeSpan.FromDays(1), "valid while the tests run");
        Time.Advance(TimeSpan.FromHours(1));

        var server = new JoinServer(config, Certificates, ServerToken, joinTokens, new TunnelRegistry(), NullLogger.Instance, Time);
        _run = server.RunAsync(_stop.Token);

        var serverCa = X509CertificateLoader.LoadCertificateFromFile(Certificates.CertFile(ClusterCertificates.ServerCa));
        var policy = new X509ChainPolicy { TrustMode = X509ChainTrustMode.CustomRootTrust, RevocationMode = X509RevocationMode.NoCheck };
        policy.CustomTrustStore.Add(serverCa);
        Client = new HttpClient(new SocketsHttpHandler { SslOptions = new SslClientAuthenticationOptions { CertificateChainPolicy = policy } })
        {
            BaseAddress = new Uri($"https://127.0.0.1:{port}"),
            Timeout = HangGuard,
        };
        await WaitUntilListeningAsync();
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

    private static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Any, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    /// <summary>Stops the server (xUnit calls this before <see cref="Dispose"/>).</summary>
    public async Task DisposeAsync()
    {
        await _stop.CancelAsync();
        await _run.WaitAsync(HangGuard);
    }

    public void Dispose()
    {
        Client?.Dispose();
        _stop.Dispose();
        _temp.Dispose();
    }
}
