using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Coracle.Core.Tunnel;
using Microsoft.Extensions.Logging;

namespace Coracle.Core.Tests.Tunnel;

/// <summary>The real egress proxy on a unix socket in a temp folder, with a fixed table (no kube-apiserver).</summary>
public sealed class EgressProxyTests : IAsyncDisposable
{
    private readonly TempDir _dir = new("egress");
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentQueue<string> _lines = new();
    private readonly string _socket;
    private readonly Task _running;

    public EgressProxyTests()
    {
        _socket = _dir.Combine("egress.sock");
        var table = EgressTable.Build(
            [new NodeEntry("srv", [IPAddress.Parse("10.0.0.1")], [IPNetwork.Parse("10.42.0.0/24")]), new NodeEntry("agt", [IPAddress.Parse("10.0.0.2")], [IPNetwork.Parse("10.42.1.0/24")])],
            [new ServiceEntry("default", "web", [IPAddress.Parse("10.43.0.80")], [new ServiceEntry.Port("", 80)])],
            []);
        var log = new ListLoggerFactory(_lines, (level, _, message) => $"{level} {message}").CreateLogger("egress-proxy");
        var proxy = new EgressProxy(_socket, new TunnelRegistry(), new EgressRoutes(EgressMode.Cluster, "srv", ["10.0.0.1", "localhost"]), () => table, log);
        _running = proxy.RunAsync(_stop.Token);
    }

    [Fact]
    public async Task Connect_AddressThatIsNeitherNodePodNorService_IsRefused403AndLoggedOncePerMinute()
    {
        var first = await ConnectAsync("192.0.2.10:443");
        Assert.Equal("HTTP/1.1 403 Forbidden|192.0.2.10 is neither a node, a pod (no node's podCIDR holds it) nor a service cluster IP of this cluster", first);
        var second = await ConnectAsync("192.0.2.10:443");
        Assert.Equal(first, second);
        Assert.Single(_lines, l => l.StartsWith("Warning egress CONNECT 192.0.2.10:443 refused with 403", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Connect_ClusterIpWithoutEndpoints_IsRefused503()
    {
        Assert.Equal("HTTP/1.1 503 Service Unavailable|service default/web port 80 has no ready endpoint", await ConnectAsync("10.43.0.80:80"));
    }

    [Fact]
    public async Task Connect_PodOfANodeWithoutTunnel_IsRefused502()
    {
        Assert.Equal("HTTP/1.1 502 Bad Gateway|no tunnel to node agt: the node is not connected", await ConnectAsync("10.42.1.5:443"));
    }

    [Fact]
    public async Task Connect_Loopback_IsConnectedAndCarriesBytesBothWays()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var echo = Task.Run(async () =>
        {
            using var peer = await listener.AcceptTcpClientAsync();
            var stream = peer.GetStream();
            var buffer = new byte[5];
            await stream.ReadExactlyAsync(buffer);
            await stream.WriteAsync(Encoding.ASCII.GetBytes("pong:" + Encoding.ASCII.GetString(buffer)));
        });

        using var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await client.ConnectAsync(new UnixDomainSocketEndPoint(_socket));
        await using var stream = new NetworkStream(client);
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"));
        Assert.Equal("HTTP/1.1 200 Connection established\r\n\r\n", await ReadHeadAsync(stream));
        await stream.WriteAsync("hello"u8.ToArray());
        var reply = new byte[10];
        await stream.ReadExactlyAsync(reply);
        Assert.Equal("pong:hello", Encoding.ASCII.GetString(reply));
        await echo;
    }

    /// <summary>Sends CONNECT, returns "status line|body".</summary>
    private async Task<string> ConnectAsync(string target)
    {
        using var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await client.ConnectAsync(new UnixDomainSocketEndPoint(_socket));
        await using var stream = new NetworkStream(client);
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n"));
        var head = await ReadHeadAsync(stream);
        using var reader = new StreamReader(stream);
        var body = await reader.ReadToEndAsync();
        return head.Split("\r\n")[0] + "|" + body.TrimEnd('\n');
    }

    private static async Task<string> ReadHeadAsync(Stream stream)
    {
        var head = new List<byte>();
        var one = new byte[1];
        while (!(head.Count >= 4 && head[^1] == '\n' && head[^2] == '\r' && head[^3] == '\n' && head[^4] == '\r') && await stream.ReadAsync(one) == 1)
        {
            head.Add(one[0]);
        }

        return Encoding.ASCII.GetString(head.ToArray());
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _running;
        _stop.Dispose();
        _dir.Dispose();
    }
}
