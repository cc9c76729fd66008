using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Coracle.Core.Logging;
using Microsoft.Extensions.Logging;

namespace Coracle.Core.Tunnel;

/// <summary>
/// kube-apiserver's egress proxy: an HTTP CONNECT proxy on a unix socket (mode 0600). Each <c>CONNECT host:port</c> is
/// routed by <see cref="EgressRoutes"/> over the in-memory <see cref="EgressTable"/> (kept current by an
/// <see cref="EgressTableWatcher"/>): dialled directly, opened through a node's tunnel, or refused (403, 502, 503) —
/// never a blocking lookup per connection. Refusals are logged at most once per target per minute.
/// </summary>
internal sealed class EgressProxy
{
    private readonly string _socketPath;
    private readonly TunnelRegistry _tunnels;
    private readonly EgressRoutes _routes;
    private readonly Func<EgressTable> _table;
    private readonly EgressTableWatcher? _watcher;
    private readonly RefusalLimiter _refusals;
    private readonly ILogger _log;

    /// <summary>A proxy whose table comes from <paramref name="watcher"/> (run together with the proxy).</summary>
    public EgressProxy(string socketPath, TunnelRegistry tunnels, EgressRoutes routes, EgressTableWatcher watcher, ILogger log, TimeProvider? time = null)
        : this(socketPath, tunnels, routes, () => watcher.Current, log, time)
    {
        _watcher = watcher;
    }

    /// <summary>A proxy that reads its table from <paramref name="table"/> (tests).</summary>
    public EgressProxy(string socketPath, TunnelRegistry tunnels, EgressRoutes routes, Func<EgressTable> table, ILogger log, TimeProvider? time = null)
    {
        _socketPath = socketPath;
        _tunnels = tunnels;
        _routes = routes;
        _table = table;
        _refusals = new RefusalLimiter(time);
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
        _log.EgressMode(EgressModes.Name(_routes.Mode), EgressModes.Describe(_routes.Mode));
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var watching = _watcher?.RunAsync(stop.Token) ?? Task.CompletedTask;
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
            await stop.CancelAsync();
            await watching;
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
            if (colon <= 0 || !int.TryParse(target.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is 0 or > 65535)
            {
                await ReplyAsync(downstream, "400 Bad Request", $"'{target}' is not host:port", ct);
                return;
            }

            var route = _routes.Decide(_table(), target[..colon], port, h => _tunnels.Find(h)?.NodeName);
            var upstream = route.Kind switch
            {
                EgressRouteKind.Tunnel => await OpenTunnelAsync(downstream, target, route, ct),
                EgressRouteKind.Direct => await DialAsync(downstream, target, route, ct),
                _ => await RefuseAsync(downstream, target, route.Status, route.Reason, ct),
            };
            if (upstream is null)
            {
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

    private async Task<Stream?> OpenTunnelAsync(Stream downstream, string target, EgressRoute route, CancellationToken ct)
    {
        if (_tunnels.Find(route.Node!) is not { } session)
        {
            return await RefuseAsync(downstream, target, 502, $"no tunnel to node {route.Node}: the node is not connected", ct);
        }

        try
        {
            var stream = await session.Mux.OpenAsync(route.Target, ct);
            _log.EgressRouted(target, $"through the tunnel of node {session.NodeName} to {route.Target}", route.Reason);
            return stream;
        }
        catch (TunnelOpenException ex)
        {
            return await RefuseAsync(downstream, target, 502, $"node {session.NodeName} refused {route.Target}: {ex.Message}", ct);
        }
    }

    private async Task<Stream?> DialAsync(Stream downstream, string target, EgressRoute route, CancellationToken ct)
    {
        var colon = route.Target.LastIndexOf(':');
        var host = route.Target[..colon].Trim('[', ']');
        var port = int.Parse(route.Target.AsSpan(colon + 1), CultureInfo.InvariantCulture);
        var tcp = IPAddress.TryParse(host, out var ip) ? new TcpClient(ip.AddressFamily) : new TcpClient();
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(10));
            await (ip is null ? tcp.ConnectAsync(host, port, timeout.Token) : tcp.ConnectAsync(ip, port, timeout.Token));
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException && !ct.IsCancellationRequested)
        {
            tcp.Dispose();
            var why = ex is SocketException ? ex.Message : "no answer within 10 s";
            return await RefuseAsync(downstream, target, 502, $"dialling {route.Target} ({route.Reason}) failed: {why}", ct);
        }

        _log.EgressRouted(target, "dialled directly", route.Reason);
        return tcp.GetStream();
    }

    private async Task<Stream?> RefuseAsync(Stream downstream, string target, int status, string reason, CancellationToken ct)
    {
        if (_refusals.ShouldLog(target, out var suppressed))
        {
            if (suppressed > 0)
            {
                _log.EgressRefusedAgain(target, status, reason, suppressed);
            }
            else
            {
                _log.EgressRefusedRated(target, status, reason);
            }
        }

        var text = status switch
        {
            403 => "403 Forbidden",
            503 => "503 Service Unavailable",
            _ => "502 Bad Gateway",
        };
        await ReplyAsync(downstream, text, reason, ct);
        return null;
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
