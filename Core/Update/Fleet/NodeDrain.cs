using System.Text.Json.Nodes;
using Coracle.Core.Addons;
using Coracle.Core.Kubernetes;

namespace Coracle.Core.Update.Fleet;

/// <summary>
/// Cordon, drain and uncordon of one node, as <c>kubectl drain --ignore-daemonsets --delete-emptydir-data</c> does it:
/// every pod on the node is evicted through the Eviction API (so PodDisruptionBudgets are respected: a refused
/// eviction, HTTP 429, is tried again), except DaemonSet pods (their controller would put them back at once), mirror
/// pods (static pods the kubelet owns) and pods already finished. The drain ends when no such pod is left, or fails
/// after its timeout naming the pods still there.
/// </summary>
internal sealed class NodeDrain(KubeApi api, string node, TimeProvider time)
{
    public const string FieldManager = "coracle-fleet";

    private string NodePath => $"/api/v1/nodes/{Uri.EscapeDataString(node)}";

    /// <summary>Whether the node is unschedulable now (cordoned by hand or by us).</summary>
    public async Task<bool> IsCordonedAsync(CancellationToken ct)
    {
        var response = await api.GetAsync(NodePath, ct);
        return response.IsSuccess
            ? response.Body?["spec"]?["unschedulable"] is JsonValue v && v.TryGetValue<bool>(out var b) && b
            : throw new FleetException($"reading Node {node}: {response.Describe()}");
    }

    /// <summary>
    /// The annotation a node's controller puts on its own Node with the cordon, naming the rollout it cordoned for. It
    /// outlives the rollout and a restart of Coracle: a node uncordons itself when the rollout it names is gone, finished or
    /// no longer holds the node's place; a cordon without it (made by hand) is never lifted.
    /// </summary>
    public const string CordonAnnotation = "updates.coracle.io/cordoned-for";

    /// <summary>The rollout <paramref name="nodeObject"/> was cordoned for (<see cref="CordonAnnotation"/>), or null.</summary>
    public static string? CordonedFor(JsonNode? nodeObject) => ObjectRef.Text(nodeObject?["metadata"]?["annotations"]?[CordonAnnotation]);

    /// <summary>
    /// Cordons the node for <paramref name="rollout"/>, or uncordons it (<paramref name="rollout"/> null), by server-side
    /// apply of <c>spec.unschedulable</c> and <see cref="CordonAnnotation"/> (field manager coracle-fleet): the uncordon's
    /// apply leaves the annotation out, which removes it.
    /// </summary>
    public async Task SetUnschedulableAsync(string? rollout, CancellationToken ct)
    {
        var metadata = new JsonObject { ["name"] = node };
        if (rollout is not null)
        {
            metadata["annotations"] = new JsonObject { [CordonAnnotation] = rollout };
        }

        var body = new JsonObject
        {
            ["apiVersion"] = "v1",
            ["kind"] = "Node",
            ["metadata"] = metadata,
            ["spec"] = new JsonObject { ["unschedulable"] = rollout is not null },
        };
        var doing = rollout is not null ? "cordoning" : "uncordoning";
        var response = await api.ApplyAsync(NodePath, body, FieldManager, ct);
        if (!response.IsSuccess)
        {
            throw new FleetException($"{doing} Node {node}: {response.Describe()}");
        }

        // Another manager that also wrote the annotation keeps it after the apply: remove it by a replace.
        for (var attempt = 0; rollout is null && CordonedFor(response.Body) is not null; attempt++)
        {
            var current = (JsonObject)response.Body!;
            (current["metadata"]!["annotations"] as JsonObject)?.Remove(CordonAnnotation);
            response = await api.ReplaceAsync(NodePath, current, ct);
            if (response.IsConflict && attempt < 5)
            {
                response = await api.GetAsync(NodePath, ct);
            }

            if (!response.IsSuccess)
            {
                throw new FleetException($"{doing} Node {node}: removing the annotation {CordonAnnotation}: {response.Describe()}");
            }
        }
    }

