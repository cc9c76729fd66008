using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Coracle.Core.Configuration;
using Coracle.Core.Identity;
using Coracle.Core.Join;
using Coracle.Core.Tests.Support;
using Coracle.Core.Tunnel;
using Microsoft.Extensions.Logging.Abstractions;

namespace Coracle.Core.Tests.Tunnel;

/// <summary>
/// The agent's <see cref="TunnelClient"/> against a real <see cref="JoinServer"/> (HTTPS with the cluster's
/// certificates, on a loopback port): the server stops and a new one starts on the same port, and the client
/// reconnects on its own; streams flow through the new tunnel. The client's backoff is shortened to milliseconds so
/// the test does not wait; timeouts are hang guards only.
/// </summary>
public sealed class TunnelReconnectTests : IAsyncLifetime, IDisposable
{
    private static readonly TimeSpan HangGuard = TimeSpan.FromSeconds(60);
    private readonly TempDir _temp = new("crt-tunrc");
    private readonly CancellationTokenSource _stop = new();
    private readonly ListLoggerFactory _logs = new();
    private readonly TcpListener _echo = new(IPAddress.Loopback, 0);
    private CoracleConfig _config = null!;
    private ClusterCertificates _certs = null!;
    private ClusterToken _token = null!;
    private JoinTokenStore _joinTokens = null!;
    private Task _echoing = Task.CompletedTask;

    private int EchoPort => ((IPEndPoint)_echo.LocalEndpoint).Port;

    public Task InitializeAsync()
    {
        _config = ConfigFor(FreePorts.Next());
        _certs = ClusterCertificates.ForServer(_config);
        _certs.Ensure();
        _token = ServerToken.Ensure(_temp.Path, _certs.CertFile(ClusterCertificates.ServerCa), "");
        _joinTokens = new JoinTokenStore(_temp.Path, TimeProvider.System);
        _echo.Start();
        _echoing = EchoAsync(_stop.Token);
        return Task.CompletedTask;
    }

    private CoracleConfig ConfigFor(int port) =>
        ConfigLoader.Load("server", null, new Dictionary<string, string> { ["CORACLE_CONFIG_FILE"] = "", ["HOME"] = _temp.Path }, new Dictionary<Setting, IReadOnlyList<string>>
        {
            [Settings.DataDir] = [_temp.Path],
            [Settings.NodeName] = ["srv"],
            [Settings.NodeIp] = ["127.0.0.1"],
            [Settings.SupervisorPort] = [port.ToString(CultureInfo.InvariantCulture)],
            [Settings.WriteKubeconfig] = [_temp.Combine("admin.yaml")],
        });

