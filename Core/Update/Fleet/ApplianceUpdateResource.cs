using System.Globalization;
using System.Text.Json.Nodes;
using Coracle.Core.Addons;

namespace Coracle.Core.Update.Fleet;

/// <summary>What an <c>ApplianceUpdate</c> asks for (its <c>spec</c>).</summary>
internal sealed record ApplianceUpdateSpec
{
    /// <summary>https:// URL of the signed bundle.</summary>
    public required string BundleUrl { get; init; }

    /// <summary>SHA-256 of the whole bundle file, lower-case hex: the node refuses any other file.</summary>
    public required string Sha256 { get; init; }

    /// <summary>Optional: the bundle's version; a node already running it records success without downloading.</summary>
    public string Version { get; init; } = "";

    /// <summary>Node labels a node must carry to take part (empty: every node).</summary>
    public IReadOnlyDictionary<string, string> NodeSelector { get; init; } = new Dictionary<string, string>();

    /// <summary>How many nodes may be cordoned for this rollout at once (default 1).</summary>
    public int MaxUnavailable { get; init; } = 1;

    /// <summary>How long a drain may take before the rollout halts (default 300 s).</summary>
    public int DrainTimeoutSeconds { get; init; } = 300;

    /// <summary>Optional PEM CA trusted for the bundle's HTTPS download, beside the system store.</summary>
    public string DownloadCa { get; init; } = "";

    /// <summary>
    /// How long a node holding a place may go without a sign of life (its line's <c>renewedAt</c> or state changing), by
    /// the observing node's own clock, before another node marks it <c>TimedOut</c> and the rollout halts (default 1800 s:
    /// more than a restart through <c>update-trial-attempts</c> starts of <c>update-trial-deadline</c> each).
    /// </summary>
    public int NodeTimeoutSeconds { get; init; } = DefaultNodeTimeoutSeconds;

    /// <summary>The default of <see cref="NodeTimeoutSeconds"/>.</summary>
    public const int DefaultNodeTimeoutSeconds = 1800;

    /// <summary>How often a node holding a place renews its line: a quarter of the timeout, 1 to 60 s.</summary>
    public TimeSpan RenewEvery => TimeSpan.FromSeconds(Math.Clamp(NodeTimeoutSeconds / 4.0, 1, 60));
}

/// <summary>One node's line of <c>status.nodes</c>.</summary>
internal sealed record NodeUpdateStatus
{
    public required string Name { get; init; }

    /// <summary>See <see cref="NodeStates"/>.</summary>
    public required string State { get; init; }

    public string FromVersion { get; init; } = "";

    public string Version { get; init; } = "";

    public string Message { get; init; } = "";

    /// <summary>True when this rollout cordoned the node (so it uncordons it; a node cordoned by hand stays cordoned).</summary>
    public bool Cordoned { get; init; }

    public string UpdatedAt { get; init; } = "";

    /// <summary>The holding node's heartbeat: renewed every <see cref="ApplianceUpdateSpec.RenewEvery"/> while its Coracle runs.</summary>
    public string RenewedAt { get; init; } = "";
}

/// <summary>The states of a node in a rollout and of the rollout itself.</summary>
internal static class NodeStates
{
    public const string Claimed = "Claimed";
    public const string Draining = "Draining";
    public const string Applying = "Applying";
    public const string Restarting = "Restarting";
    public const string Succeeded = "Succeeded";
    public const string Failed = "Failed";

    /// <summary>The node held a place but gave no sign of life for <c>nodeTimeoutSeconds</c>; written by another node.</summary>
    public const string TimedOut = "TimedOut";

    /// <summary>States that halt the rollout.</summary>
    public static bool Halts(string state) => state is Failed or TimedOut;

    /// <summary>States that hold one of the rollout's <c>maxUnavailable</c> places.</summary>
    public static bool Holds(string state) => state is Claimed or Draining or Applying or Restarting;

    public const string PhasePending = "Pending";
    public const string PhaseInProgress = "InProgress";
    public const string PhaseSucceeded = "Succeeded";
    public const string PhaseFailed = "Failed";
}

