using System.Net;
using System.Text.Json.Nodes;

namespace Coracle.Core.Kubernetes;

/// <summary>
/// What K3s's embedded cloud provider does to a Node, as pure edits of its JSON (tested against a real kube-apiserver
/// in <c>Kubernetes/CloudNodeControllerTests.cs</c>). Each node declares its own addresses in annotations
/// (<see cref="InternalIpAnnotation"/>, <see cref="ExternalIpAnnotation"/>; K3s's <c>k3s.io/internal-ip</c> and
/// <c>k3s.io/external-ip</c>) and a server labels its own Node with its role (<see cref="ServerLabels"/>, as K3s's server
/// does); the server's cloud-node controller then copies the annotations into <c>status.addresses</c> (InternalIP(s),
/// ExternalIP(s), Hostname), sets <c>spec.providerID</c> <c>coracle://NAME</c> and the instance-type label, and removes
/// the taint <see cref="UninitializedTaint"/> the kubelet registers with under <c>--cloud-provider=external</c>.
/// </summary>
internal static class CloudNode
{
    /// <summary>The node's InternalIP addresses, comma-separated (<c>--node-ip</c>, else the detected ones).</summary>
    public const string InternalIpAnnotation = "coracle.dev/internal-ip";

    /// <summary>The node's ExternalIP addresses, comma-separated (<c>--node-external-ip</c>); absent when there are none.</summary>
    public const string ExternalIpAnnotation = "coracle.dev/external-ip";

    /// <summary>The taint a kubelet with <c>--cloud-provider=external</c> registers with, until a cloud controller initializes the node.</summary>
    public const string UninitializedTaint = "node.cloudprovider.kubernetes.io/uninitialized";

    /// <summary>The prefix of <c>spec.providerID</c> (K3s: <c>k3s://</c>).</summary>
    public const string ProviderIdPrefix = "coracle://";

    /// <summary>The instance type label the cloud-node controller sets (K3s: <c>k3s</c>).</summary>
    public const string InstanceTypeLabel = "node.kubernetes.io/instance-type";

    public const string ControlPlaneLabel = "node-role.kubernetes.io/control-plane";

    public const string MasterLabel = "node-role.kubernetes.io/master";

    /// <summary>The role label of a server whose datastore is a member of a clustered datastore (embedded etcd), as K3s sets it.</summary>
    public const string EtcdLabel = "node-role.kubernetes.io/etcd";

    /// <summary>The labels a server puts on its own Node, as K3s 1.32 does: control-plane and (still) master, both <c>true</c>.</summary>
    public static IReadOnlyDictionary<string, string> ServerLabels { get; } = new SortedDictionary<string, string>(StringComparer.Ordinal)
    {
        [ControlPlaneLabel] = "true",
        [MasterLabel] = "true",
    };

    /// <summary>
    /// The annotations a node declares about itself: its internal addresses, and its external ones (null: remove an
    /// earlier run's).
    /// </summary>
    public static IReadOnlyDictionary<string, string?> OwnAnnotations(IEnumerable<string> internalIps, IEnumerable<string> externalIps)
    {
        var external = string.Join(',', externalIps);
        return new SortedDictionary<string, string?>(StringComparer.Ordinal)
        {
            [InternalIpAnnotation] = string.Join(',', internalIps),
            [ExternalIpAnnotation] = external.Length == 0 ? null : external,
        };
    }

    /// <summary>Sets (or, for a null value, removes) <paramref name="annotations"/> and sets <paramref name="labels"/> on <paramref name="node"/>; true when it changed.</summary>
    public static bool DeclareOwn(JsonObject node, IReadOnlyDictionary<string, string?> annotations, IReadOnlyDictionary<string, string> labels)
    {
        ArgumentNullException.ThrowIfNull(node);
        var metadata = Child(node, "metadata");
        var changed = false;
        foreach (var (key, value) in annotations)
        {
            changed |= SetEntry(metadata, "annotations", key, value);
        }

        foreach (var (key, value) in labels)
        {
            changed |= SetEntry(metadata, "labels", key, value);
        }

        return changed;
    }

