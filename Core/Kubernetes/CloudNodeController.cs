using System.Text.Json;
using System.Text.Json.Nodes;
using Coracle.Core.Hosting;
using Coracle.Core.Logging;
using Coracle.Core.Tunnel;
using Microsoft.Extensions.Logging;

namespace Coracle.Core.Kubernetes;

/// <summary>
/// The in-process component <c>node-declaration</c> every node runs: once its kubelet has registered the Node, it sets
/// the node's address annotations (<see cref="CloudNode.OwnAnnotations"/>) and, on a server, its role labels; then checks
/// again every minute (a Node deleted and registered again gets them back). An agent acts with the node controllers'
/// credentials (<c>system:coracle-controller</c> may update nodes), a server with the admin's. It reads and replaces the
/// Node with its resourceVersion, so nothing the kubelet wrote meanwhile is lost (a conflict is retried at once).
/// </summary>
internal sealed class NodeDeclaration(
    Func<KubeApi> connect, string nodeName, IReadOnlyDictionary<string, string?> annotations, IReadOnlyDictionary<string, string> labels, ILogger log, TimeProvider? time = null)
{
    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private volatile bool _declared;

    /// <summary>True once the Node carried the annotations and labels.</summary>
    public bool Declared => _declared;

    /// <summary>How often the Node is checked again once declared.</summary>
    public TimeSpan Recheck { get; init; } = TimeSpan.FromMinutes(1);

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        using var api = connect();
        var path = "/api/v1/nodes/" + Uri.EscapeDataString(nodeName);
        var waitingSince = (DateTimeOffset?)null;
        while (!cancellationToken.IsCancellationRequested)
        {
            var wait = TimeSpan.FromSeconds(1);
            try
            {
                var got = await api.GetAsync(path, cancellationToken);
                if (got.IsNotFound)
                {
                    var now = _time.GetUtcNow();
                    if (waitingSince is null || now - waitingSince >= TimeSpan.FromSeconds(30))
                    {
                        log.NodeNotRegistered(nodeName);
                        waitingSince = now;
                    }
                }
                else if (!got.IsSuccess || got.Body is not JsonObject node)
                {
                    log.NodeUpdateProblem(nodeName, "reading the Node", got.Describe());
                    wait = TimeSpan.FromSeconds(5);
                }
                else if (!CloudNode.DeclareOwn(node, annotations, labels))
                {
                    _declared = true;
                    wait = Recheck;
                }
                else
                {
                    var put = await api.ReplaceAsync(path, node, cancellationToken);
                    if (put.IsSuccess)
                    {
                        _declared = true;
                        log.NodeDeclared(nodeName, Describe());
                        wait = Recheck;
                    }
                    else if (put.IsConflict)
                    {
                        wait = TimeSpan.Zero;
                    }
                    else
                    {
                        log.NodeUpdateProblem(nodeName, "annotating the Node", put.Describe());
                        wait = TimeSpan.FromSeconds(5);
                    }
                }
            }
            catch (KubeApiUnavailableException ex)
            {
                log.NodeUpdateProblem(nodeName, "reaching kube-apiserver", ex.Message);
                wait = TimeSpan.FromSeconds(5);
            }

            if (wait > TimeSpan.Zero)
            {
                await Task.Delay(wait, _time, cancellationToken);
            }
        }
    }

    private string Describe() =>
        string.Join(", ", annotations.Select(a => $"{a.Key}={a.Value ?? "(none)"}").Concat(labels.Select(l => $"label {l.Key}={l.Value}")));
}

/// <summary>
/// The server's in-process component <c>cloud-node</c>, the part of K3s's embedded cloud controller manager Coracle
/// needs: it watches Nodes and, for each one that declared its addresses (<see cref="NodeDeclaration"/>), sets
/// <c>status.addresses</c> from them, then <c>spec.providerID</c> and the instance-type label, and removes the
/// uninitialized taint (<see cref="CloudNode"/>). Every step is a replace with the observed resourceVersion, so any
/// number of servers may run it at once: the loser of a conflict reads again and finds nothing left to do.
/// A Node that has not declared its addresses keeps its taint: its pods wait, nothing else breaks.
/// </summary>
internal sealed class CloudNodeController(Uri apiServer, string caFile, string certFile, string keyFile, ILogger log, TimeProvider? time = null)
{
    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly NodeWorkQueue _work = new(TimeSpan.FromSeconds(1), time ?? TimeProvider.System);
    private readonly object _gate = new();
    private readonly HashSet<string> _waitingLogged = new(StringComparer.Ordinal);
    private volatile bool _synced;

