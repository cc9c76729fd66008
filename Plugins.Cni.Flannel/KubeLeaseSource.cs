using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;

namespace Coracle.Plugins.Cni.Flannel;

/// <summary>
/// flannel's kube subnet manager: this node's lease is its <c>spec.podCIDR</c> (allocated by
/// kube-controller-manager), its backend data goes into flannel's annotations on its own Node, and the peers are
/// the other Nodes carrying those annotations. A deleted Node is a removed peer.
/// </summary>
internal sealed class KubeLeaseSource : ISubnetLeaseSource
{
    private readonly INodeClient _client;
    private readonly string _nodeName;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly TimeSpan _retry;

    public KubeLeaseSource(INodeClient client, string nodeName, ILogger logger, TimeProvider? time = null, TimeSpan? retry = null)
    {
        _client = client;
        _nodeName = nodeName;
        _logger = logger;
        _time = time ?? TimeProvider.System;
        // Polled while the node waits for kube-controller-manager's podCIDR, which is on the path to Node Ready at every
        // fresh start: a 2 s poll cost a second on average there; a GET every 0.5 s costs nothing measurable.
        _retry = retry ?? TimeSpan.FromMilliseconds(500);
    }

    public async Task<Ipv4Cidr> AcquireAsync(LocalAttributes local, CancellationToken cancellationToken)
    {
        var lastLog = DateTimeOffset.MinValue;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            string waitingFor;
            try
            {
                var node = await _client.GetNodeAsync(_nodeName, cancellationToken);
                if (node is null)
                {
                    waitingFor = $"node {_nodeName} to be registered";
                }
                else if (!Ipv4Cidr.TryParse(node.PodCidr, out var subnet))
                {
                    waitingFor = $"node {_nodeName} to get a podCIDR from kube-controller-manager";
                }
                else
                {
                    await _client.PatchAnnotationsAsync(_nodeName, FlannelAnnotations.For(local), cancellationToken);
                    return subnet;
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                waitingFor = $"kube-apiserver ({e.Message})";
            }

            var now = _time.GetUtcNow();
            if (now - lastLog >= TimeSpan.FromSeconds(30))
            {
                Log.Waiting(_logger, waitingFor);
                lastLog = now;
            }

            await Task.Delay(_retry, _time, cancellationToken);
        }
    }

    public async IAsyncEnumerable<PeerEvent> WatchPeersAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var known = new Dictionary<string, PeerLease>(StringComparer.Ordinal);
        while (!cancellationToken.IsCancellationRequested)
        {
            (IReadOnlyList<NodeInfo> Nodes, string ResourceVersion)? list = null;
            string? failure = null;
            try
            {
                list = await _client.ListNodesAsync(cancellationToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                failure = e.Message;
            }

            if (list is { } listed)
            {
                var current = listed.Nodes.Select(ToPeer).OfType<PeerLease>().ToList();
                foreach (var change in StaticLeaseSource.Diff(known, current))
                {
                    yield return change;
                }

                await using var changes = _client.WatchNodesAsync(listed.ResourceVersion, cancellationToken).GetAsyncEnumerator(cancellationToken);
                while (true)
                {
                    NodeChange change;
                    try
                    {
                        if (!await changes.MoveNextAsync())
                        {
                            failure = "closed by the server";
                            break;
                        }

                        change = changes.Current;
                    }
                    catch (Exception e) when (e is not OperationCanceledException)
                    {
                        failure = e.Message;
                        break;
                    }

                    var peerEvent = Apply(known, change);
                    if (peerEvent is not null)
                    {
                        yield return peerEvent;
                    }
                }
            }

            if (cancellationToken.IsCancellationRequested)
            {
                yield break;
            }

            Log.WatchRestart(_logger, failure ?? "unknown");
            try
            {
                await Task.Delay(_retry, _time, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                yield break;
            }
        }
    }

    private PeerLease? ToPeer(NodeInfo node) =>
        node.Name == _nodeName ? null : FlannelAnnotations.ParsePeer(node.Name, node.PodCidr, node.Annotations, out _);

    /// <summary>Turns a watch event into a peer event (or nothing), keeping <paramref name="known"/> current.</summary>
    internal PeerEvent? Apply(Dictionary<string, PeerLease> known, NodeChange change)
    {
        var name = change.Node.Name;
        if (name == _nodeName)
        {
            return null;
        }

        var peer = change.Deleted ? null : ToPeer(change.Node);
        if (peer is null)
        {
            // Deleted, or no longer carrying a usable lease: either way it is no peer any more.
            return known.Remove(name, out var gone) ? new PeerEvent(PeerEventKind.Remove, gone) : null;
        }

        if (known.TryGetValue(name, out var old) && old == peer)
        {
            return null;
        }

        known[name] = peer;
        return new PeerEvent(PeerEventKind.Upsert, peer);
    }
}
