using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Coracle.Core.Addons;
using Coracle.Core.Kubernetes;
using Coracle.Core.Logging;
using Coracle.Core.Tunnel;
using Microsoft.Extensions.Logging;

namespace Coracle.Core.Update.Fleet;

/// <summary>
/// The <c>ApplianceUpdate</c> controller every node runs (server and agent), acting for its own node only. Each pass
/// lists the rollouts (oldest first); a rollout that selects this node and is neither finished nor halted is carried
/// out here one step at a time:
/// <list type="number">
/// <item>fetch: download the bundle (while the node keeps serving), check its SHA-256 against <c>spec.sha256</c>; a node
/// already running the bundle's version records <c>Succeeded</c> without applying;</item>
/// <item>claim: write its own line <c>Claimed</c> into <c>status.nodes</c> when fewer than <c>maxUnavailable</c> lines
/// hold a place (Claimed, Draining, Applying, Restarting), with the observed <c>resourceVersion</c>: when another node
/// wrote first the PUT fails (409) and this node looks again next pass;</item>
/// <item>cordon, drain (<see cref="NodeDrain"/>), apply (<see cref="UpdateApplier"/>, the slot on trial), then
/// <c>Restarting</c> and restart through the unit;</item>
/// <item>back up: while the slot is on trial it waits for the health gate; on the new version, good, with the Node
/// Ready, it uncordons and records <c>Succeeded</c> (the last selected node sets the phase <c>Succeeded</c>); on the
/// old version (the boot guard rolled back) it uncordons and records <c>Failed</c> with the state's reason, and the
/// rollout's phase becomes <c>Failed</c>: no further node starts.</item>
/// </list>
/// Any step that fails (download, digest, signature, drain timeout, apply) records <c>Failed</c> and halts the rollout
/// the same way, leaving the node uncordoned on its running version.
/// <para>
/// Passes are driven by watches of the rollouts and of this node's Node, with a slow resync as a safety net. A node
/// holding a place renews its line (<c>renewedAt</c>); another node that sees a holding line unchanged for
/// <c>nodeTimeoutSeconds</c> marks it <c>TimedOut</c> and the rollout halts. The cordon carries the annotation
/// <see cref="NodeDrain.CordonAnnotation"/> naming the rollout, so the node lifts it when that rollout is gone or
/// finished, also after a restart; a cordon without it is never lifted.
/// </para>
/// </summary>
internal sealed class FleetController(FleetConnection connection, string nodeName, IFleetNode local, ILogger log, TimeProvider time)
{
    private readonly Dictionary<string, FetchedBundle> _fetched = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (string Seen, DateTimeOffset Since)> _observed = new(StringComparer.Ordinal);
    private string? _waitingLogged;
    private readonly Channel<bool> _wake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private DateTimeOffset? _notReadySince;
    private TimeSpan _next;
    private bool _restarting;

