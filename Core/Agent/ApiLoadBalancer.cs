using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Coracle.Core.Logging;
using Microsoft.Extensions.Logging;

namespace Coracle.Core.Agent;

/// <summary>
/// The agent's client-side load balancer for the API servers (K3s's agent load balancer): a TCP pass-through on a
/// loopback port that the agent's kubelet, kube-proxy and controllers use as their API server. TLS stays end to end
/// (kube-apiserver's certificate names 127.0.0.1), so nothing is decrypted here. A new connection goes to the server that
/// answered last; when it does not answer within the connect timeout the next server of <see cref="ServerList"/> is
/// tried, and so on, so an agent keeps working while any server of the cluster is up. When a server leaves the list, the
/// connections to it are closed, so clients reconnect to one that is still there.
/// </summary>
internal sealed class ApiLoadBalancer
{
    private readonly IPEndPoint _listen;
    private readonly ServerList _servers;
    private readonly ILogger _log;
    private readonly TimeSpan _connectTimeout;
    private readonly ConcurrentDictionary<Connection, string> _open = new();
    private volatile TaskCompletionSource<int> _bound = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile string? _current;

    public ApiLoadBalancer(IPEndPoint listen, ServerList servers, ILogger log, TimeSpan? connectTimeout = null)
    {
        _listen = listen;
        _servers = servers;
        _log = log;
        _connectTimeout = connectTimeout ?? TimeSpan.FromSeconds(5);
        _servers.Changed += CloseRemoved;
    }

    /// <summary>
    /// The port it listens on, once the latest <see cref="RunAsync"/> does (the listen port, or the one the kernel chose
    /// for port 0). Each run after one that listened starts a new task, so a restart that cannot listen is not taken for
    /// one that does.
    /// </summary>
    public Task<int> Bound => _bound.Task;

    /// <summary>True while it listens.</summary>
    public bool Listening { get; private set; }

    /// <summary>The server new connections go to first (the last that answered); null before the first connection.</summary>
    public string? Current => _current;

    /// <summary>Connections open through it now.</summary>
    public int OpenConnections => _open.Count;

    /// <summary>Accepts connections until <paramref name="cancellationToken"/> is cancelled, then closes every connection.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        if (_bound.Task.IsCompleted)
        {
            _bound = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        using var listener = new TcpListener(_listen);
        try
        {
            listener.Start(512);
        }
        catch (SocketException ex)
        {
            throw new InvalidOperationException($"the API server load balancer cannot listen on {_listen}: {ex.Message}; free the port or choose another with --lb-server-port", ex);
        }

        Listening = true;
        _bound.TrySetResult(((IPEndPoint)listener.LocalEndpoint).Port);
        _log.LoadBalancerListening(listener.LocalEndpoint.ToString()!, string.Join(", ", _servers.Servers));
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                var client = await listener.AcceptSocketAsync(cancellationToken);
                _ = Task.Run(() => ServeAsync(client, cancellationToken), CancellationToken.None);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        finally
        {
            Listening = false;
            foreach (var connection in _open.Keys)
            {
                connection.Close();
            }
        }
    }

    private async Task ServeAsync(Socket client, CancellationToken cancellationToken)
    {
        client.NoDelay = true;
        var (upstream, server) = await DialAsync(cancellationToken);
        if (upstream is null)
        {
            client.Dispose();
            return;
        }

        var connection = new Connection(client, upstream);
        _open[connection] = server!;

        // A server that left the list while this one was dialling: close at once rather than keep a stale connection.
        if (!_servers.Servers.Contains(server!, StringComparer.Ordinal))
        {
            connection.Close();
        }

        try
        {
            await connection.PumpAsync(cancellationToken);
        }
        finally
        {
            _open.TryRemove(connection, out _);
            connection.Close();
        }
    }

    /// <summary>The current server first, then the others in list order; the first that accepts becomes current.</summary>
    private async Task<(Socket? Socket, string? Server)> DialAsync(CancellationToken cancellationToken)
    {
        var servers = _servers.Servers;
        var current = _current;
        var order = current is not null && servers.Contains(current, StringComparer.Ordinal)
            ? [current, .. servers.Where(s => s != current)]
            : servers.ToList();
        var failures = new List<string>();
        foreach (var server in order)
        {
            var endpoint = ServerList.Parse(server)!;
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(_connectTimeout);
            try
            {
                await socket.ConnectAsync(endpoint, timeout.Token);
                if (current != server)
                {
                    _current = server;
                    if (current is null)
                    {
                        _log.LoadBalancerUsing(server);
                    }
                    else
                    {
                        _log.LoadBalancerSwitched(server, string.Join("; ", failures.DefaultIfEmpty($"{current} left the list")));
                    }
                }

                return (socket, server);
            }
            catch (Exception ex) when (ex is SocketException || (ex is OperationCanceledException && !cancellationToken.IsCancellationRequested))
            {
                socket.Dispose();
                failures.Add($"{server}: {(ex is OperationCanceledException ? $"no answer within {_connectTimeout.TotalSeconds:0.#} s" : ex.Message)}");
            }
            catch (OperationCanceledException)
            {
                socket.Dispose();
                return (null, null);
            }
        }

        _log.LoadBalancerNoServer(string.Join("; ", failures));
        return (null, null);
    }

    private void CloseRemoved(IReadOnlyList<string> servers)
    {
        foreach (var (connection, server) in _open)
        {
            if (!servers.Contains(server, StringComparer.Ordinal))
            {
                connection.Close();
            }
        }
    }

    /// <summary>A client socket and its upstream, copied both ways until either side ends.</summary>
    private sealed class Connection(Socket client, Socket upstream)
    {
        private int _closed;

        public async Task PumpAsync(CancellationToken cancellationToken)
        {
            await using var a = new NetworkStream(client, ownsSocket: false);
            await using var b = new NetworkStream(upstream, ownsSocket: false);
            var up = CopyAsync(a, b, cancellationToken);
            var down = CopyAsync(b, a, cancellationToken);

            // Either direction ending (EOF, an error, a close) ends the connection: TLS peers do not use half-closed
            // connections, and a server that died must not leave its client waiting on the other direction.
            await Task.WhenAny(up, down);
            Close();
            await Task.WhenAll(up, down);
        }

        public void Close()
        {
            if (Interlocked.Exchange(ref _closed, 1) == 0)
            {
                client.Dispose();
                upstream.Dispose();
            }
        }

        private static async Task CopyAsync(Stream from, Stream to, CancellationToken cancellationToken)
        {
            try
            {
                await from.CopyToAsync(to, 64 * 1024, cancellationToken);
            }
            catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or OperationCanceledException)
            {
                // The other side is gone; Close() tidies up.
            }
        }
    }
}
