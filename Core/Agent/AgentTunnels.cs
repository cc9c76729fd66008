using Coracle.Core.Logging;
using Coracle.Core.Tunnel;
using Microsoft.Extensions.Logging;

namespace Coracle.Core.Agent;

/// <summary>
/// The agent's tunnels, one to every server of the cluster (as K3s's agents keep one to each server), so whichever
/// kube-apiserver a <c>kubectl logs</c> or <c>exec</c> reaches finds this node's tunnel. The servers come from
/// <see cref="ServerList"/>: the one the agent joined (its <c>--server</c> URL) and every other API server's address at
/// the joined server's supervisor port. The node's pod network is watched once for all of them.
/// </summary>
internal sealed class AgentTunnels
{
    private readonly Lock _lock = new();
    private readonly ServerList _servers;
    private readonly Uri _joined;
    private readonly Func<Uri, TunnelClient> _create;
    private readonly NodePodNetwork _podNetwork;
    private readonly ILogger _log;
    private readonly Dictionary<Uri, (TunnelClient Client, CancellationTokenSource Stop, Task Run)> _clients = [];
    private CancellationToken _running;

    /// <param name="servers">The known API servers.</param>
    /// <param name="joined">The supervisor URL the agent joined (<c>--server</c>); the default server's tunnel goes there.</param>
    /// <param name="create">Makes the tunnel client of one supervisor URL (it must not run the pod network itself).</param>
    /// <param name="podNetwork">The node's pod network, watched here once.</param>
    /// <param name="log">Where tunnels coming and going are logged.</param>
    public AgentTunnels(ServerList servers, Uri joined, Func<Uri, TunnelClient> create, NodePodNetwork podNetwork, ILogger log)
    {
        _servers = servers;
        _joined = joined;
        _create = create;
        _podNetwork = podNetwork;
        _log = log;
    }

    /// <summary>True while at least one tunnel is connected.</summary>
    public bool Connected
    {
        get
        {
            lock (_lock)
            {
                return _clients.Values.Any(c => c.Client.Connected);
            }
        }
    }

    /// <summary>The supervisor URLs a tunnel is kept to, and whether each is connected now.</summary>
    public IReadOnlyList<(Uri Server, bool Connected)> Tunnels
    {
        get
        {
            lock (_lock)
            {
                return _clients.Select(c => (c.Key, c.Value.Client.Connected)).OrderBy(c => c.Key.ToString(), StringComparer.Ordinal).ToList();
            }
        }
    }

    /// <summary>The supervisor URL of every server in <paramref name="servers"/>: the joined URL for the default one.</summary>
    public static IReadOnlyList<Uri> SupervisorUrls(IReadOnlyList<string> servers, string defaultServer, Uri joined) =>
        servers.Select(s => s == defaultServer || ServerList.Parse(s) is not { } endpoint
                ? joined
                : new Uri($"https://{ServerList.Format(endpoint.Host, joined.Port)}/"))
            .Distinct()
            .ToList();

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var watching = _podNetwork.RunAsync(cancellationToken);
        lock (_lock)
        {
            _running = cancellationToken;
        }

        _servers.Changed += Sync;
        try
        {
            Sync(_servers.Servers);
            await Task.Delay(Timeout.Infinite, cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        finally
        {
            _servers.Changed -= Sync;
            List<Task> runs;
            lock (_lock)
            {
                runs = _clients.Values.Select(c => c.Run).ToList();
                foreach (var client in _clients.Values)
                {
                    client.Stop.Cancel();
                }
            }

            await Task.WhenAll(runs);
            await watching;
            lock (_lock)
            {
                foreach (var client in _clients.Values)
                {
                    client.Stop.Dispose();
                }

                _clients.Clear();
            }
        }
    }

    private void Sync(IReadOnlyList<string> servers)
    {
        var wanted = SupervisorUrls(servers, _servers.Default, _joined);
        lock (_lock)
        {
            if (_running.IsCancellationRequested)
            {
                return;
            }

            foreach (var gone in _clients.Keys.Where(u => !wanted.Contains(u)).ToList())
            {
                _log.AgentTunnelDropped(gone.ToString());
                var (_, stop, run) = _clients[gone];
                stop.Cancel();
                _ = run.ContinueWith(_ => stop.Dispose(), TaskScheduler.Default);
                _clients.Remove(gone);
            }

            foreach (var url in wanted.Where(u => !_clients.ContainsKey(u)))
            {
                var client = _create(url);
                var stop = CancellationTokenSource.CreateLinkedTokenSource(_running);
                _log.AgentTunnelAdded(url.ToString());
                _clients[url] = (client, stop, Task.Run(() => client.RunAsync(stop.Token), CancellationToken.None));
            }
        }
    }
}
