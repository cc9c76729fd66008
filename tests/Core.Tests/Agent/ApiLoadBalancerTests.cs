using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Coracle.Core.Agent;
using Coracle.TestSupport;
using Xunit;

namespace Coracle.Core.Tests.Agent;

/// <summary>
/// The agent's API server load balancer with real TCP servers on loopback: each test server writes its name to every
/// connection and then echoes, so a test sees which server a connection reached.
/// </summary>
public sealed class ApiLoadBalancerTests : IDisposable
{
    private readonly ListLoggerFactory _logs = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly List<TcpListener> _listeners = [];
    private readonly string _dir = Directory.CreateTempSubdirectory("coracle-lb-").FullName;

    [Fact]
    public async Task Connect_FirstServerRefuses_GoesToTheNextAndStaysThereWhileItAnswers()
    {
        var down = DeadServer();
        var b = Serve("server-b");
        var servers = ServerList.InMemory(down, _logs.CreateLogger("lb"), b);
        var port = await StartAsync(servers);

        Assert.Equal("server-b", await FirstLineAsync(port));
        var a = Serve("server-a");
        servers.Update([b, a]);

        // The server that answered last stays the first choice; a server that starts answering later is not preferred.
        Assert.Equal("server-b", await FirstLineAsync(port));
        Assert.Contains(_logs.Lines, l => l.Contains($"using API server {b}", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Connect_CurrentServerDies_NextConnectionFailsOverAndTheSwitchIsLoggedWithTheReason()
    {
        var (a, listenerA) = ServeWithListener("server-a");
        var b = Serve("server-b");
        var servers = ServerList.InMemory(a, _logs.CreateLogger("lb"), b);
        var port = await StartAsync(servers);
        Assert.Equal("server-a", await FirstLineAsync(port));

        listenerA.Stop();
        Assert.Equal("server-b", await FirstLineAsync(port));
        Assert.Contains(_logs.Lines, l => l.Contains($"switched to API server {b} ({a}: ", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Connection_ServerLeavesTheList_ItsConnectionsAreClosedAndBytesFlowBothWaysBefore()
    {
        var down = DeadServer();
        var a = Serve("server-a");
        var servers = ServerList.InMemory(down, _logs.CreateLogger("lb"), a);
        var port = await StartAsync(servers);

        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, port);
        var stream = client.GetStream();
        using var reader = new StreamReader(stream, Encoding.ASCII);
        Assert.Equal("server-a", await reader.ReadLineAsync());
        await stream.WriteAsync("ping\n"u8.ToArray());
        Assert.Equal("ping", await reader.ReadLineAsync());

        Assert.True(servers.Update([]));
        // Closed: an end of stream, or a reset (the balancer drops its sockets without waiting for the client).
        var closed = await Record.ExceptionAsync(async () => Assert.Null(await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30))));
        Assert.True(closed is null or IOException, closed?.ToString());
        Assert.Equal([down], servers.Servers);
    }

    [Fact]
    public async Task Connect_NoServerAnswers_ConnectionClosedAndEveryReasonLogged()
    {
        var first = DeadServer();
        var second = DeadServer();
        var servers = ServerList.InMemory(first, _logs.CreateLogger("lb"), second);
        var port = await StartAsync(servers);

        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, port);
        var read = await client.GetStream().ReadAsync(new byte[16]).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(0, read);
        var line = Assert.Single(_logs.Lines, l => l.Contains("no API server answers", StringComparison.Ordinal));
        Assert.Contains(first + ": ", line, StringComparison.Ordinal);
        Assert.Contains(second + ": ", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_PortTaken_OneLineErrorNamingTheFlag()
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var port = ((IPEndPoint)taken.LocalEndpoint).Port;
        var balancer = new ApiLoadBalancer(new IPEndPoint(IPAddress.Loopback, port), ServerList.InMemory(DeadServer(), _logs.CreateLogger("lb")), _logs.CreateLogger("lb"));

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => balancer.RunAsync(_stop.Token));
        Assert.StartsWith($"the API server load balancer cannot listen on 127.0.0.1:{port}: ", error.Message, StringComparison.Ordinal);
        Assert.EndsWith("; free the port or choose another with --lb-server-port", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Fact]
    public async Task Run_RestartedWhileItsPortIsTaken_FailsWithTheReasonAndBoundWaitsForARunThatListens()
    {
        // As the supervisor restarts it (certificate renewal): one instance, run again. A restart whose port is still
        // held (the previous run not yet gone) must fail with its reason, not pass as listening through the first run's Bound.
        var port = FreePorts.Next();
        var balancer = new ApiLoadBalancer(new IPEndPoint(IPAddress.Loopback, port), ServerList.InMemory(DeadServer(), _logs.CreateLogger("lb")), _logs.CreateLogger("lb"));
        using (var first = new CancellationTokenSource())
        {
            var running = balancer.RunAsync(first.Token);
            Assert.Equal(port, await balancer.Bound.WaitAsync(TimeSpan.FromSeconds(30)));
            await first.CancelAsync();
            await running.WaitAsync(TimeSpan.FromSeconds(30));
        }

        Assert.False(balancer.Listening);
        using (var taken = new TcpListener(IPAddress.Loopback, port))
        {
            taken.Start();
            var restart = balancer.RunAsync(_stop.Token);
            Assert.Same(restart, await Task.WhenAny(balancer.Bound, restart).WaitAsync(TimeSpan.FromSeconds(30)));
            var error = await Assert.ThrowsAsync<InvalidOperationException>(() => restart);
            Assert.StartsWith($"the API server load balancer cannot listen on 127.0.0.1:{port}: ", error.Message, StringComparison.Ordinal);
            Assert.False(balancer.Bound.IsCompleted);
        }

        // Once the port is free the next restart listens and says so.
        _ = balancer.RunAsync(_stop.Token);
        Assert.Equal(port, await balancer.Bound.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.True(balancer.Listening);
    }

    [Fact]
    public void ServerList_UpdateSavesPrivatelyAndLoadKeepsTheDefaultFirst_UnreadableFileIgnoredWithAWarning()
    {
        var file = Path.Combine(_dir, "load-balancer.json");
        var servers = ServerList.Load(file, "10.0.0.1:6443", _logs.CreateLogger("lb"));
        Assert.Equal(["10.0.0.1:6443"], servers.Servers);
        Assert.False(File.Exists(file));

        Assert.True(servers.Update(["10.0.0.3:6443", "10.0.0.2:6443", "not an address"]));
        Assert.False(servers.Update(["10.0.0.2:6443", "10.0.0.3:6443"]));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
        Assert.Equal(["10.0.0.1:6443", "10.0.0.2:6443", "10.0.0.3:6443"], ServerList.Load(file, "10.0.0.1:6443", _logs.CreateLogger("lb")).Servers);

        // A restart after joining through another server: that one first, the saved ones after it.
        Assert.Equal(["10.0.0.2:6443", "10.0.0.1:6443", "10.0.0.3:6443"], ServerList.Load(file, "10.0.0.2:6443", _logs.CreateLogger("lb")).Servers);

        File.WriteAllText(file, "{ not json");
        Assert.Equal(["10.0.0.1:6443"], ServerList.Load(file, "10.0.0.1:6443", _logs.CreateLogger("lb")).Servers);
        Assert.Contains(_logs.Lines, l => l.Contains($"{file} is unreadable (", StringComparison.Ordinal)
            && l.EndsWith("); starting from the server this agent joined only", StringComparison.Ordinal));
    }

    [Fact]
    public void ServerList_Parse_HostPortAndBracketedIpv6_NonsenseIsNull()
    {
        Assert.Equal(new DnsEndPoint("10.0.0.1", 6443), ServerList.Parse("10.0.0.1:6443"));
        Assert.Equal(new DnsEndPoint("fd00::1", 6443), ServerList.Parse("[fd00::1]:6443"));
        Assert.Equal("[fd00::1]:6443", ServerList.Format("fd00::1", 6443));
        Assert.Null(ServerList.Parse("10.0.0.1"));
        Assert.Null(ServerList.Parse("10.0.0.1:0"));
        Assert.Null(ServerList.Parse(":6443"));
    }

    [Fact]
    public void ApiServerEndpoints_Addresses_EveryAddressWithTheHttpsPort()
    {
        using var doc = JsonDocument.Parse("""
            {"metadata":{"name":"kubernetes"},"subsets":[
              {"addresses":[{"ip":"10.0.0.1"},{"ip":"10.0.0.2"}],"ports":[{"name":"https","port":6443,"protocol":"TCP"}]},
              {"addresses":[{"ip":"fd00::3"}],"ports":[{"name":"other","port":1},{"name":"https","port":7443}]},
              {"addresses":[{"ip":"10.0.0.9"}],"ports":[{"name":"a","port":1},{"name":"b","port":2}]}]}
            """);
        Assert.Equal(["10.0.0.1:6443", "10.0.0.2:6443", "[fd00::3]:7443"], ApiServerEndpoints.Addresses(doc.RootElement));
    }

    [Fact]
    public void AgentTunnels_SupervisorUrls_JoinedUrlForTheDefaultAndTheSupervisorPortForTheOthers()
    {
        var joined = new Uri("https://first.example:9345/");
        Assert.Equal(
            [joined, new Uri("https://10.0.0.2:9345/"), new Uri("https://[fd00::3]:9345/")],
            AgentTunnels.SupervisorUrls(["first.example:6443", "10.0.0.2:6443", "[fd00::3]:6443"], "first.example:6443", joined));
    }

    public void Dispose()
    {
        _stop.Cancel();
        foreach (var listener in _listeners)
        {
            listener.Stop();
            listener.Dispose();
        }

        _stop.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private async Task<int> StartAsync(ServerList servers)
    {
        var balancer = new ApiLoadBalancer(new IPEndPoint(IPAddress.Loopback, 0), servers, _logs.CreateLogger("lb"), TimeSpan.FromSeconds(5));
        _ = balancer.RunAsync(_stop.Token);
        return await balancer.Bound.WaitAsync(TimeSpan.FromSeconds(30));
    }

    private static async Task<string?> FirstLineAsync(int port)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, port);
        using var reader = new StreamReader(client.GetStream(), Encoding.ASCII);
        return await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30));
    }

    /// <summary>A loopback port nothing listens on: connecting is refused at once.</summary>
    private static string DeadServer()
    {
        var port = FreePorts.Next();
        return $"127.0.0.1:{port}";
    }

    private string Serve(string name) => ServeWithListener(name).Address;

    private (string Address, TcpListener Listener) ServeWithListener(string name)
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        _listeners.Add(listener);
        _ = Task.Run(async () =>
        {
            while (!_stop.IsCancellationRequested)
            {
                TcpClient client;
                try
                {
                    client = await listener.AcceptTcpClientAsync(_stop.Token);
                }
                catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
                {
                    return;
                }

                _ = Task.Run(async () =>
                {
                    using (client)
                    {
                        var stream = client.GetStream();
                        try
                        {
                            await stream.WriteAsync(Encoding.ASCII.GetBytes(name + "\n"), _stop.Token);
                            await stream.CopyToAsync(stream, _stop.Token);
                        }
                        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException)
                        {
                        }
                    }
                });
            }
        });
        return ($"127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}", listener);
    }
}
