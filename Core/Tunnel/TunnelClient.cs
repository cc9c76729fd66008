using System.Net.Sockets;
using System.Net.WebSockets;
using Coracle.Core.Identity;
using Coracle.Core.Join;
using Coracle.Core.Logging;
using Microsoft.Extensions.Logging;

namespace Coracle.Core.Tunnel;

/// <summary>
/// The agent's side of the tunnel: keeps a websocket to the server's <c>/v1/tunnel</c> open (reconnecting with
/// backoff) and connects streams the server opens to <c>127.0.0.1:PORT</c> when PORT is allowed.
/// </summary>
internal sealed class TunnelClient
{
    private readonly Uri _server;
    private readonly byte[] _ca;
    private readonly ClusterToken _token;
    private readonly string _nodeName;
    private readonly IReadOnlyList<string> _addresses;
    private readonly IReadOnlySet<int> _allowedPorts;
    private readonly ILogger _log;
    private volatile bool _connected;

    public TunnelClient(Uri server, byte[] ca, ClusterToken token, string nodeName, IReadOnlyList<string> addresses, IEnumerable<int> allowedPorts, ILogger log)
    {
        _server = server;
        _ca = ca;
        _token = token;
        _nodeName = nodeName;
        _addresses = addresses;
        _allowedPorts = allowedPorts.ToHashSet();
        _log = log;
    }

    public bool Connected => _connected;

    public async Task RunAsync(CancellationToken ct)
    {
        var url = new UriBuilder(new Uri(_server, "v1/tunnel")) { Scheme = "wss" }.Uri;
        for (var attempt = 0; !ct.IsCancellationRequested;)
        {
            string reason;
            try
            {
                using var socket = new ClientWebSocket();
                socket.Options.KeepAliveInterval = TimeSpan.FromSeconds(15);
                socket.Options.SetRequestHeader("Authorization", "Bearer " + _token.Password);
                socket.Options.SetRequestHeader("X-Coracle-Node", _nodeName);
                socket.Options.SetRequestHeader("X-Coracle-Addresses", string.Join(",", _addresses));
                var trust = AgentJoin.TrustOnly(_ca);
                socket.Options.RemoteCertificateValidationCallback = (_, cert, _, errors) =>
                {
                    if (cert is null)
                    {
                        return false;
                    }

                    using var chain = new System.Security.Cryptography.X509Certificates.X509Chain { ChainPolicy = trust.CertificateChainPolicy!.Clone() };
                    using var leaf = System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadCertificate(cert.GetRawCertData());
                    return chain.Build(leaf) && !errors.HasFlag(System.Net.Security.SslPolicyErrors.RemoteCertificateNameMismatch);
                };
                using var connect = CancellationTokenSource.CreateLinkedTokenSource(ct);
                connect.CancelAfter(TimeSpan.FromSeconds(10));
                await socket.ConnectAsync(url, connect.Token);
                await using var mux = new TunnelMux(socket) { OnOpen = OpenAsync };
                _connected = true;
                attempt = 0;
                _log.AgentTunnelConnected(url.ToString());
                await mux.RunAsync(ct);
                reason = "connection closed";
            }
            catch (Exception ex) when (ex is WebSocketException or IOException or SocketException or OperationCanceledException or HttpRequestException)
            {
                if (ct.IsCancellationRequested)
                {
                    break;
                }

                reason = ex.InnerException?.Message ?? ex.Message;
            }
            finally
            {
                _connected = false;
            }

            if (ct.IsCancellationRequested)
            {
                break;
            }

            var delay = AgentJoin.Backoff(attempt++, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(15));
            _log.AgentTunnelLost(url.ToString(), reason, (long)delay.TotalMilliseconds);
            try
            {
                await Task.Delay(delay, ct);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }

    private async Task<string?> OpenAsync(TunnelStream stream, string target, CancellationToken ct)
    {
        var colon = target.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(target.AsSpan(colon + 1), out var port))
        {
            return $"'{target}' is not host:port";
        }

        if (!_allowedPorts.Contains(port))
        {
            _log.TunnelStreamRefused(target, "port not allowed");
            return $"port {port} is not allowed by this agent (tunnel-allowed-ports: {string.Join(",", _allowedPorts.Order())})";
        }

        var tcp = new TcpClient();
        try
        {
            await tcp.ConnectAsync(System.Net.IPAddress.Loopback, port, ct);
        }
        catch (SocketException ex)
        {
            tcp.Dispose();
            _log.TunnelStreamRefused(target, ex.Message);
            return $"connecting to 127.0.0.1:{port} on {_nodeName} failed: {ex.Message}";
        }

        await stream.AcceptAsync(ct);
        _ = Task.Run(async () =>
        {
            using (tcp)
            await using (stream)
            {
                var local = tcp.GetStream();
                using var done = CancellationTokenSource.CreateLinkedTokenSource(ct);
                var up = CopyAsync(local, stream, done.Token);
                var down = CopyAsync(stream, local, done.Token);
                await Task.WhenAny(up, down);
                await done.CancelAsync();
            }
        }, ct);
        return null;
    }

    private static async Task CopyAsync(Stream from, Stream to, CancellationToken ct)
    {
        try
        {
            await from.CopyToAsync(to, 32 * 1024, ct);
        }
        catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or ObjectDisposedException or WebSocketException)
        {
        }
    }
}