    /// <summary>Echoes every connection back (the agent's "kubelet").</summary>
    private async Task EchoAsync(CancellationToken ct)
    {
        try
        {
            while (true)
            {
                var client = await _echo.AcceptTcpClientAsync(ct);
                _ = Task.Run(async () =>
                {
                    using (client)
                    {
                        try
                        {
                            await client.GetStream().CopyToAsync(client.GetStream(), ct);
                        }
                        catch (Exception ex) when (ex is IOException or OperationCanceledException)
                        {
                        }
                    }
                }, CancellationToken.None);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>
    /// Starts a join server and waits until it listens; returns its tunnel registry and a way to stop it. The first server
    /// takes a free port chosen just before it binds, and another one when a process of the parallel tests took that port
    /// meanwhile (a free-port probe cannot hold it); <paramref name="samePort"/> restarts on the port of the one before.
    /// </summary>
    private async Task<(TunnelRegistry Tunnels, Func<Task> Stop)> StartServerAsync(bool samePort = false)
    {
        for (var attempt = 1; ; attempt++)
        {
            if (!samePort)
            {
                _config = ConfigFor(FreePorts.Next());
            }

            var tunnels = new TunnelRegistry();
            var stop = new CancellationTokenSource();
            var server = new JoinServer(_config, _certs, _token, _joinTokens, tunnels,
                new NodePasswords(() => null, NodePasswords.CacheFileFor(_config.DataDir), _logs.CreateLogger("join")), _logs.CreateLogger("join"));
            // A server before this one may have logged the same line (a restart on the same port): wait for one more.
            var listening = $"[join] join API listening on :{_config.SupervisorPort} (HTTPS)";
            var before = _logs.Lines.Count(l => l == listening);
            var run = server.RunAsync(stop.Token);
            using var guard = new CancellationTokenSource(HangGuard);
            while (!run.IsCompleted && _logs.Lines.Count(l => l == listening) == before)
            {
                await Task.Delay(10, guard.Token);
            }

            if (run.IsFaulted && run.Exception.GetBaseException() is IOException && attempt < 5 && !samePort)
            {
                _logs.Lines.Enqueue($"[test] port {_config.SupervisorPort} was taken meanwhile ({run.Exception.GetBaseException().Message}); another");
                stop.Dispose();
                continue;
            }

            if (run.IsCompleted)
            {
                await run; // throws why it ended
            }

            return (tunnels, async () =>
            {
                await stop.CancelAsync();
                await run.WaitAsync(HangGuard);
                stop.Dispose();
            });
        }
    }

    private TunnelClient Client() =>
        new(new Uri($"https://127.0.0.1:{_config.SupervisorPort}"), File.ReadAllBytes(_certs.CertFile(ClusterCertificates.ServerCa)), _token, "agt", ["127.0.0.1"],
            [EchoPort], new NodePodNetwork([], NullLogger.Instance), _logs.CreateLogger("tunnel"), _ => false,
            new TunnelBackoff(TimeSpan.FromMilliseconds(20), TimeSpan.FromMilliseconds(200), TimeSpan.Zero), nodePassword: "agt-password");

    /// <summary>Opens a stream to the agent's echo port through the node's tunnel and checks the echo.</summary>
    private async Task AssertEchoAsync(TunnelSession session, string text)
    {
        using var guard = new CancellationTokenSource(HangGuard);
        await using var stream = await session.Mux.OpenAsync($"127.0.0.1:{EchoPort}", guard.Token);
        var bytes = Encoding.UTF8.GetBytes(text);
        await stream.WriteAsync(bytes, guard.Token);
        var echoed = new byte[bytes.Length];
        await stream.ReadExactlyAsync(echoed, guard.Token);
        Assert.Equal(text, Encoding.UTF8.GetString(echoed));
    }

    [Fact]
    public async Task RunAsync_ServerRestarts_ClientReconnectsAndStreamsFlowAgain()
    {
        var (first, stopFirst) = await StartServerAsync();
        var client = Client();
        var running = client.RunAsync(_stop.Token);
        using var guard = new CancellationTokenSource(HangGuard);

        var session = await first.WaitAsync("agt", guard.Token);
        await AssertEchoAsync(session, "before the restart");
        await WaitUntilAsync(() => client.Connections == 1, "the client to count its first connection", guard.Token);

        await stopFirst();
        var (second, stopSecond) = await StartServerAsync(samePort: true);
        var again = await second.WaitAsync("agt", guard.Token);
        await AssertEchoAsync(again, "after the restart");
        await WaitUntilAsync(() => client.Connections == 2, "the client to count its second connection", guard.Token);

        Assert.True(client.Connected);
        var url = $"wss://127.0.0.1:{_config.SupervisorPort}/v1/tunnel";
        Assert.Equal(2, _logs.Lines.Count(l => l == $"[tunnel] tunnel to {url} connected"));
        Assert.Contains(_logs.Lines, l => l.StartsWith($"[tunnel] tunnel to {url} lost (", StringComparison.Ordinal));
        await stopSecond();
        await _stop.CancelAsync();
        await running.WaitAsync(HangGuard);
    }

    /// <summary>An agent older than the server (tunnel protocol 1) asks for no subprotocol: refused with 400 and a log line.</summary>
    [Fact]
    public async Task Upgrade_WithoutTheTunnelSubprotocol_IsRefusedWith400AndLogged()
    {
        var (_, stop) = await StartServerAsync();
        using var guard = new CancellationTokenSource(HangGuard);
        using var socket = new ClientWebSocket();
        socket.Options.CollectHttpResponseDetails = true;
        socket.Options.SetRequestHeader("Authorization", "Bearer " + _token.Password);
        socket.Options.SetRequestHeader("X-Coracle-Node", "old");
        var trust = AgentJoin.TrustOnly(File.ReadAllBytes(_certs.CertFile(ClusterCertificates.ServerCa)));
        socket.Options.RemoteCertificateValidationCallback = (_, cert, _, _) =>
        {
            using var chain = new X509Chain { ChainPolicy = trust.CertificateChainPolicy!.Clone() };
            using var leaf = cert is null ? null : X509CertificateLoader.LoadCertificate(cert.GetRawCertData());
            return leaf is not null && chain.Build(leaf);
        };

        await Assert.ThrowsAsync<WebSocketException>(() => socket.ConnectAsync(new Uri($"wss://127.0.0.1:{_config.SupervisorPort}/v1/tunnel"), guard.Token));

        Assert.Equal(HttpStatusCode.BadRequest, socket.HttpStatusCode);
        Assert.Contains("[join] tunnel from node old refused: the agent does not speak coracle-tunnel.v2 (a Coracle agent older than this server?); upgrade the agent", _logs.Lines);
        await stop();
    }

    /// <summary>A holder of the token who names the server's own node gets no tunnel for it (403), as a join under that name.</summary>
    [Fact]
    public async Task Upgrade_TheServersOwnNodeName_IsRefusedWith403()
    {
        var (tunnels, stop) = await StartServerAsync();
        using var guard = new CancellationTokenSource(HangGuard);
        using var socket = TunnelSocket("srv", "any-password");

        await Assert.ThrowsAsync<WebSocketException>(() => socket.ConnectAsync(new Uri($"wss://127.0.0.1:{_config.SupervisorPort}/v1/tunnel"), guard.Token));

        Assert.Equal(HttpStatusCode.Forbidden, socket.HttpStatusCode);
        Assert.Empty(tunnels.Sessions);
        Assert.Contains(_logs.Lines, l => l.Contains("node name srv is the server's own", StringComparison.Ordinal));
        await stop();
    }

    /// <summary>A websocket for /v1/tunnel as an agent would open it, trusting the cluster's server CA.</summary>
    private ClientWebSocket TunnelSocket(string node, string? password)
    {
        var socket = new ClientWebSocket();
        socket.Options.CollectHttpResponseDetails = true;
        socket.Options.AddSubProtocol(TunnelMux.SubProtocol);
        socket.Options.SetRequestHeader("Authorization", "Bearer " + _token.Password);
        socket.Options.SetRequestHeader("X-Coracle-Node", node);
        if (password is not null)
        {
            socket.Options.SetRequestHeader("X-Coracle-Node-Password", password);
        }

        var trust = AgentJoin.TrustOnly(File.ReadAllBytes(_certs.CertFile(ClusterCertificates.ServerCa)));
        socket.Options.RemoteCertificateValidationCallback = (_, cert, _, _) =>
        {
            using var chain = new X509Chain { ChainPolicy = trust.CertificateChainPolicy!.Clone() };
            using var leaf = cert is null ? null : X509CertificateLoader.LoadCertificate(cert.GetRawCertData());
            return leaf is not null && chain.Build(leaf);
        };
        return socket;
    }

    /// <summary>
    /// A holder of the token who names an existing node without its password (missing, or another machine's) gets no
    /// tunnel for it: 400 and 403, and the node's own tunnel is not replaced.
    /// </summary>
    [Theory]
    [InlineData(null, HttpStatusCode.BadRequest)]
    [InlineData("another-machine", HttpStatusCode.Forbidden)]
    public async Task Upgrade_NodeNameWithoutItsPassword_IsRefused(string? password, HttpStatusCode expected)
    {
        var (tunnels, stop) = await StartServerAsync();
        using var guard = new CancellationTokenSource(HangGuard);
        using var agentStop = new CancellationTokenSource();
        var client = Client();
        var run = client.RunAsync(agentStop.Token);
        await WaitUntilAsync(() => client.Connected, "the real agent's tunnel", guard.Token);
        var session = Assert.Single(tunnels.Sessions);

        using var socket = TunnelSocket("agt", password);

        await Assert.ThrowsAsync<WebSocketException>(() => socket.ConnectAsync(new Uri($"wss://127.0.0.1:{_config.SupervisorPort}/v1/tunnel"), guard.Token));

        Assert.Equal(expected, socket.HttpStatusCode);
        Assert.Same(session, Assert.Single(tunnels.Sessions));
        await agentStop.CancelAsync();
        await run.WaitAsync(HangGuard);
        await stop();
    }

    /// <summary>
    /// Waits for a condition the client sets on its own task (a hang guard, not a timing assertion); when it fires, the
    /// failure carries what the server and client logged, so a hang explains itself.
    /// </summary>
    private async Task WaitUntilAsync(Func<bool> condition, string what, CancellationToken ct)
    {
        while (!condition())
        {
            Assert.False(ct.IsCancellationRequested, $"timed out waiting for {what}; logged:\n{string.Join("\n", _logs.Lines.TakeLast(40))}");
            await Task.Delay(10, CancellationToken.None);
        }
    }

    public async Task DisposeAsync()
    {
        await _stop.CancelAsync();
        _echo.Stop();
        await _echoing.WaitAsync(HangGuard);
    }

    public void Dispose()
    {
        _echo.Dispose();
        _stop.Dispose();
        _temp.Dispose();
    }
}
