using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using Coracle.Core.Identity;
using Coracle.Core.Join;
using Coracle.Core.Logging;
using Microsoft.Extensions.Logging;

namespace Coracle.Core.Tunnel;

/// <summary>
/// The agent's side of the tunnel: keeps a websocket to the server's <c>/v1/tunnel</c> open (reconnecting with
/// <see cref="TunnelBackoff"/>: exponential with a cap and jitter, reset after a good connection) and connects the streams the server opens, strictly: to <c>127.0.0.1:PORT</c> when PORT is allowed (the
/// target names loopback, this node's name or one of its addresses), or to an address inside this node's own pod
/// network (its podCIDRs, any port). Every other target is refused.
/// </summary>
internal sealed class TunnelClient
{
    private readonly Uri _server;
    private readonly byte[] _ca;
    private readonly ClusterToken _token;
    private readonly string _nodeName;
    private readonly IReadOnlyList<string> _addresses;
    private readonly IReadOnlySet<int> _allowedPorts;
    private readonly NodePodNetwork _podNetwork;
    private readonly Func<IPAddress, bool> _isHostAddress;
    private readonly RefusalLimiter _refusals = new();
    private readonly ILogger _log;
    private readonly TunnelBackoff _backoff;
    private readonly string? _nodePassword;
    private readonly TimeProvider _time;
    private volatile bool _connected;
    private int _connections;

    public TunnelClient(Uri server, byte[] ca, ClusterToken token, string nodeName, IReadOnlyList<string> addresses, IEnumerable<int> allowedPorts, NodePodNetwork podNetwork, ILogger log, Func<IPAddress, bool>? isHostAddress = null, TunnelBackoff? backoff = null, TimeProvider? time = null, string? nodePassword = null)
    {
        _nodePassword = nodePassword;
        _backoff = backoff ?? TunnelBackoff.Default();
        _time = time ?? TimeProvider.System;
        _server = server;
        _ca = ca;
        _token = token;
        _nodeName = nodeName;
        _addresses = addresses;
        _allowedPorts = allowedPorts.ToHashSet();
        _podNetwork = podNetwork;
        _isHostAddress = isHostAddress ?? IsHostAddress;
        _log = log;
    }

    public bool Connected => _connected;

    /// <summary>The server this client keeps its tunnel to.</summary>
    public Uri Server => _server;

    /// <summary>
    /// False when someone else runs the node's pod network watch (an agent with a tunnel to every server runs it once for
    /// all of them).
    /// </summary>
    public bool RunsPodNetwork { get; init; } = true;

    /// <summary>Connections that completed the handshake since the client started.</summary>
    public int Connections => Volatile.Read(ref _connections);