/// <summary>
/// The <c>ApplianceUpdate</c> custom resource (<c>updates.coracle.io/v1alpha1</c>, cluster-scoped, status subresource):
/// its CustomResourceDefinition (applied by the server with the cluster roles), and reading and writing its spec and
/// status as JSON. Each node writes only its own line of <c>status.nodes</c> (and the phase), with the observed
/// <c>resourceVersion</c>, so two nodes never both take the last free place.
/// </summary>
internal static class ApplianceUpdateResource
{
    public const string Group = "updates.coracle.io";
    public const string Version = "v1alpha1";
    public const string Kind = "ApplianceUpdate";
    public const string Plural = "applianceupdates";
    public const string CrdName = Plural + "." + Group;
    public const string ApiVersion = Group + "/" + Version;

    public static string ListPath => $"/apis/{Group}/{Version}/{Plural}";

    public static string PathOf(string name) => $"{ListPath}/{Uri.EscapeDataString(name)}";

    public static string StatusPathOf(string name) => PathOf(name) + "/status";

    /// <summary>Reads the spec; null with <paramref name="error"/> set when it cannot be acted on.</summary>
    public static ApplianceUpdateSpec? ReadSpec(JsonNode? item, out string? error)
    {
        var spec = item?["spec"] as JsonObject;
        var url = ObjectRef.Text(spec?["bundleURL"]);
        var sha = ObjectRef.Text(spec?["sha256"])?.ToLowerInvariant();
        error = url is null ? "spec.bundleURL is empty"
            : !Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme != Uri.UriSchemeHttps ? $"spec.bundleURL {url} is not an https:// URL"
            : sha is null || sha.Length != 64 || !sha.All(Uri.IsHexDigit) ? "spec.sha256 is not 64 hex digits (sha256sum of the bundle file)"
            : null;
        if (error is not null)
        {
            return null;
        }

        var selector = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in spec?["nodeSelector"] as JsonObject ?? [])
        {
            selector[key] = ObjectRef.Text(value) ?? "";
        }