    /// <summary>The safety net: a pass at least this often even when no watch event came.</summary>
    public TimeSpan Resync { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>How often a pass looks again while a local condition is pending (the slot on trial, the Node not Ready).</summary>
    public TimeSpan Recheck { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>True once a pass reached kube-apiserver (the component's readiness).</summary>
    public bool Ready { get; private set; }

    /// <summary>
    /// Watches the <c>ApplianceUpdate</c>s and this node's Node (<see cref="ClusterWatch{T}"/>: resourceVersion,
    /// bookmarks, a new list after 410 Gone, reconnects with backoff); every event wakes a pass. Without events a pass
    /// runs every <see cref="Resync"/>, or sooner when a heartbeat, another node's deadline or a local condition is due.
    /// </summary>
    public async Task RunAsync(CancellationToken ct)
    {
        using var api = connection.Api();
        using var http = connection.WatchClient();
        var rollouts = new ClusterWatch<string>(http, ApplianceUpdateResource.ListPath, null, ResourceVersion, log, time) { Changed = _ => Wake() };
        var node = new ClusterWatch<string>(http, "/api/v1/nodes", "metadata.name=" + nodeName, ResourceVersion, log, time) { Changed = _ => Wake() };
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var watching = Task.WhenAll(rollouts.RunAsync(stop.Token), node.RunAsync(stop.Token));
        try
        {
            var failures = 0;
            while (true)
            {
                TimeSpan wait;
                try
                {
                    await PassAsync(api, ct);
                    Ready = true;
                    failures = 0;
                    wait = _next;
                }
                catch (Exception ex) when (ex is KubeApiUnavailableException or FleetException)
                {
                    Ready |= ex is FleetException;
                    wait = TimeSpan.FromSeconds(Math.Min(30, Math.Pow(2, Math.Min(failures++, 5))));
                    log.FleetApiProblem(ex.Message);
                }

                await WaitAsync(wait, ct);
            }
        }
        finally
        {
            await stop.CancelAsync();
            await watching;
        }
    }

    private static string? ResourceVersion(JsonElement item) => KubeJson.String(item, "metadata", "resourceVersion") ?? "";

    private void Wake() => _wake.Writer.TryWrite(true);

    /// <summary>Until a watch event or <paramref name="wait"/>, whichever comes first.</summary>
    private async Task WaitAsync(TimeSpan wait, CancellationToken ct)
    {
        if (wait > TimeSpan.Zero)
        {
            using var either = CancellationTokenSource.CreateLinkedTokenSource(ct);
            await Task.WhenAny(_wake.Reader.WaitToReadAsync(either.Token).AsTask(), Task.Delay(wait, time, either.Token));
            await either.CancelAsync();
        }

        ct.ThrowIfCancellationRequested();
        _wake.Reader.TryRead(out _);
    }

    /// <summary>Asks for the next pass no later than <paramref name="after"/>.</summary>
    private void Soon(TimeSpan after) => _next = after < _next ? (after < TimeSpan.Zero ? TimeSpan.Zero : after) : _next;

    /// <summary>One pass: at most one step for this node. Returns what it did (for the tests), or null.</summary>
    public async Task<string?> PassAsync(KubeApi api, CancellationToken ct)
    {
        _next = Resync;
        if (_restarting)
        {
            return null;
        }

        var list = await api.GetAsync(ApplianceUpdateResource.ListPath, ct);
        if (list.IsNotFound)
        {
            Soon(Recheck);
            return null; // the CustomResourceDefinition is not there yet
        }

        if (!list.IsSuccess)
        {
            throw new FleetException($"listing ApplianceUpdates: {list.Describe()}");
        }

        var items = (list.Body?["items"] as JsonArray ?? []).OfType<JsonObject>()
            .OrderBy(i => ObjectRef.Text(i["metadata"]?["creationTimestamp"]) ?? "", StringComparer.Ordinal)
            .ThenBy(Name, StringComparer.Ordinal).ToList();
        if (await ExpireAsync(api, items, ct) is { } expired)
        {
            return expired;
        }

        var node = await api.GetAsync($"/api/v1/nodes/{Uri.EscapeDataString(nodeName)}", ct);
        foreach (var item in items)
        {
            if (Mine(item) is { } mine && NodeStates.Holds(mine.State))
            {
                return await ResumeAsync(api, item, mine, node.IsSuccess ? node.Body : null, ct);
            }
        }

        _notReadySince = null;
        if (!node.IsSuccess)
        {
            return null; // not registered yet
        }

        // This node holds no place: a cordon it made for a rollout (gone, finished, or its line no longer holding) is lifted.
        if (NodeDrain.CordonedFor(node.Body) is { } cordonedFor)
        {
            await new NodeDrain(api, nodeName, time).SetUnschedulableAsync(null, ct);
            var why = items.FirstOrDefault(i => Name(i) == cordonedFor) is { } was
                ? $"it is {ApplianceUpdateResource.Phase(was)} and this node's line is {Mine(was)?.State ?? "gone"}"
                : "it was deleted";
            log.FleetUncordoned(nodeName, cordonedFor, why);
            return "uncordoned";
        }

        foreach (var item in items)
        {
            if (Mine(item) is null && ApplianceUpdateResource.Phase(item) is not (NodeStates.PhaseSucceeded or NodeStates.PhaseFailed)
                && (ApplianceUpdateResource.ReadSpec(item, out _) is not { } spec || ApplianceUpdateResource.Selects(spec.NodeSelector, node.Body?["metadata"]?["labels"])))
            {
                return await StartAsync(api, item, ct);
            }
        }

        return await FinishAsync(api, items, ct);
    }

    /// <summary>
    /// A rollout still InProgress although every Node it selects now has succeeded (a selected Node that had not finished
    /// was deleted, or unlabelled) is marked Succeeded by a node whose own line succeeded. Nothing is written otherwise,
    /// so the passes the write wakes on the other nodes write nothing again. Returns what it did, or null.
    /// </summary>
    private async Task<string?> FinishAsync(KubeApi api, IReadOnlyList<JsonObject> items, CancellationToken ct)
    {
        foreach (var item in items)
        {
            if (ApplianceUpdateResource.Phase(item) == NodeStates.PhaseInProgress && Mine(item) is { State: NodeStates.Succeeded } mine
                && ApplianceUpdateResource.Nodes(item).All(n => !NodeStates.Holds(n.State)) && await AllSucceededAsync(api, item, mine, ct))
            {
                var written = await RecordAsync(api, Name(item), mine,
                    fresh => ApplianceUpdateResource.Phase(fresh) == NodeStates.PhaseInProgress && ApplianceUpdateResource.Nodes(fresh).All(n => !NodeStates.Holds(n.State)), ct);
                if (written == NodeStates.Succeeded)
                {
                    log.FleetFinished(Name(item), nodeName);
                    return "finished";
                }
            }
        }

        return null;
    }

    /// <summary>
    /// Watches over the other nodes holding a place in running rollouts: a line that has not changed (state, renewedAt,
    /// updatedAt) for <c>nodeTimeoutSeconds</c> by this node's own clock (as client-go's leader election judges a lease, so
    /// the nodes' clocks need not agree) is marked <c>TimedOut</c> and the rollout halts. Returns what it did, or null.
    /// </summary>
    private async Task<string?> ExpireAsync(KubeApi api, IReadOnlyList<JsonObject> items, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var live = new HashSet<string>(StringComparer.Ordinal);
        string? result = null;
        foreach (var item in items)
        {
            if (ApplianceUpdateResource.Phase(item) is NodeStates.PhaseSucceeded or NodeStates.PhaseFailed || ApplianceUpdateResource.ReadSpec(item, out _) is not { } spec)
            {
                continue;
            }

            var timeout = TimeSpan.FromSeconds(spec.NodeTimeoutSeconds);
            foreach (var other in ApplianceUpdateResource.Nodes(item).Where(n => n.Name != nodeName && NodeStates.Holds(n.State)))
            {
                var key = $"{ObjectRef.Text(item["metadata"]?["uid"])}/{other.Name}";
                var seen = $"{other.State}|{other.RenewedAt}|{other.UpdatedAt}";
                live.Add(key);
                if (!_observed.TryGetValue(key, out var observed) || observed.Seen != seen)
                {
                    _observed[key] = (seen, now);
                    Soon(timeout);
                    continue;
                }

                var silent = now - observed.Since;
                if (silent < timeout)
                {
                    Soon(timeout - silent);
                    continue;
                }

                if (result is not null)
                {
                    continue;
                }

                var message = $"timed out: no sign of life for {spec.NodeTimeoutSeconds} s (nodeTimeoutSeconds) while {other.State} ({other.Message}); noticed by node {nodeName}";
                result = await RecordAsync(api, Name(item), other with
                {
                    State = NodeStates.TimedOut,
                    Message = message + (other.Cordoned ? $"; it stays cordoned until its Coracle runs again (or kubectl uncordon {other.Name})" : ""),
                    UpdatedAt = ApplianceUpdateResource.Timestamp(now),
                }, fresh => ApplianceUpdateResource.Nodes(fresh).FirstOrDefault(n => n.Name == other.Name) is { } current && $"{current.State}|{current.RenewedAt}|{current.UpdatedAt}" == seen, ct);
                _observed.Remove(key);
                if (result == NodeStates.TimedOut)
                {
                    log.FleetNodeTimedOut(Name(item), other.Name, other.State, spec.NodeTimeoutSeconds);
                }
            }
        }

        foreach (var gone in _observed.Keys.Where(k => !live.Contains(k)).ToList())
        {
            _observed.Remove(gone);
        }

        return result;
    }

    private static string Name(JsonNode item) => ObjectRef.Text(item["metadata"]?["name"]) ?? "";

    private NodeUpdateStatus? Mine(JsonNode item) => ApplianceUpdateResource.Nodes(item).FirstOrDefault(n => n.Name == nodeName);

    private NodeUpdateStatus Line(string state, string from, string version, string message, bool cordoned) => new()
    {
        Name = nodeName,
        State = state,
        FromVersion = from,
        Version = version,
        Message = message,
        Cordoned = cordoned,
        UpdatedAt = ApplianceUpdateResource.Timestamp(time.GetUtcNow()),
    };

    /// <summary>Fetch, then claim a place and update this node; or record success or failure without one.</summary>
    private async Task<string> StartAsync(KubeApi api, JsonObject item, CancellationToken ct)
    {
        var name = Name(item);
        var running = local.RunningVersion;
        var spec = ApplianceUpdateResource.ReadSpec(item, out var specError);
        if (spec is null)
        {
            return await RecordAsync(api, name, Line(NodeStates.Failed, running, "", specError!, false), null, ct);
        }

        if (local.CannotUpdateWhy is { } cannot)
        {
            return await RecordAsync(api, name, Line(NodeStates.Failed, running, spec.Version, cannot, false), null, ct);
        }

        if (spec.Version.Length > 0 && spec.Version == running)
        {
            return await RecordAsync(api, name, Line(NodeStates.Succeeded, running, running, $"already at version {running}: nothing applied", false), null, ct);
        }

        var key = $"{ObjectRef.Text(item["metadata"]?["uid"])}/{spec.Sha256}";
        if (!_fetched.TryGetValue(key, out var bundle))
        {
            try
            {
                bundle = await local.FetchAsync(spec, ct);
                if (bundle.Version != running)
                {
                    if (spec.Version.Length > 0 && bundle.Version != spec.Version)
                    {
                        throw new FleetException($"the bundle's signed manifest says version {bundle.Version}, spec.version says {spec.Version}; correct spec.version");
                    }

                    local.Verify(bundle);
                }
            }
            catch (FleetException ex) when (ex.Retry)
            {
                log.FleetFetchRetry(name, ex.Message);
                Soon(TimeSpan.FromSeconds(10));
                return "fetch: trying again";
            }
            catch (FleetException ex)
            {
                return await RecordAsync(api, name, Line(NodeStates.Failed, running, spec.Version, ex.Message, false), null, ct);
            }

            _fetched[key] = bundle;
        }

        if (bundle.Version == running)
        {
            return await RecordAsync(api, name, Line(NodeStates.Succeeded, running, running, $"already at version {running}: nothing applied", false), null, ct);
        }

        // Claim a place, against the rollout as it is now (the download took a while).
        var fresh = await GetAsync(api, name, ct);
        if (fresh is null || ApplianceUpdateResource.Phase(fresh) is NodeStates.PhaseFailed or NodeStates.PhaseSucceeded || Mine(fresh) is not null)
        {
            Soon(TimeSpan.Zero);
            return "rollout changed while fetching";
        }

        var holding = ApplianceUpdateResource.Nodes(fresh).Where(n => NodeStates.Holds(n.State)).ToList();
        if (holding.Count >= spec.MaxUnavailable)
        {
            // Logged when who holds the places changes, not on every watch event while they hold them.
            var who = string.Join(", ", holding.Select(n => $"{n.Name} {n.State}"));
            if (_waitingLogged != name + "|" + who)
            {
                _waitingLogged = name + "|" + who;
                log.FleetWaiting(name, holding.Count, spec.MaxUnavailable, who);
            }

            return "waiting";
        }

        var drain = new NodeDrain(api, nodeName, time);
        var wasCordoned = await drain.IsCordonedAsync(ct);
        var line = Line(NodeStates.Claimed, running, bundle.Version, $"updating from {running} to {bundle.Version}", !wasCordoned) with
        {
            RenewedAt = ApplianceUpdateResource.Timestamp(time.GetUtcNow()),
        };
        var claimed = await api.ReplaceAsync(ApplianceUpdateResource.StatusPathOf(name),
            ApplianceUpdateResource.WithNode(fresh, line, NodeStates.PhaseInProgress, "", time.GetUtcNow()), ct);
        if (claimed.IsConflict)
        {
            Soon(TimeSpan.Zero);
            return "claim lost";
        }

        if (!claimed.IsSuccess)
        {
            throw new FleetException($"claiming a place in ApplianceUpdate {name}: {claimed.Describe()}");
        }

        log.FleetNodeState(name, nodeName, line.State, line.Message);

        // While the steps run the line is renewed (so no other node times this one out); the heartbeat also notices a
        // rollout deleted meanwhile and stops the drain.
        using var deleted = CancellationTokenSource.CreateLinkedTokenSource(ct);
        using var beating = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var heartbeat = HeartbeatAsync(api, name, spec.RenewEvery, deleted, beating.Token);
        try
        {
            if (!wasCordoned)
            {
                await drain.SetUnschedulableAsync(name, ct);
            }

            if (await RecordAsync(api, name, line with { State = NodeStates.Draining, Message = "cordoned; evicting pods" }, null, ct) == Deleted)
            {
                return await AbandonAsync(api, name, line, drain, ct);
            }

            int evicted;
            try
            {
                evicted = await drain.DrainAsync(TimeSpan.FromSeconds(spec.DrainTimeoutSeconds), deleted.Token);
            }
            catch (OperationCanceledException) when (deleted.IsCancellationRequested && !ct.IsCancellationRequested)
            {
                return await AbandonAsync(api, name, line, drain, ct);
            }

            if (await RecordAsync(api, name, line with { State = NodeStates.Applying, Message = $"drained ({evicted} pods evicted); applying version {bundle.Version}" }, null, ct) == Deleted)
            {
                return await AbandonAsync(api, name, line, drain, ct);
            }

            // From here on the slot is switched: the node restarts into it even when the rollout is deleted meanwhile (its
            // cordon is lifted after the restart, by the annotation).
            var slot = await local.ApplyAsync(bundle, ct);
            try
            {
                await RecordAsync(api, name, line with { State = NodeStates.Restarting, Message = $"version {bundle.Version} in slot {slot} on trial; restarting" }, null, ct);
            }
            catch (Exception ex) when (ex is FleetException or KubeApiUnavailableException)
            {
                // Not a reason to stay: the line says Applying, which the restarted node resumes from as well.
                log.FleetApiProblem(ex.Message);
            }
        }
        catch (Exception ex) when (ex is FleetException or KubeApiUnavailableException)
        {
            return await FailAsync(api, name, line, ex.Message, drain, ct);
        }
        finally
        {
            await beating.CancelAsync();
            await heartbeat;
        }

        _restarting = true;
        log.FleetRestart(await local.RestartAsync(ct));
        return "restarting";
    }

    private const string Deleted = "rollout deleted";

    /// <summary>The rollout was deleted before anything was applied: the node uncordons and stops.</summary>
    private async Task<string> AbandonAsync(KubeApi api, string name, NodeUpdateStatus line, NodeDrain drain, CancellationToken ct)
    {
        if (line.Cordoned)
        {
            await drain.SetUnschedulableAsync(null, ct);
        }

        log.FleetAbandoned(name, nodeName, line.Cordoned ? "uncordoned" : "left cordoned as it was");
        return Deleted + ": update stopped before applying" + (line.Cordoned ? ", uncordoned" : "");
    }

    /// <summary>Renews this node's line every <paramref name="every"/> until <paramref name="ct"/>; cancels <paramref name="deleted"/> when the rollout is gone.</summary>
    private async Task HeartbeatAsync(KubeApi api, string name, TimeSpan every, CancellationTokenSource deleted, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(every, time, ct);
                if (!await RenewAsync(api, name, ct))
                {
                    await deleted.CancelAsync();
                    return;
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (ex is FleetException or KubeApiUnavailableException)
            {
                log.FleetApiProblem(ex.Message);
            }
        }
    }

    /// <summary>Writes a new <c>renewedAt</c> into this node's holding line; false when the rollout is gone.</summary>
    private async Task<bool> RenewAsync(KubeApi api, string name, CancellationToken ct)
    {
        for (var attempt = 0; attempt < 5; attempt++)
        {
            var item = await GetAsync(api, name, ct);
            if (item is null)
            {
                return false;
            }

            if (Mine(item) is not { } mine || !NodeStates.Holds(mine.State))
            {
                return true;
            }

            var renewed = ApplianceUpdateResource.WithNode(item, mine with { RenewedAt = ApplianceUpdateResource.Timestamp(time.GetUtcNow()) },
                ApplianceUpdateResource.Phase(item), ObjectRef.Text(item["status"]?["reason"]) ?? "", time.GetUtcNow());
            var response = await api.ReplaceAsync(ApplianceUpdateResource.StatusPathOf(name), renewed, ct);
            if (response.IsSuccess)
            {
                return true;
            }

            if (!response.IsConflict)
            {
                throw new FleetException($"renewing this node's line in ApplianceUpdate {name}: {response.Describe()}");
            }
        }

        return true; // others kept writing: the next beat tries again
    }

    /// <summary>Renews the line when a quarter of the timeout (at most 60 s) has passed since this node last wrote it.</summary>
    private async Task RenewIfDueAsync(KubeApi api, string name, NodeUpdateStatus mine, ApplianceUpdateSpec? spec, CancellationToken ct)
    {
        var every = (spec ?? new ApplianceUpdateSpec { BundleUrl = "", Sha256 = "" }).RenewEvery;
        var last = DateTimeOffset.TryParse(mine.RenewedAt, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var at) ? at : DateTimeOffset.MinValue;
        var due = last + every - time.GetUtcNow();
        if (due <= TimeSpan.Zero)
        {
            await RenewAsync(api, name, ct);
            due = every;
        }

        Soon(due);
    }

    /// <summary>This node holds a place: it was updating when Coracle (re)started.</summary>
    private async Task<string> ResumeAsync(KubeApi api, JsonObject item, NodeUpdateStatus mine, JsonNode? node, CancellationToken ct)
    {
        var name = Name(item);
        var spec = ApplianceUpdateResource.ReadSpec(item, out _);
        var state = local.State;
        if (state is { Trial.Length: > 0 } && state.Trial == local.ActiveSlot)
        {
            await RenewIfDueAsync(api, name, mine, spec, ct);
            Soon(Recheck);
            log.FleetOnTrial(name, state.Trial);
            return "on trial";
        }

        var drain = new NodeDrain(api, nodeName, time);
        var cordoned = mine.Cordoned || NodeDrain.CordonedFor(node) == name;
        var running = local.RunningVersion;
        if (running == mine.Version && mine.State is NodeStates.Restarting or NodeStates.Applying)
        {
            var ready = (node?["status"]?["conditions"] as JsonArray ?? [])
                .Any(c => ObjectRef.Text(c?["type"]) == "Ready" && ObjectRef.Text(c?["status"]) == "True");
            if (!ready)
            {
                // The health gate passed, but the Node does not report Ready: wait (the Node watch wakes the pass), up to
                // nodeTimeoutSeconds by this process's clock, then fail rather than hold the place for ever.
                var now = time.GetUtcNow();
                _notReadySince ??= now;
                var timeout = TimeSpan.FromSeconds(spec?.NodeTimeoutSeconds ?? ApplianceUpdateSpec.DefaultNodeTimeoutSeconds);
                if (now - _notReadySince < timeout)
                {
                    await RenewIfDueAsync(api, name, mine, spec, ct);
                    Soon(Recheck);
                    return "waiting for Ready";
                }

                _notReadySince = null;
                return await FailAsync(api, name, mine with { Cordoned = cordoned },
                    $"node {nodeName} runs version {running} (slot {local.ActiveSlot} marked good) but its Node did not become Ready within {timeout.TotalSeconds:0} s (nodeTimeoutSeconds)", drain, ct);
            }

            _notReadySince = null;
            if (cordoned)
            {
                await drain.SetUnschedulableAsync(null, ct);
            }

            return await RecordAsync(api, name, mine with
            {
                State = NodeStates.Succeeded,
                Cordoned = false,
                Message = $"updated from {mine.FromVersion} to {running}; slot {local.ActiveSlot} marked good, node Ready" + (cordoned ? ", uncordoned" : ""),
                UpdatedAt = ApplianceUpdateResource.Timestamp(time.GetUtcNow()),
            }, null, ct);
        }

        var why = mine.State == NodeStates.Restarting
            ? $"node {nodeName} came back on version {running}, not {mine.Version}" + (state is { Result.Length: > 0 } ? $" ({state.Result}: {state.Reason})" : "")
            : $"node {nodeName} restarted while {mine.State} (version {running} kept)" + (state is { Result.Length: > 0 } ? $" ({state.Result}: {state.Reason})" : "");
        return await FailAsync(api, name, mine with { Cordoned = cordoned }, why, drain, ct);
    }

    /// <summary>Uncordons the node when the rollout cordoned it, records the failure and halts the rollout.</summary>
    private async Task<string> FailAsync(KubeApi api, string name, NodeUpdateStatus line, string why, NodeDrain drain, CancellationToken ct)
    {
        var uncordoned = "";
        if (line.Cordoned)
        {
            try
            {
                await drain.SetUnschedulableAsync(null, ct);
                uncordoned = "; uncordoned";
            }
            catch (Exception ex) when (ex is FleetException or KubeApiUnavailableException)
            {
                uncordoned = $"; uncordoning failed ({ex.Message}): run 'kubectl uncordon {nodeName}'";
            }
        }

        return await RecordAsync(api, name, line with
        {
            State = NodeStates.Failed,
            Cordoned = false,
            Message = why + uncordoned,
            UpdatedAt = ApplianceUpdateResource.Timestamp(time.GetUtcNow()),
        }, null, ct);
    }

    private static async Task<JsonObject?> GetAsync(KubeApi api, string name, CancellationToken ct)
    {
        var response = await api.GetAsync(ApplianceUpdateResource.PathOf(name), ct);
        return response.IsNotFound ? null
            : response.IsSuccess && response.Body is JsonObject item ? item
            : throw new FleetException($"reading ApplianceUpdate {name}: {response.Describe()}");
    }

    /// <summary>
    /// Writes a node's line (read, change, PUT with the observed resourceVersion, again on 409) and the phase: Failed for
    /// a failure or a time-out (the first reason stays), Succeeded once every selected node succeeded, else InProgress.
    /// This node's own holding line gets a new <c>renewedAt</c>. <paramref name="still"/>, when given, must hold for the
    /// object as read (else nothing is written and <c>"changed"</c> returned). Returns the state written, or
    /// <c>"rollout deleted"</c>.
    /// </summary>
    private async Task<string> RecordAsync(KubeApi api, string name, NodeUpdateStatus line, Func<JsonObject, bool>? still, CancellationToken ct)
    {
        if (line.Name == nodeName && NodeStates.Holds(line.State))
        {
            line = line with { RenewedAt = ApplianceUpdateResource.Timestamp(time.GetUtcNow()) };
        }

        for (var attempt = 0; ; attempt++)
        {
            var item = await GetAsync(api, name, ct);
            if (item is null)
            {
                return Deleted;
            }

            if (still is not null && !still(item))
            {
                Soon(TimeSpan.Zero);
                return "changed";
            }

            var phase = ApplianceUpdateResource.Phase(item);
            var reason = ObjectRef.Text(item["status"]?["reason"]) ?? "";
            if (NodeStates.Halts(line.State) && phase != NodeStates.PhaseFailed)
            {
                (phase, reason) = (NodeStates.PhaseFailed, $"node {line.Name}: {line.Message}");
            }
            else if (phase != NodeStates.PhaseFailed)
            {
                phase = await AllSucceededAsync(api, item, line, ct) ? NodeStates.PhaseSucceeded : NodeStates.PhaseInProgress;
            }

            var response = await api.ReplaceAsync(ApplianceUpdateResource.StatusPathOf(name), ApplianceUpdateResource.WithNode(item, line, phase, reason, time.GetUtcNow()), ct);
            if (response.IsSuccess)
            {
                log.FleetNodeState(name, line.Name, line.State, line.Message);
                if (phase == NodeStates.PhaseFailed && NodeStates.Halts(line.State))
                {
                    log.FleetHalted(name, reason);
                }

                return line.State;
            }

            if (!response.IsConflict || attempt >= 20)
            {
                throw new FleetException($"writing the status of ApplianceUpdate {name}: {response.Describe()}");
            }
        }
    }

    /// <summary>True when, with <paramref name="line"/> written, every node the rollout selects has succeeded.</summary>
    private static async Task<bool> AllSucceededAsync(KubeApi api, JsonObject item, NodeUpdateStatus line, CancellationToken ct)
    {
        if (line.State != NodeStates.Succeeded || ApplianceUpdateResource.ReadSpec(item, out _) is not { } spec)
        {
            return false;
        }

        var nodes = await api.GetAsync("/api/v1/nodes", ct);
        if (!nodes.IsSuccess)
        {
            return false;
        }

        var succeeded = ApplianceUpdateResource.Nodes(item).Where(n => n.State == NodeStates.Succeeded).Select(n => n.Name).Append(line.Name).ToHashSet(StringComparer.Ordinal);
        return (nodes.Body?["items"] as JsonArray ?? []).OfType<JsonObject>()
            .Where(n => ApplianceUpdateResource.Selects(spec.NodeSelector, n["metadata"]?["labels"]))
            .All(n => succeeded.Contains(ObjectRef.Text(n["metadata"]?["name"]) ?? ""));
    }
}
