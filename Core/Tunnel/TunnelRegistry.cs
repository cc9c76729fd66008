using System.Collections.Concurrent;
using System.Net;

namespace Coracle.Core.Tunnel;

/// <summary>An agent's open tunnel: its node name, addresses and multiplexer.</summary>
internal sealed record TunnelSession(string NodeName, IReadOnlyList<string> Addresses, TunnelMux Mux);

/// <summary>The server's agents with an open tunnel, found by node name or address.</summary>
internal sealed class TunnelRegistry
{
    private readonly ConcurrentDictionary<string, TunnelSession> _byNode = new(StringComparer.OrdinalIgnoreCase);

    public IReadOnlyCollection<TunnelSession> Sessions => _byNode.Values.ToList();

    public void Add(TunnelSession session) => _byNode[session.NodeName] = session;

    public void Remove(TunnelSession session) => _byNode.TryRemove(new KeyValuePair<string, TunnelSession>(session.NodeName, session));

    /// <summary>The session for a CONNECT host: a node name or one of the node's addresses.</summary>
    public TunnelSession? Find(string host)
    {
        host = host.Trim('[', ']');
        if (_byNode.TryGetValue(host, out var byName))
        {
            return byName;
        }

        if (IPAddress.TryParse(host, out var ip))
        {
            return _byNode.Values.FirstOrDefault(s => s.Addresses.Any(a => IPAddress.TryParse(a, out var other) && other.Equals(ip)));
        }

        return null;
    }

    /// <summary>Waits until the named node has a tunnel (tests and readiness), polling every 100 ms.</summary>
    public async Task<TunnelSession> WaitAsync(string host, CancellationToken ct)
    {
        while (true)
        {
            if (Find(host) is { } session)
            {
                return session;
            }

            await Task.Delay(100, ct);
        }
    }
}
