using System.Text.Json.Nodes;
using Coracle.Core.Addons;
using Coracle.Core.Kubernetes;
using Coracle.Core.Logging;
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
/// </summary>
internal sealed class FleetController(Func<KubeApi> connect, string nodeName, IFleetNode local, ILogger log, TimeProvider time)
{
    private readonly Dictionary<string, FetchedBundle> _fetched = new(StringComparer.Ordinal);
    private bool _restarting;

    /// <summary>Time between passes.</summary>
    public TimeSpan Interval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>True once a pass reached kube-apiserver (the component's readiness).</summary>
    public bool Ready { get; private set; }

    public async Task RunAsync(CancellationToken ct)
    {
        using var api = connect();
        while (true)
        {
            try
            {
                await PassAsync(api, ct);
                Ready = true;
            }
            catch (KubeApiUnavailableException ex)
            {
                log.FleetApiProblem(ex.Message);
            }
            catch (FleetException ex)
            {
                Ready = true;
                log.FleetApiProblem(ex.Message);
            }

            await Task.Delay(Interval, time, ct);
        }
    }

    /// <summary>One pass: at most one step for this node. Returns what it did (for the tests), or null.</summary>
    public async Task<string?> PassAsync(KubeApi api, CancellationToken ct)
    {
        if (_restarting)
        {
            return null;
        }

        var list = await api.GetAsync(ApplianceUpdateResource.ListPath, ct);
        if (list.IsNotFound)
        {
            return null; // the CustomResourceDefinition is not there yet
        }

        if (!list.IsSuccess)
        {
            throw new FleetException($"listing ApplianceUpdates: {list.Describe()}");
        }

        var items = (list.Body?["items"] as JsonArray ?? []).OfType<JsonObject>()
            .OrderBy(i => ObjectRef.Text(i["metadata"]?["creationTimestamp"]) ?? "", StringComparer.Ordinal)
            .ThenBy(Name, StringComparer.Ordinal).ToList();
        foreach (var item in items)
        {
            if (Mine(item) is { } mine && NodeStates.Holds(mine.State))
            {
                return await ResumeAsync(api, item, mine, ct);
            }
        }

        var node = await api.GetAsync($"/api/v1/nodes/{Uri.EscapeDataString(nodeName)}", ct);
        if (!node.IsSuccess)
        {
            return null; // not registered yet
        }

        foreach (var item in items)
        {
            if (Mine(item) is null && ApplianceUpdateResource.Phase(item) is not (NodeStates.PhaseSucceeded or NodeStates.PhaseFailed)
                && (ApplianceUpdateResource.ReadSpec(item, out _) is not { } spec || ApplianceUpdateResource.Selects(spec.NodeSelector, node.Body?["metadata"]?["labels"])))
            {
                return await StartAsync(api, item, ct);
            }
        }

        return null;
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
            return await RecordAsync(api, name, Line(NodeStates.Failed, running, "", specError!, false), ct);
        }

        if (local.CannotUpdateWhy is { } cannot)
        {
            return await RecordAsync(api, name, Line(NodeStates.Failed, running, spec.Version, cannot, false), ct);
        }

        if (spec.Version.Length > 0 && spec.Version == running)
        {
            return await RecordAsync(api, name, Line(NodeStates.Succeeded, running, running, $"already at version {running}: nothing applied", false), ct);
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
                return "fetch: trying again";
            }
            catch (FleetException ex)
            {
                return await RecordAsync(api, name, Line(NodeStates.Failed, running, spec.Version, ex.Message, false), ct);
            }

            _fetched[key] = bundle;
        }

        if (bundle.Version == running)
        {
            return await RecordAsync(api, name, Line(NodeStates.Succeeded, running, running, $"already at version {running}: nothing applied", false), ct);
        }

        // Claim a place, against the rollout as it is now (the download took a while).
        var fresh = await GetAsync(api, name, ct);
        if (fresh is null || ApplianceUpdateResource.Phase(fresh) is NodeStates.PhaseFailed or NodeStates.PhaseSucceeded || Mine(fresh) is not null)
        {
            return "rollout changed while fetching";
        }

        var holding = ApplianceUpdateResource.Nodes(fresh).Where(n => NodeStates.Holds(n.State)).ToList();
        if (holding.Count >= spec.MaxUnavailable)
        {
            log.FleetWaiting(name, holding.Count, spec.MaxUnavailable, string.Join(", ", holding.Select(n => $"{n.Name} {n.State}")));
            return "waiting";
        }

        var drain = new NodeDrain(api, nodeName, time);
        var wasCordoned = await drain.IsCordonedAsync(ct);
        var line = Line(NodeStates.Claimed, running, bundle.Version, $"updating from {running} to {bundle.Version}", !wasCordoned);
        var claimed = await api.ReplaceAsync(ApplianceUpdateResource.StatusPathOf(name),
            ApplianceUpdateResource.WithNode(fresh, line, NodeStates.PhaseInProgress, "", time.GetUtcNow()), ct);
        if (claimed.IsConflict)
        {
            return "claim lost";
        }

        if (!claimed.IsSuccess)
        {
            throw new FleetException($"claiming a place in ApplianceUpdate {name}: {claimed.Describe()}");
        }

