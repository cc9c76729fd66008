using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using Coracle.Core.Identity;
using Coracle.Core.Tunnel;
using Microsoft.Extensions.Logging.Abstractions;

namespace Coracle.Core.Tests.Tunnel;

/// <summary>
/// The agent's side of the tunnel answering the server's Open frames, over a real websocket pair on a loopback TCP
/// connection (server mux ↔ agent mux): only this node's loopback with an allowed port, or its own pod network.
/// </summary>
public sealed class TunnelClientTests : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly List<IAsyncDisposable> _disposables = [];

    private Task<TunnelMux> ConnectAsync(IReadOnlyList<IPNetwork> podNetwork, params int[] allowedPorts) =>
        ConnectAsync(podNetwork, _ => false, allowedPorts);

    private async Task<TunnelMux> ConnectAsync(IReadOnlyList<IPNetwork> podNetwork, Func<IPAddress, bool> isHostAddress, params int[] allowedPorts)
    {
        var client = new TunnelClient(new Uri("https://127.0.0.1:9345"), [], new ClusterToken("x", "y"), "agt", ["10.0.0.2"], allowedPorts,
            new NodePodNetwork(podNetwork, NullLogger.Instance), NullLogger.Instance, isHostAddress);
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var agentSide = new TcpClient();
        await agentSide.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port);
        var serverSide = await listener.AcceptTcpClientAsync();
        var server = new TunnelMux(WebSocket.CreateFromStream(serverSide.GetStream(), new WebSocketCreationOptions { IsServer = true }));
        var agent = new TunnelMux(WebSocket.CreateFromStream(agentSide.GetStream(), new WebSocketCreationOptions { IsServer = false })) { OnOpen = client.OpenAsync };
        _disposables.Add(server);
        _disposables.Add(agent);
        _ = server.RunAsync(_stop.Token);
        _ = agent.RunAsync(_stop.Token);
        return server;
    }

    [Fact]
    public async Task Open_AddressOutsideThisNodesPodNetwork_IsRefused()
    {
        var server = await ConnectAsync([IPNetwork.Parse("10.42.1.0/24")], 10250);
        var refused = await Assert.ThrowsAsync<TunnelOpenException>(() => server.OpenAsync("10.42.2.5:443", _stop.Token));
        Assert.Equal("10.42.2.5 is neither this node (agt) nor one of its pods (its pod network is 10.42.1.0/24)", refused.Message);
    }

    [Fact]
    public async Task Open_BeforeThePodCidrIsAssigned_IsRefusedSayingSo()
    {
        var server = await ConnectAsync([], 10250);
        var refused = await Assert.ThrowsAsync<TunnelOpenException>(() => server.OpenAsync("10.42.1.5:443", _stop.Token));
        Assert.Equal("10.42.1.5 is neither this node (agt) nor one of its pods (its podCIDR is not assigned yet)", refused.Message);
    }

    [Theory]
    [InlineData("127.0.0.1:22")]
    [InlineData("10.0.0.2:22")]
    [InlineData("agt:22")]
    public async Task Open_ThisNodeOnAPortNotAllowed_IsRefused(string target)
    {
        var server = await ConnectAsync([IPNetwork.Parse("10.42.1.0/24")], 10250);
        var refused = await Assert.ThrowsAsync<TunnelOpenException>(() => server.OpenAsync(target, _stop.Token));
        Assert.Equal("port 22 is not allowed by this agent (tunnel-allowed-ports: 10250)", refused.Message);
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("10.0.0.2")]
    [InlineData("agt")]
    public async Task Open_ThisNodeOnAnAllowedPort_ConnectsItsLoopback(string host)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var server = await ConnectAsync([], port);
        Assert.Equal("pong", await ExchangeAsync(server, listener, $"{host}:{port}"));
    }

    [Fact]
    public async Task Open_ThisHostsOwnAddressInsideItsPodNetwork_IsTheNodeSoOnlyAllowedPorts()
    {
        // cni0's gateway address lies in the podCIDR but belongs to the host: it must not open the host's other ports.
        var gateway = IPAddress.Parse("10.42.1.1");
        var server = await ConnectAsync([IPNetwork.Parse("10.42.1.0/24")], ip => ip.Equals(gateway), 10250);
        var refused = await Assert.ThrowsAsync<TunnelOpenException>(() => server.OpenAsync("10.42.1.1:22", _stop.Token));
        Assert.Equal("port 22 is not allowed by this agent (tunnel-allowed-ports: 10250)", refused.Message);
    }

    [Fact]
    public async Task Open_AddressInsideThisNodesPodNetwork_ConnectsItOnAnyPort()
    {
        // A "pod" at one of this machine's own non-loopback addresses, so the test needs no network namespace.
        var local = NetworkInterface.GetAllNetworkInterfaces().Where(n => n.OperationalStatus == OperationalStatus.Up)
            .SelectMany(n => n.GetIPProperties().UnicastAddresses).Select(a => a.Address)
            .FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork && !IPAddress.IsLoopback(a));
        Assert.NotNull(local);
        using var listener = new TcpListener(local, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var server = await ConnectAsync([new IPNetwork(local, 32)], 10250);
        Assert.Equal("pong", await ExchangeAsync(server, listener, $"{local}:{port}"));
    }

    private async Task<string> ExchangeAsync(TunnelMux server, TcpListener listener, string target)
    {
        var accept = listener.AcceptTcpClientAsync(_stop.Token).AsTask();
        await using var stream = await server.OpenAsync(target, _stop.Token);
        using var peer = await accept;
        await stream.WriteAsync("ping"u8.ToArray());
        var ping = new byte[4];
        await peer.GetStream().ReadExactlyAsync(ping);
        Assert.Equal("ping", Encoding.ASCII.GetString(ping));
        await peer.GetStream().WriteAsync("pong"u8.ToArray());
        var pong = new byte[4];
        await stream.ReadExactlyAsync(pong);
        return Encoding.ASCII.GetString(pong);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        foreach (var disposable in _disposables)
        {
            await disposable.DisposeAsync();
        }

        _stop.Dispose();
    }
}
