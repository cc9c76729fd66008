using System.Net;
using System.Net.Sockets;
using System.Text;
using Coracle.Core.Logging;
using Microsoft.Extensions.Logging;

namespace Coracle.Core.Tunnel;

/// <summary>
/// kube-apiserver's egress proxy: an HTTP CONNECT proxy on a unix socket (mode 0600). <c>CONNECT host:port</c> for a node
/// with a tunnel goes through that tunnel; for this node's own names and addresses it dials directly; anything else
/// is refused with 502.
/// </summary>
internal sealed class EgressProxy
{
    private readonly string _socketPath;
    private readonly TunnelRegistry _tunnels;
    private readonly IReadOnlyCollection<string> _localNames;
    private readonly ILogger _log;

    public EgressProxy(string socketPath, TunnelRegistry tunnels, IEnumerable<string> localNames, ILogger log)
    {
        _socketPath = socketPath;
        _tunnels = tunnels;
        _localNames = new HashSet<string>(localNames, StringComparer.OrdinalIgnoreCase);
        _log = log;
    }

    public async Task RunAsync(CancellationToken ct)
    {
        File.Delete(_socketPath);
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(_socketPath));
        File.SetUnixFileMode(_socketPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        listener.Listen(64);
        _log.EgressListening(_socketPath);
        try
        {
            while (!ct.IsCancellationRequested)
            {
                var client = await listener.AcceptAsync(ct);
                _ = Task.Run(() => HandleAsync(client, ct), ct);
            }
        }
        catch (OperationCanceledException)
        {
        }
        finally
        {
            File.Delete(_socketPath);
        }
    }

    private async Task HandleAsync(Socket client, CancellationToken ct)
    {
        await using var downstream = new NetworkStream(client, ownsSocket: true);
        string target = "?";
        try
        {
            var request = await ReadHeadAsync(downstream, ct);
            var firstLine = request.Split("\r\n")[0].Split(' ');
            if (firstLine.Length < 2 || firstLine[0] != "CONNECT")
            {
                await ReplyAsync(downstream, "405 Method Not Allowed", "only CONNECT host:port is supported", ct);
                return;
            }

            target = firstLine[1];
            var colon = target.LastIndexOf(':');
            if (colon <= 0 || !int.TryParse(target.AsSpan(colon + 1), out var port))
            {
                await ReplyAsync(downstream, "400 Bad Request", $"'{target}' is not host:port", ct);
                return;
            }

            var host = target[..colon].Trim('[', ']');
            Stream upstream;
            if (_tunnels.Find(host) is { } session)
            {
                try
                {
                    upstream = await session.Mux.OpenAsync(target, ct);
                }
                catch (TunnelOpenException ex)
                {
                    _log.EgressRefused(target, ex.Message);
                    await ReplyAsync(downstream, "502 Bad Gateway", $"node {session.NodeName} refused {target}: {ex.Message}", ct);
                    return;
                }

                _log.EgressTunnel(target, session.NodeName);
            }
            else if (_localNames.Contains(host) || (IPAddress.TryParse(host, out var ip) && IPAddress.IsLoopback(ip)))
            {
                var tcp = new TcpClient();
                await tcp.ConnectAsync(host, port, ct);
                upstream = tcp.GetStream();
                _log.EgressDirect(target);
            }
            else
            {
                _log.EgressRefused(target, "no tunnel: the node is not connected");
                await ReplyAsync(downstream, "502 Bad Gateway", $"no tunnel to {host}: the node is not connected", ct);
                return;
            }

            await using (upstream)
            {
                await downstream.WriteAsync("HTTP/1.1 200 Connection established\r\n\r\n"u8.ToArray(), ct);
                using var done = CancellationTokenSource.CreateLinkedTokenSource(ct);
                var up = PumpAsync(downstream, upstream, done.Token);
                var down = PumpAsync(upstream, downstream, done.Token);
                await Task.WhenAny(up, down);
                await done.CancelAsync();
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or InvalidDataException)
        {
            _log.EgressFailed(target, ex.Message);
        }
    }

    private static async Task PumpAsync(Stream from, Stream to, CancellationToken ct)
    {
        try
        {
            await from.CopyToAsync(to, 32 * 1024, ct);
        }
        catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
        }
    }

    private static async Task ReplyAsync(Stream stream, string status, string message, CancellationToken ct)
    {
        var body = Encoding.UTF8.GetBytes(message + "\n");
        var head = Encoding.ASCII.GetBytes($"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n");
        await stream.WriteAsync(head, ct);
        await stream.WriteAsync(body, ct);
    }

    /// <summary>Reads the request head byte by byte so nothing after the blank line is consumed.</summary>
    private static async Task<string> ReadHeadAsync(Stream stream, CancellationToken ct)
    {
        var head = new List<byte>(256);
        var one = new byte[1];
        while (head.Count < 16 * 1024)
        {
            if (await stream.ReadAsync(one, ct) == 0)
            {
                throw new InvalidDataException("connection closed before the request head ended");
            }

            head.Add(one[0]);
            if (head.Count >= 4 && head[^1] == '\n' && head[^2] == '\r' && head[^3] == '\n' && head[^4] == '\r')
            {
                return Encoding.ASCII.GetString(head.ToArray());
            }
        }

        throw new InvalidDataException("request head longer than 16 KiB");
    }
}