    /// <summary>
    /// The addresses the node's annotations give, in K3s's order (InternalIP(s), ExternalIP(s), Hostname), or null while
    /// the node has not annotated itself (or an annotation holds something that is not an IP).
    /// </summary>
    public static JsonArray? Addresses(JsonObject node)
    {
        ArgumentNullException.ThrowIfNull(node);
        var annotations = node["metadata"]?["annotations"] as JsonObject;
        if (Ips(annotations?[InternalIpAnnotation]) is not { Count: > 0 } internalIps || Ips(annotations?[ExternalIpAnnotation]) is not { } externalIps)
        {
            return null;
        }

        var name = node["metadata"]?["name"]?.GetValue<string>() ?? "";
        var hostname = (node["status"]?["addresses"] as JsonArray)?.OfType<JsonObject>()
            .Where(a => a["type"]?.GetValue<string>() == "Hostname")
            .Select(a => a["address"]?.GetValue<string>())
            .FirstOrDefault(a => !string.IsNullOrEmpty(a)) ?? name;
        var addresses = new JsonArray();
        foreach (var ip in internalIps)
        {
            addresses.Add(Address("InternalIP", ip));
        }

        foreach (var ip in externalIps)
        {
            addresses.Add(Address("ExternalIP", ip));
        }

        addresses.Add(Address("Hostname", hostname));
        return addresses;
    }

    /// <summary>Sets <c>status.addresses</c> to <paramref name="addresses"/>; true when it changed.</summary>
    public static bool SetAddresses(JsonObject node, JsonArray addresses)
    {
        ArgumentNullException.ThrowIfNull(node);
        ArgumentNullException.ThrowIfNull(addresses);
        var status = Child(node, "status");
        if (status["addresses"] is JsonArray current && JsonNode.DeepEquals(current, addresses))
        {
            return false;
        }

        status["addresses"] = addresses.DeepClone();
        return true;
    }

    /// <summary>
    /// What the cloud-node controller sets outside the status: <c>spec.providerID</c> when empty (it cannot change once
    /// set), the instance-type label, and no <see cref="UninitializedTaint"/>; true when anything changed.
    /// </summary>
    public static bool Initialize(JsonObject node)
    {
        ArgumentNullException.ThrowIfNull(node);
        var name = node["metadata"]?["name"]?.GetValue<string>() ?? "";
        var spec = Child(node, "spec");
        var changed = false;
        if (string.IsNullOrEmpty(spec["providerID"]?.GetValue<string>()))
        {
            spec["providerID"] = ProviderIdPrefix + name;
            changed = true;
        }

        if (spec["taints"] is JsonArray taints)
        {
            var uninitialized = taints.OfType<JsonObject>().Where(t => t["key"]?.GetValue<string>() == UninitializedTaint).ToList();
            foreach (var taint in uninitialized)
            {
                taints.Remove(taint);
                changed = true;
            }

            if (taints.Count == 0)
            {
                spec.Remove("taints");
            }
        }

        var labels = node["metadata"]?["labels"] as JsonObject;
        if (labels?[InstanceTypeLabel] is null)
        {
            changed |= SetEntry(Child(node, "metadata"), "labels", InstanceTypeLabel, "coracle");
        }

        return changed;
    }

    /// <summary>True when the controller has something to do for <paramref name="node"/> (its annotations are there, and its addresses or spec differ).</summary>
    public static bool NeedsWork(JsonObject node)
    {
        ArgumentNullException.ThrowIfNull(node);
        if (Addresses(node) is not { } addresses)
        {
            return false;
        }

        var copy = node.DeepClone().AsObject();
        return SetAddresses(copy, addresses) | Initialize(copy);
    }

    /// <summary>True when the node still carries <see cref="UninitializedTaint"/>.</summary>
    public static bool IsTainted(JsonObject node) =>
        (node?["spec"]?["taints"] as JsonArray)?.OfType<JsonObject>().Any(t => t["key"]?.GetValue<string>() == UninitializedTaint) == true;

    private static List<string>? Ips(JsonNode? value)
    {
        var text = value?.GetValue<string>() ?? "";
        var parts = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return parts.All(p => IPAddress.TryParse(p, out _)) ? parts.ToList() : null;
    }

    private static JsonObject Address(string type, string address) => new() { ["type"] = type, ["address"] = address };

    private static JsonObject Child(JsonObject parent, string name)
    {
        if (parent[name] is JsonObject child)
        {
            return child;
        }

        child = [];
        parent[name] = child;
        return child;
    }

    private static bool SetEntry(JsonObject metadata, string map, string key, string? value)
    {
        var entries = metadata[map] as JsonObject;
        var current = entries?[key]?.GetValue<string>();
        if (current == value)
        {
            return false;
        }

        if (value is null)
        {
            entries!.Remove(key);
            return true;
        }

        entries ??= Child(metadata, map);
        entries[key] = value;
        return true;
    }
}