        log.FleetNodeState(name, nodeName, line.State, line.Message);
        try
        {
            if (!wasCordoned)
            {
                await drain.SetUnschedulableAsync(true, ct);
            }

            await RecordAsync(api, name, line with { State = NodeStates.Draining, Message = "cordoned; evicting pods" }, ct);
            var evicted = await drain.DrainAsync(TimeSpan.FromSeconds(spec.DrainTimeoutSeconds), ct);
            await RecordAsync(api, name, line with { State = NodeStates.Applying, Message = $"drained ({evicted} pods evicted); applying version {bundle.Version}" }, ct);
            var slot = await local.ApplyAsync(bundle, ct);
            await RecordAsync(api, name, line with { State = NodeStates.Restarting, Message = $"version {bundle.Version} in slot {slot} on trial; restarting" }, ct);
        }
        catch (Exception ex) when (ex is FleetException or KubeApiUnavailableException)
        {
            return await FailAsync(api, name, line, ex.Message, drain, ct);
        }

        _restarting = true;
        log.FleetRestart(await local.RestartAsync(ct));
        return "restarting";
    }

    /// <summary>This node holds a place: it was updating when Coracle (re)started.</summary>
    private async Task<string> ResumeAsync(KubeApi api, JsonObject item, NodeUpdateStatus mine, CancellationToken ct)
    {
        var name = Name(item);
        var state = local.State;
        if (state is { Trial.Length: > 0 } && state.Trial == local.ActiveSlot)
        {
            log.FleetOnTrial(name, state.Trial);
            return "on trial";
        }

        var drain = new NodeDrain(api, nodeName, time);
        var running = local.RunningVersion;
        if (running == mine.Version && mine.State is NodeStates.Restarting or NodeStates.Applying)
        {
            var node = await api.GetAsync($"/api/v1/nodes/{Uri.EscapeDataString(nodeName)}", ct);
            var ready = (node.Body?["status"]?["conditions"] as JsonArray ?? [])
                .Any(c => ObjectRef.Text(c?["type"]) == "Ready" && ObjectRef.Text(c?["status"]) == "True");
            if (!ready)
            {
                return "waiting for Ready";
            }

            if (mine.Cordoned)
            {
                await drain.SetUnschedulableAsync(false, ct);
            }

            return await RecordAsync(api, name, mine with
            {
                State = NodeStates.Succeeded,
                Cordoned = false,
                Message = $"updated from {mine.FromVersion} to {running}; slot {local.ActiveSlot} marked good, node Ready" + (mine.Cordoned ? ", uncordoned" : ""),
                UpdatedAt = ApplianceUpdateResource.Timestamp(time.GetUtcNow()),
            }, ct);
        }

        var why = mine.State == NodeStates.Restarting
            ? $"node {nodeName} came back on version {running}, not {mine.Version}" + (state is { Result.Length: > 0 } ? $" ({state.Result}: {state.Reason})" : "")
            : $"node {nodeName} restarted while {mine.State} (version {running} kept)" + (state is { Result.Length: > 0 } ? $" ({state.Result}: {state.Reason})" : "");
        return await FailAsync(api, name, mine, why, drain, ct);
    }

    /// <summary>Uncordons the node when the rollout cordoned it, records the failure and halts the rollout.</summary>
    private async Task<string> FailAsync(KubeApi api, string name, NodeUpdateStatus line, string why, NodeDrain drain, CancellationToken ct)
    {
        var uncordoned = "";
        if (line.Cordoned)
        {
            try
            {
                await drain.SetUnschedulableAsync(false, ct);
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
        }, ct);
    }

    private static async Task<JsonObject?> GetAsync(KubeApi api, string name, CancellationToken ct)
    {
        var response = await api.GetAsync(ApplianceUpdateResource.PathOf(name), ct);
        return response.IsNotFound ? null
            : response.IsSuccess && response.Body is JsonObject item ? item
            : throw new FleetException($"reading ApplianceUpdate {name}: {response.Describe()}");
    }

    /// <summary>
    /// Writes this node's line (read, change, PUT with the observed resourceVersion, again on 409) and the phase: Failed
    /// for a failure (the first reason stays), Succeeded once every selected node succeeded, else InProgress.
    /// </summary>
    private async Task<string> RecordAsync(KubeApi api, string name, NodeUpdateStatus line, CancellationToken ct)
    {
        for (var attempt = 0; ; attempt++)
        {
            var item = await GetAsync(api, name, ct);
            if (item is null)
            {
                return "rollout deleted";
            }

            var phase = ApplianceUpdateResource.Phase(item);
            var reason = ObjectRef.Text(item["status"]?["reason"]) ?? "";
            if (line.State == NodeStates.Failed && phase != NodeStates.PhaseFailed)
            {
                (phase, reason) = (NodeStates.PhaseFailed, $"node {nodeName}: {line.Message}");
            }
            else if (phase != NodeStates.PhaseFailed)
            {
                phase = await AllSucceededAsync(api, item, line, ct) ? NodeStates.PhaseSucceeded : NodeStates.PhaseInProgress;
            }

            var response = await api.ReplaceAsync(ApplianceUpdateResource.StatusPathOf(name), ApplianceUpdateResource.WithNode(item, line, phase, reason, time.GetUtcNow()), ct);
            if (response.IsSuccess)
            {
                log.FleetNodeState(name, nodeName, line.State, line.Message);
                if (phase == NodeStates.PhaseFailed && line.State == NodeStates.Failed)
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