    /// <summary>True once the first list of Nodes was handled.</summary>
    public bool Ready => _synced;

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        using var handler = TlsClient.Configure(new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(5) }, caFile, certFile, keyFile);
        using var client = new HttpClient(handler) { BaseAddress = apiServer, Timeout = Timeout.InfiniteTimeSpan };
        using var api = new KubeApi(apiServer, caFile, certFile, keyFile, TimeSpan.FromSeconds(15));
        var watch = new ClusterWatch<JsonObject>(client, "/api/v1/nodes", null, e => JsonNode.Parse(e.GetRawText()) as JsonObject, log, _time)
        {
            Changed = Changed,
        };
        log.CloudNodeRunning();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var watching = watch.RunAsync(stop.Token);
        try
        {
            await _work.RunAsync((name, token) => ReconcileAsync(api, name, token), () => _synced |= watch.Synced, cancellationToken);
        }
        finally
        {
            await stop.CancelAsync();
            await watching;
        }
    }

    private void Changed(IReadOnlyCollection<JsonObject> nodes)
    {
        lock (_gate)
        {
            foreach (var node in nodes)
            {
                var name = node["metadata"]?["name"]?.GetValue<string>();
                if (name is null)
                {
                    continue;
                }

                if (CloudNode.NeedsWork(node))
                {
                    _work.Add(name);
                }
                else if (CloudNode.IsTainted(node) && CloudNode.Addresses(node) is null && _waitingLogged.Add(name))
                {
                    log.CloudNodeWaiting(name);
                }
            }
        }

        _work.Signal();
    }

    /// <summary>Brings one Node up to date; false when it should be tried again (conflict, kube-apiserver away).</summary>
    private async Task<bool> ReconcileAsync(KubeApi api, string name, CancellationToken cancellationToken)
    {
        var path = "/api/v1/nodes/" + Uri.EscapeDataString(name);
        try
        {
            var got = await api.GetAsync(path, cancellationToken);
            if (got.IsNotFound)
            {
                return true;
            }

            if (!got.IsSuccess || got.Body is not JsonObject node)
            {
                log.NodeUpdateProblem(name, "reading the Node", got.Describe());
                return false;
            }

            if (CloudNode.Addresses(node) is not { } addresses)
            {
                return true;
            }

            var addressText = string.Join(",", addresses.OfType<JsonObject>().Select(a => $"{a["type"]}={a["address"]}"));
            if (CloudNode.SetAddresses(node, addresses))
            {
                var status = await api.ReplaceAsync(path + "/status", node, cancellationToken);
                if (!status.IsSuccess || status.Body is not JsonObject updated)
                {
                    if (!status.IsConflict)
                    {
                        log.NodeUpdateProblem(name, "setting status.addresses", status.Describe());
                    }

                    return false;
                }

                node = updated;
                if (!CloudNode.IsTainted(node))
                {
                    log.CloudNodeAddresses(name, addressText);
                }
            }

            var wasTainted = CloudNode.IsTainted(node);
            if (CloudNode.Initialize(node))
            {
                var put = await api.ReplaceAsync(path, node, cancellationToken);
                if (!put.IsSuccess)
                {
                    if (!put.IsConflict)
                    {
                        log.NodeUpdateProblem(name, "setting providerID and removing the uninitialized taint", put.Describe());
                    }

                    return false;
                }

                if (wasTainted)
                {
                    log.CloudNodeInitialized(name, addressText, node["spec"]?["providerID"]?.GetValue<string>() ?? "");
                }
            }

            lock (_gate)
            {
                _waitingLogged.Remove(name);
            }

            return true;
        }
        catch (KubeApiUnavailableException ex)
        {
            log.NodeUpdateProblem(name, "reaching kube-apiserver", ex.Message);
            return false;
        }
        catch (Exception ex) when (ex is InvalidOperationException or JsonException)
        {
            log.NodeUpdateProblem(name, "reading the Node", ex.Message);
            return true;
        }
    }
}
