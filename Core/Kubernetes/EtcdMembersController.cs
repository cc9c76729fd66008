using System.Text.Json;
using System.Text.Json.Nodes;
using Coracle.Core.Configuration;
using Coracle.Core.Hosting;
using Coracle.Core.Logging;
using Coracle.Core.Supervision;
using Coracle.Core.Tunnel;
using Coracle.Plugins;
using Microsoft.Extensions.Logging;

namespace Coracle.Core.Kubernetes;

/// <summary>
/// The in-process component <c>etcd-members</c> of every server whose datastore is a member of a clustered one (embedded
/// etcd, <see cref="IDatastoreCluster"/>), K3s's managed-etcd member controller:
/// <list type="bullet">
/// <item>It watches Nodes and puts the finalizer <see cref="EtcdMemberHealth.Finalizer"/> on each one labelled
/// <see cref="CloudNode.EtcdLabel"/>. When such a Node is deleted it stays (Terminating) until a server removes the etcd
/// member of that name (<see cref="IDatastoreCluster.RemoveMemberAsync"/>) and drops the finalizer. Any number of servers
/// do this at once: "no such member" and a conflict on the finalizer mean another server did it. A server never removes
/// its own member (another one does; when it is the only member there is nothing to remove). A member whose Node was
/// never labelled (a joining server before its kubelet registered) is never touched.</item>
/// <item>Every <see cref="CheckInterval"/> it lists the members (<see cref="IDatastoreCluster.MembersAsync"/>): the result
/// is its <c>coracle status</c> detail, the state <c>degraded</c> while quorum is lost, and the conditions
/// <c>EtcdIsVoter</c>, <c>EtcdQuorum</c> and <c>EtcdMembersHealthy</c> on this server's own Node (a strategic merge patch
/// of its status, only when they change; nothing can be written while quorum is lost).</item>
/// </list>
/// </summary>
internal sealed class EtcdMembersController(
    Uri apiServer, string caFile, string certFile, string keyFile, string nodeName, IDatastoreCluster cluster, NodeSettings settings,
    IReadOnlyDictionary<string, string> options, ILogger log, Action<string, bool> report, TimeProvider? time = null)
{
    public const string ComponentName = "etcd-members";

    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly object _gate = new();
    private NodeWorkQueue? _work;

    // Deletions left to other servers (this server's own Node), by resourceVersion: not looked at again until the Node
    // changes (then the members are checked again: it may have become the only one), and logged once.
    private readonly Dictionary<string, string> _leftAlone = new(StringComparer.Ordinal);
    private volatile bool _synced;
    private EtcdMemberReport? _last;

    /// <summary>How often the members and quorum are checked.</summary>
    public TimeSpan CheckInterval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The wait before a failed removal or finalizer update is tried again.</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>True once the first list of Nodes was handled.</summary>
    public bool Ready => _synced;

    // Made on first use, after the init-only RetryDelay is set.
    private NodeWorkQueue Work => LazyInitializer.EnsureInitialized(ref _work, () => new NodeWorkQueue(RetryDelay, _time));

    /// <summary>Registers the component (step <c>etcd members</c> of <c>coracle server</c>), after kube-apiserver.</summary>
    public static void Register(Supervisor supervisor, CoracleConfig config, KubernetesPaths paths, IDatastoreCluster cluster, NodeSettings settings,
        IReadOnlyDictionary<string, string> options, ILoggerFactory loggers)
    {
        ArgumentNullException.ThrowIfNull(supervisor);
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(paths);
        ArgumentNullException.ThrowIfNull(loggers);
        var controller = new EtcdMembersController(new Uri($"https://127.0.0.1:{config.HttpsListenPort}"), paths.Tls("server-ca.crt"),
            paths.Tls("client-admin.crt"), paths.Tls("client-admin.key"), config.NodeName, cluster, settings, options,
            loggers.CreateLogger(ComponentName), (detail, degraded) => supervisor.ReportHealth(ComponentName, detail, degraded));
        supervisor.Add(new InProcessComponent
        {
            Name = ComponentName,
            DependsOn = [WellKnownComponents.KubeApiServer],
            Readiness = new CustomProbe(_ => Task.FromResult(controller.Ready)),
            Restart = config.Restart,
            StopTimeout = config.StopTimeout,
            RestartOnCertificateRenewal = true,
            Run = controller.RunAsync,
        });
    }

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        _last = null;
        report("checking the etcd members", false);
        using var handler = TlsClient.Configure(new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(5) }, caFile, certFile, keyFile);
        using var client = new HttpClient(handler) { BaseAddress = apiServer, Timeout = Timeout.InfiniteTimeSpan };
        using var api = new KubeApi(apiServer, caFile, certFile, keyFile, TimeSpan.FromSeconds(15));
        var watch = new ClusterWatch<JsonObject>(client, "/api/v1/nodes", null, e => JsonNode.Parse(e.GetRawText()) as JsonObject, log, _time)
        {
            Changed = Changed,
        };
        log.EtcdMembersRunning(CloudNode.EtcdLabel, EtcdMemberHealth.Finalizer, CheckInterval.TotalSeconds);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var watching = watch.RunAsync(stop.Token);
        var checking = CheckLoopAsync(api, stop.Token);
        try
        {
            await Work.RunAsync((name, token) => ReconcileAsync(api, name, token), () => _synced |= watch.Synced, cancellationToken);
        }
        finally
        {
            await stop.CancelAsync();
            await watching;
            try
            {
                await checking;
            }
            catch (OperationCanceledException)
            {
            }
        }
    }

    private void Changed(IReadOnlyCollection<JsonObject> nodes)
    {
        lock (_gate)
        {
            foreach (var node in nodes)
            {
                if (node["metadata"]?["name"]?.GetValue<string>() is not { } name || EtcdMemberHealth.WorkFor(node) == NodeWork.None)
                {
                    continue;
                }

                if (_leftAlone.TryGetValue(name, out var version) && version == node["metadata"]?["resourceVersion"]?.GetValue<string>())
                {
                    continue;
                }

                Work.Add(name);
            }
        }

        Work.Signal();
    }

    /// <summary>Adds the finalizer to an etcd Node, or removes the member of a deleted one; false when it should be tried again.</summary>
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

            switch (EtcdMemberHealth.WorkFor(node))
            {
                case NodeWork.AddFinalizer:
                    EtcdMemberHealth.AddFinalizer(node);
                    var added = await api.ReplaceAsync(path, node, cancellationToken);
                    if (added.IsSuccess)
                    {
                        log.EtcdFinalizerAdded(name, EtcdMemberHealth.Finalizer);
                        return true;
                    }

                    return Failed(name, "adding the finalizer " + EtcdMemberHealth.Finalizer, added);
                case NodeWork.RemoveMember:
                    if (!await RemoveMemberAsync(name, node, cancellationToken))
                    {
                        return true;
                    }

                    EtcdMemberHealth.RemoveFinalizer(node);
                    var dropped = await api.ReplaceAsync(path, node, cancellationToken);
                    return dropped.IsSuccess || dropped.IsNotFound || Failed(name, "dropping the finalizer " + EtcdMemberHealth.Finalizer, dropped);
                default:
                    return true;
            }
        }
        catch (KubeApiUnavailableException ex)
        {
            log.NodeUpdateProblem(name, "reaching kube-apiserver", ex.Message);
            return false;
        }
        catch (InvalidOperationException ex)
        {
            log.EtcdMemberRemoveFailed(name, RetryDelay.TotalSeconds, ex.Message);
            return false;
        }
    }

    /// <summary>
    /// Removes the member of the deleted Node <paramref name="name"/>; true when its finalizer may go (the member is gone or
    /// there is nothing to remove), false when this server leaves it to another (its own Node). Throws
    /// <see cref="InvalidOperationException"/> when the datastore refuses (no quorum).
    /// </summary>
    private async Task<bool> RemoveMemberAsync(string name, JsonObject node, CancellationToken cancellationToken)
    {
        if (name == nodeName)
        {
            var members = await cluster.MembersAsync(settings, options, cancellationToken);
            if (members.Members.Any(m => m.Name != nodeName))
            {
                bool first;
                lock (_gate)
                {
                    first = _leftAlone.TryAdd(name, "");
                    _leftAlone[name] = node["metadata"]?["resourceVersion"]?.GetValue<string>() ?? "";
                }

                if (first)
                {
                    log.EtcdOwnNodeDeleting(name);
                }

                return false;
            }

            log.EtcdOwnNodeOnlyMember(name);
            return true;
        }

        if (await cluster.RemoveMemberAsync(settings, options, name, cancellationToken))
        {
            log.EtcdMemberRemovedForNode(name);
        }
        else
        {
            log.EtcdMemberAlreadyGone(name);
        }

        return true;
    }

    private bool Failed(string name, string action, KubeResponse response)
    {
        if (!response.IsConflict)
        {
            log.NodeUpdateProblem(name, action, response.Describe());
        }

        return false;
    }

    /// <summary>Every <see cref="CheckInterval"/>: the members, the report and this server's Node conditions.</summary>
    private async Task CheckLoopAsync(KubeApi api, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            EtcdMemberReport now;
            try
            {
                using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                limit.CancelAfter(TimeSpan.FromSeconds(30));
                now = EtcdMemberHealth.Assess(await cluster.MembersAsync(settings, options, limit.Token), nodeName);
            }
            catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
            {
                // The plugin's one-line InvalidOperationException (its etcd does not answer), or anything else it threw.
                now = EtcdMemberHealth.Unreachable(ex is OperationCanceledException ? "the members did not answer within 30 s" : ex.Message);
            }

            Report(now);
            if (!now.Degraded)
            {
                await SetConditionsAsync(api, now.Conditions, cancellationToken);
            }

            await Task.Delay(CheckInterval, _time, cancellationToken);
        }
    }

    private void Report(EtcdMemberReport now)
    {
        report(now.Detail, now.Degraded);
        var before = _last;
        _last = now;
        if (now.Degraded && before?.Degraded != true)
        {
            log.EtcdQuorumLost(now.Detail);
        }
        else if (!now.Degraded && before?.Degraded == true)
        {
            log.EtcdQuorumBack(now.Detail);
        }
        else if (!now.Degraded && before?.Detail != now.Detail)
        {
            log.EtcdMembersChanged(now.Detail);
        }
    }

    /// <summary>Patches this server's Node status with <paramref name="conditions"/> when they differ from what it carries.</summary>
    private async Task SetConditionsAsync(KubeApi api, IReadOnlyList<NodeConditionValue> conditions, CancellationToken cancellationToken)
    {
        var path = "/api/v1/nodes/" + Uri.EscapeDataString(nodeName);
        try
        {
            var got = await api.GetAsync(path, cancellationToken);
            if (!got.IsSuccess || got.Body is not JsonObject node || EtcdMemberHealth.ConditionsPatch(node, conditions, _time.GetUtcNow()) is not { } patch)
            {
                return;
            }

            var patched = await api.PatchAsync(path + "/status", patch, cancellationToken);
            if (patched.IsSuccess)
            {
                log.EtcdConditionsSet(nodeName, string.Join(", ", conditions.Select(c => $"{c.Type}={c.Status} ({c.Reason})")));
            }
            else
            {
                log.NodeUpdateProblem(nodeName, "setting the etcd conditions", patched.Describe());
            }
        }
        catch (KubeApiUnavailableException ex)
        {
            log.NodeUpdateProblem(nodeName, "reaching kube-apiserver", ex.Message);
        }
        catch (JsonException ex)
        {
            log.NodeUpdateProblem(nodeName, "reading the Node", ex.Message);
        }
    }
}
