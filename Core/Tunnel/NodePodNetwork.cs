using System.Net;
using Coracle.Core.Hosting;
using Coracle.Core.Logging;
using Microsoft.Extensions.Logging;

namespace Coracle.Core.Tunnel;

/// <summary>
/// The agent's own pod network: the podCIDRs kube-controller-manager gave this node, from a watch of the agent's Node
/// (with the node controllers' credentials). The tunnel accepts streams to addresses inside it and nowhere else but the
/// allowed local ports.
/// </summary>
internal sealed class NodePodNetwork
{
    private readonly Uri _apiServer;
    private readonly string _caFile;
    private readonly string _certFile;
    private readonly string _keyFile;
    private readonly string _nodeName;
    private readonly ILogger _log;
    private volatile IReadOnlyList<IPNetwork> _cidrs = [];

    public NodePodNetwork(Uri apiServer, string caFile, string certFile, string keyFile, string nodeName, ILogger log)
    {
        _apiServer = apiServer;
        _caFile = caFile;
        _certFile = certFile;
        _keyFile = keyFile;
        _nodeName = nodeName;
        _log = log;
    }

    /// <summary>A fixed pod network (tests).</summary>
    public NodePodNetwork(IReadOnlyList<IPNetwork> cidrs, ILogger log)
        : this(new Uri("https://127.0.0.1"), "", "", "", "", log)
    {
        _cidrs = cidrs;
        Fixed = true;
    }

    /// <summary>The node's podCIDRs; empty until kube-controller-manager assigned them.</summary>
    public IReadOnlyList<IPNetwork> Cidrs => _cidrs;

    private bool Fixed { get; }

    /// <summary>True when <paramref name="ip"/> is inside this node's pod network.</summary>
    public bool Contains(IPAddress ip) => _cidrs.Any(c => c.Contains(ip));

    public async Task RunAsync(CancellationToken ct)
    {
        if (Fixed)
        {
            return;
        }

        using var handler = TlsClient.Configure(new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(5) }, _caFile, _certFile, _keyFile);
        using var client = new HttpClient(handler) { BaseAddress = _apiServer, Timeout = Timeout.InfiniteTimeSpan };
        var watch = new ClusterWatch<NodeEntry>(client, "/api/v1/nodes", "metadata.name=" + _nodeName, NodeEntry.FromJson, _log)
        {
            Changed = nodes =>
            {
                var cidrs = nodes.FirstOrDefault(n => n.Name == _nodeName)?.PodCidrs ?? [];
                if (!cidrs.SequenceEqual(_cidrs))
                {
                    _cidrs = cidrs;
                    _log.TunnelPodNetwork(_nodeName, cidrs.Count == 0 ? "not assigned yet" : string.Join(",", cidrs));
                }
            },
        };
        await watch.RunAsync(ct);
    }
}