        return new ApplianceUpdateSpec
        {
            BundleUrl = url!,
            Sha256 = sha!,
            Version = ObjectRef.Text(spec?["version"]) ?? "",
            NodeSelector = selector,
            MaxUnavailable = Int(spec?["maxUnavailable"], 1, 1),
            DrainTimeoutSeconds = Int(spec?["drainTimeoutSeconds"], 300, 0),
            DownloadCa = ObjectRef.Text(spec?["downloadCA"]) ?? "",
            NodeTimeoutSeconds = Int(spec?["nodeTimeoutSeconds"], ApplianceUpdateSpec.DefaultNodeTimeoutSeconds, 1),
        };
    }

    private static int Int(JsonNode? node, int fallback, int min) =>
        node is JsonValue value && value.TryGetValue<long>(out var n) ? (int)Math.Clamp(n, min, int.MaxValue) : fallback;

    public static string Phase(JsonNode? item) => ObjectRef.Text(item?["status"]?["phase"]) ?? NodeStates.PhasePending;

    public static IReadOnlyList<NodeUpdateStatus> Nodes(JsonNode? item) =>
        (item?["status"]?["nodes"] as JsonArray ?? []).OfType<JsonObject>().Select(n => new NodeUpdateStatus
        {
            Name = ObjectRef.Text(n["name"]) ?? "",
            State = ObjectRef.Text(n["state"]) ?? "",
            FromVersion = ObjectRef.Text(n["fromVersion"]) ?? "",
            Version = ObjectRef.Text(n["version"]) ?? "",
            Message = ObjectRef.Text(n["message"]) ?? "",
            Cordoned = n["cordoned"] is JsonValue c && c.TryGetValue<bool>(out var b) && b,
            UpdatedAt = ObjectRef.Text(n["updatedAt"]) ?? "",
            RenewedAt = ObjectRef.Text(n["renewedAt"]) ?? "",
        }).Where(n => n.Name.Length > 0).ToList();

    /// <summary>
    /// The object with <paramref name="node"/>'s line replaced (or added) and the phase, halting reason and conditions
    /// set; it keeps the observed <c>metadata.resourceVersion</c>, so a PUT of it fails with 409 when another node wrote first.
    /// </summary>
    public static JsonObject WithNode(JsonObject item, NodeUpdateStatus node, string phase, string reason, DateTimeOffset now)
    {
        var copy = (JsonObject)item.DeepClone();
        var status = copy["status"] as JsonObject ?? new JsonObject();
        copy["status"] = status;
        var nodes = Nodes(item).Where(n => n.Name != node.Name).Append(node).OrderBy(n => n.Name, StringComparer.Ordinal).ToList();
        status["nodes"] = new JsonArray(nodes.Select(n => (JsonNode)new JsonObject
        {
            ["name"] = n.Name,
            ["state"] = n.State,
            ["fromVersion"] = n.FromVersion,
            ["version"] = n.Version,
            ["message"] = n.Message,
            ["cordoned"] = n.Cordoned,
            ["updatedAt"] = n.UpdatedAt,
            ["renewedAt"] = n.RenewedAt,
        }).ToArray());
        var oldPhase = Phase(item);
        status["phase"] = phase;
        status["reason"] = phase == NodeStates.PhaseFailed ? reason : "";
        status["observedGeneration"] = item["metadata"]?["generation"]?.DeepClone();
        var timedOut = phase == NodeStates.PhaseFailed && nodes.Any(n => n.State == NodeStates.TimedOut && reason.StartsWith($"node {n.Name}: ", StringComparison.Ordinal));
        status["conditions"] = Conditions(item, phase, reason, timedOut ? "NodeTimedOut" : "NodeFailed", oldPhase != phase, now);
        return copy;
    }

    private static JsonArray Conditions(JsonObject item, string phase, string reason, string haltedWhy, bool changed, DateTimeOffset now)
    {
        var old = (item["status"]?["conditions"] as JsonArray ?? []).OfType<JsonObject>().ToDictionary(c => ObjectRef.Text(c["type"]) ?? "", c => c, StringComparer.Ordinal);
        JsonObject Condition(string type, bool on, string why, string message)
        {
            var status = on ? "True" : "False";
            var since = old.TryGetValue(type, out var was) && ObjectRef.Text(was["status"]) == status && !changed
                ? ObjectRef.Text(was["lastTransitionTime"]) ?? Timestamp(now)
                : Timestamp(now);
            return new JsonObject
            {
                ["type"] = type,
                ["status"] = status,
                ["reason"] = why,
                ["message"] = message,
                ["lastTransitionTime"] = since,
            };
        }

        return
        [
            Condition("Halted", phase == NodeStates.PhaseFailed, phase == NodeStates.PhaseFailed ? haltedWhy : "NotHalted", phase == NodeStates.PhaseFailed ? reason : ""),
            Condition("Complete", phase == NodeStates.PhaseSucceeded, phase == NodeStates.PhaseSucceeded ? "AllNodesUpdated" : phase, phase == NodeStates.PhaseSucceeded ? "every selected node runs the bundle's version" : ""),
        ];
    }

    public static string Timestamp(DateTimeOffset at) => at.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    /// <summary>True when <paramref name="labels"/> carry every key and value of <paramref name="selector"/>.</summary>
    public static bool Selects(IReadOnlyDictionary<string, string> selector, JsonNode? labels) =>
        selector.All(s => ObjectRef.Text(labels?[s.Key]) is { } value ? value == s.Value : s.Value.Length == 0 && labels?[s.Key] is not null);

    /// <summary>The CustomResourceDefinition (status subresource, printer columns for <c>kubectl get applianceupdates</c>).</summary>
    public static JsonObject Crd() => (JsonObject)JsonNode.Parse(CrdJson)!;

    private const string CrdJson = """
        {
          "apiVersion": "apiextensions.k8s.io/v1",
          "kind": "CustomResourceDefinition",
          "metadata": { "name": "applianceupdates.updates.coracle.io", "labels": { "app.kubernetes.io/managed-by": "coracle" } },
          "spec": {
            "group": "updates.coracle.io",
            "scope": "Cluster",
            "names": { "plural": "applianceupdates", "singular": "applianceupdate", "kind": "ApplianceUpdate", "listKind": "ApplianceUpdateList", "shortNames": ["aup"] },
            "versions": [{
              "name": "v1alpha1",
              "served": true,
              "storage": true,
              "subresources": { "status": {} },
              "additionalPrinterColumns": [
                { "name": "Version", "type": "string", "jsonPath": ".spec.version" },
                { "name": "Phase", "type": "string", "jsonPath": ".status.phase" },
                { "name": "Reason", "type": "string", "jsonPath": ".status.reason", "priority": 1 },
                { "name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp" }
              ],
              "schema": { "openAPIV3Schema": {
                "type": "object",
                "description": "A fleet rollout of a signed Coracle bundle: each selected node's Coracle updates itself, one node (maxUnavailable) at a time: cordon, drain, apply, health gate, uncordon. A node that rolls back halts the rollout.",
                "properties": {
                  "apiVersion": { "type": "string" },
                  "kind": { "type": "string" },
                  "metadata": { "type": "object" },
                  "spec": {
                    "type": "object",
                    "required": ["bundleURL", "sha256"],
                    "properties": {
                      "bundleURL": { "type": "string", "pattern": "^https://", "description": "https:// URL of the signed bundle (coracle update bundle)." },
                      "sha256": { "type": "string", "pattern": "^[0-9a-fA-F]{64}$", "description": "SHA-256 of the whole bundle file (sha256sum); a node refuses any other file." },
                      "version": { "type": "string", "description": "Optional: the bundle's version. A node already running it records success without downloading; the bundle's signed manifest must say the same." },
                      "nodeSelector": { "type": "object", "additionalProperties": { "type": "string" }, "description": "Labels a node must carry to take part; empty: every node." },
                      "maxUnavailable": { "type": "integer", "minimum": 1, "default": 1, "description": "How many nodes may be updating (cordoned) at once." },
                      "drainTimeoutSeconds": { "type": "integer", "minimum": 0, "default": 300, "description": "How long a node's drain may take before the rollout halts." },
                      "downloadCA": { "type": "string", "description": "Optional PEM CA certificates trusted for the HTTPS download, beside the system store (the bundle's signature and sha256 protect its content)." },
                      "nodeTimeoutSeconds": { "type": "integer", "minimum": 1, "default": 1800, "description": "How long a node holding a place may give no sign of life (status.nodes[].renewedAt) before another node marks it TimedOut and the rollout halts. Must exceed a restart through every trial start." }
                    }
                  },
                  "status": {
                    "type": "object",
                    "properties": {
                      "phase": { "type": "string", "description": "Pending, InProgress, Succeeded or Failed (halted: no further node starts)." },
                      "reason": { "type": "string", "description": "Why the rollout halted." },
                      "observedGeneration": { "type": "integer" },
                      "nodes": {
                        "type": "array",
                        "items": {
                          "type": "object",
                          "properties": {
                            "name": { "type": "string" },
                            "state": { "type": "string", "description": "Claimed, Draining, Applying, Restarting (these hold a maxUnavailable place), Succeeded, Failed or TimedOut." },
                            "fromVersion": { "type": "string" },
                            "version": { "type": "string" },
                            "message": { "type": "string" },
                            "cordoned": { "type": "boolean", "description": "The rollout cordoned the node (and uncordons it); the Node carries the annotation updates.coracle.io/cordoned-for naming the rollout." },
                            "updatedAt": { "type": "string" },
                            "renewedAt": { "type": "string", "description": "The holding node's heartbeat." }
                          }
                        }
                      },
                      "conditions": {
                        "type": "array",
                        "items": {
                          "type": "object",
                          "properties": {
                            "type": { "type": "string" },
                            "status": { "type": "string" },
                            "reason": { "type": "string" },
                            "message": { "type": "string" },
                            "lastTransitionTime": { "type": "string" }
                          }
                        }
                      }
                    }
                  }
                }
              } }
            }]
          }
        }
        """;
}