    public async Task RunAsync(CancellationToken ct)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var watching = RunsPodNetwork ? _podNetwork.RunAsync(stop.Token) : Task.CompletedTask;
        try
        {
            await RunTunnelAsync(ct);
        }
        finally
        {
            await stop.CancelAsync();
            await watching;
        }
    }

    private async Task RunTunnelAsync(CancellationToken ct)
    {
        var url = new UriBuilder(new Uri(_server, "v1/tunnel")) { Scheme = "wss" }.Uri;
        while (!ct.IsCancellationRequested)
        {
            string reason;
            var handshake = false;
            var connectedAt = 0L;
            try
            {
                using var socket = new ClientWebSocket();
                socket.Options.KeepAliveInterval = TimeSpan.FromSeconds(15);
                socket.Options.AddSubProtocol(TunnelMux.SubProtocol);
                socket.Options.SetRequestHeader("Authorization", "Bearer " + _token.Password);
                socket.Options.SetRequestHeader("X-Coracle-Node", _nodeName);
                if (_nodePassword is not null)
                {
                    // The server opens a node's tunnel only for the machine that holds the node's password.
                    socket.Options.SetRequestHeader("X-Coracle-Node-Password", _nodePassword);
                }

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
                if (socket.SubProtocol != TunnelMux.SubProtocol)
                {
                    // An older server accepts the upgrade without the subprotocol and would send version 1 frames.
                    throw new TunnelProtocolException($"the server does not speak {TunnelMux.SubProtocol} (a Coracle server older than this agent?); upgrade the server");
                }

                await using var mux = new TunnelMux(socket, $"server {url}", _log) { OnOpen = OpenAsync };
                var running = mux.RunAsync(ct);
                if (await mux.Handshake)
                {
                    handshake = true;
                    connectedAt = _time.GetTimestamp();
                    _log.AgentTunnelConnected(url.ToString());
                    _connected = true;
                    Interlocked.Increment(ref _connections);
                }

                await running;
                reason = mux.EndReason ?? "connection closed";
            }
            catch (Exception ex) when (ex is WebSocketException or IOException or SocketException or OperationCanceledException or HttpRequestException or TunnelProtocolException)
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

            _backoff.ConnectionEnded(handshake, handshake ? _time.GetElapsedTime(connectedAt) : TimeSpan.Zero);
            var delay = _backoff.Next();
            _log.AgentTunnelLost(url.ToString(), reason, (long)delay.TotalMilliseconds);
            try
            {
                await Task.Delay(delay, _time, ct);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }

    /// <summary>Answers one Open frame: connects the stream, or returns why not (internal for the tests).</summary>
    internal async Task<string?> OpenAsync(TunnelStream stream, string target, CancellationToken ct)
    {
        var colon = target.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(target.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is 0 or > 65535)
        {
            return Refuse(target, $"'{target}' is not host:port");
        }

        var host = target[..colon].Trim('[', ']');
        IPEndPoint upstream;
        var isIp = IPAddress.TryParse(host, out var ip);
        if (isIp && !IPAddress.IsLoopback(ip!) && _podNetwork.Contains(ip!) && !_isHostAddress(ip!))
        {
            // A pod on this node (egress-selector-mode pod or cluster): any port of the pod. The node's own address in
            // its pod network (the bridge's gateway) is the node, not a pod: it takes the branch below.
            upstream = new IPEndPoint(ip!, port);
        }
        else if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase) || (isIp && (IPAddress.IsLoopback(ip!) || _podNetwork.Contains(ip!)))
            || host.Equals(_nodeName, StringComparison.OrdinalIgnoreCase) || _addresses.Contains(host, StringComparer.OrdinalIgnoreCase))
        {
            if (!_allowedPorts.Contains(port))
            {
                return Refuse(target, $"port {port} is not allowed by this agent (tunnel-allowed-ports: {string.Join(",", _allowedPorts.Order())})");
            }

            upstream = new IPEndPoint(IPAddress.Loopback, port);
        }
        else
        {
            var network = _podNetwork.Cidrs.Count == 0 ? "its podCIDR is not assigned yet" : $"its pod network is {string.Join(",", _podNetwork.Cidrs)}";
            return Refuse(target, $"{host} is neither this node ({_nodeName}) nor one of its pods ({network})");
        }

        var tcp = new TcpClient(upstream.AddressFamily);
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(10));
            await tcp.ConnectAsync(upstream, timeout.Token);
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException && !ct.IsCancellationRequested)
        {
            tcp.Dispose();
            return Refuse(target, $"connecting to {upstream} on {_nodeName} failed: {(ex is SocketException ? ex.Message : "no answer within 10 s")}");
        }

        _log.TunnelStreamOpened(target, upstream.ToString());
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

    /// <summary>True when <paramref name="ip"/> is assigned to one of this host's interfaces (cni0's gateway, say).</summary>
    private static bool IsHostAddress(IPAddress ip) =>
        System.Net.NetworkInformation.NetworkInterface.GetAllNetworkInterfaces()
            .Any(n => n.GetIPProperties().UnicastAddresses.Any(a => a.Address.Equals(ip)));

    private string Refuse(string target, string reason)
    {
        if (_refusals.ShouldLog(target, out var suppressed))
        {
            if (suppressed > 0)
            {
                _log.TunnelStreamRefusedAgain(target, reason, suppressed);
            }
            else
            {
                _log.TunnelStreamRefused(target, reason);
            }
        }

        return reason;
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