    /// <summary>True for the pods a drain evicts: not a DaemonSet's, not a mirror pod, not finished.</summary>
    public static bool Evictable(JsonNode pod)
    {
        var owners = pod["metadata"]?["ownerReferences"] as JsonArray ?? [];
        if (owners.Any(o => ObjectRef.Text(o?["kind"]) == "DaemonSet" && o?["controller"] is JsonValue c && c.TryGetValue<bool>(out var isController) && isController))
        {
            return false;
        }

        if (pod["metadata"]?["annotations"]?["kubernetes.io/config.mirror"] is not null)
        {
            return false;
        }

        return ObjectRef.Text(pod["status"]?["phase"]) is not ("Succeeded" or "Failed");
    }

    /// <summary>The node's pods the drain must remove, as <c>namespace/name</c>.</summary>
    public async Task<IReadOnlyList<(string Namespace, string Name)>> EvictablePodsAsync(CancellationToken ct)
    {
        var response = await api.GetAsync($"/api/v1/pods?fieldSelector={Uri.EscapeDataString("spec.nodeName=" + node)}", ct);
        if (!response.IsSuccess)
        {
            throw new FleetException($"listing the pods of Node {node}: {response.Describe()}");
        }

        return (response.Body?["items"] as JsonArray ?? []).OfType<JsonObject>().Where(Evictable)
            .Select(p => (ObjectRef.Text(p["metadata"]?["namespace"]) ?? "default", ObjectRef.Text(p["metadata"]?["name"]) ?? ""))
            .ToList();
    }

    /// <summary>
    /// Evicts every evictable pod until none is left; returns the number evicted. Throws <see cref="FleetException"/>
    /// after <paramref name="timeout"/> with the pods left and why (a disruption budget refusing, or still terminating).
    /// </summary>
    public async Task<int> DrainAsync(TimeSpan timeout, CancellationToken ct)
    {
        var started = time.GetTimestamp();
        var evicted = new HashSet<string>(StringComparer.Ordinal);
        var refused = new Dictionary<string, string>(StringComparer.Ordinal);
        while (true)
        {
            var pods = await EvictablePodsAsync(ct);
            if (pods.Count == 0)
            {
                return evicted.Count;
            }

            foreach (var (ns, name) in pods)
            {
                var key = $"{ns}/{name}";
                var response = await api.CreateAsync($"/api/v1/namespaces/{Uri.EscapeDataString(ns)}/pods/{Uri.EscapeDataString(name)}/eviction", new JsonObject
                {
                    ["apiVersion"] = "policy/v1",
                    ["kind"] = "Eviction",
                    ["metadata"] = new JsonObject { ["name"] = name, ["namespace"] = ns },
                }, ct);
                if (response.IsSuccess || response.IsNotFound)
                {
                    evicted.Add(key);
                    refused.Remove(key);
                }
                else
                {
                    refused[key] = (int)response.Status == 429 ? "a PodDisruptionBudget does not allow it" : response.Describe();
                }
            }

            if (time.GetElapsedTime(started) >= timeout)
            {
                var left = pods.Select(p => $"{p.Namespace}/{p.Name}").Select(k => refused.TryGetValue(k, out var why) ? $"{k} ({why})" : $"{k} (terminating)");
                throw new FleetException($"the drain of Node {node} did not finish within {timeout.TotalSeconds:0} s: {string.Join(", ", left)}");
            }

            await Task.Delay(TimeSpan.FromSeconds(2), time, ct);
        }
    }
}

/// <summary>A step of a node's update that failed; its message is the reason written into the rollout's status.</summary>
internal sealed class FleetException(string message, Exception? inner = null) : Exception(message, inner)
{
    /// <summary>A passing problem (the download broke off, the server did not answer): tried again next pass, nothing recorded.</summary>
    public bool Retry { get; init; }
}
