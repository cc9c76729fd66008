using System.Globalization;
using System.Text.Json.Nodes;

namespace Coracle.Core.Addons;

/// <summary>
/// What Coracle knows about one manifest file, as its <c>Addon</c> object records it: <c>spec.source</c>,
/// <c>spec.checksum</c> (sha256 of the file), <c>status.objects</c>, <c>status.lastError</c>, <c>status.appliedAt</c>.
/// </summary>
internal sealed record AddonState(string Name, string Source, string Checksum, IReadOnlyList<ObjectRef> Objects, string? LastError, DateTimeOffset? AppliedAt)
{
    /// <summary>The object's uid once written (the Events' <c>involvedObject.uid</c>).</summary>
    public string? Uid { get; init; }
}

/// <summary>
/// The <c>Addon</c> kind (<c>addons.coracle.dev</c>, version v1, namespaced; K3s has <c>addons.k3s.cattle.io</c>): the
/// CustomResourceDefinition the manifests controller applies at start, and the translation between an
/// <see cref="AddonState"/> and the object.
/// </summary>
internal static class AddonResource
{
    public const string Group = "coracle.dev";
    public const string Version = "v1";
    public const string ApiVersion = Group + "/" + Version;
    public const string Kind = "Addon";
    public const string Plural = "addons";
    public const string CrdName = Plural + "." + Group;
    public const string CrdPath = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/" + CrdName;

    /// <summary>Every Addon Coracle writes carries this label (value <c>coracle</c>); only those are Coracle's to delete.</summary>
    public const string ManagedByLabel = "app.kubernetes.io/managed-by";
    public const string ManagedBy = "coracle";

    /// <summary>How many hex digits of the checksum the CHECKSUM column shows (<c>status.shortChecksum</c>).</summary>
    public const int ShortChecksumLength = 12;

    public static string CollectionPath(string ns) => $"/apis/{ApiVersion}/namespaces/{Uri.EscapeDataString(ns)}/{Plural}";

    public static string PathOf(string ns, string name) => $"{CollectionPath(ns)}/{Uri.EscapeDataString(name)}";

    /// <summary>The list of Coracle's Addons in <paramref name="ns"/>.</summary>
    public static string ListPath(string ns) => $"{CollectionPath(ns)}?labelSelector={Uri.EscapeDataString($"{ManagedByLabel}={ManagedBy}")}";

    /// <summary>The CustomResourceDefinition: no status subresource (one apply writes spec and status), printer columns for <c>kubectl get addons -A</c>.</summary>
    public static JsonObject Crd()
    {
        static JsonObject Str(string description) => new() { ["type"] = "string", ["description"] = description };
        return new JsonObject
        {
            ["apiVersion"] = "apiextensions.k8s.io/v1",
            ["kind"] = "CustomResourceDefinition",
            ["metadata"] = new JsonObject
            {
                ["name"] = CrdName,
                ["labels"] = new JsonObject { [ManagedByLabel] = ManagedBy },
            },
            ["spec"] = new JsonObject
            {
                ["group"] = Group,
                ["scope"] = "Namespaced",
                ["names"] = new JsonObject
                {
                    ["plural"] = Plural,
                    ["singular"] = "addon",
                    ["kind"] = Kind,
                    ["listKind"] = Kind + "List",
                },
                ["versions"] = new JsonArray
                {
                    new JsonObject
                    {
                        ["name"] = Version,
                        ["served"] = true,
                        ["storage"] = true,
                        ["schema"] = new JsonObject
                        {
                            ["openAPIV3Schema"] = new JsonObject
                            {
                                ["type"] = "object",
                                ["description"] = "A file of Coracle's manifests folder (DATA/server/manifests) and the objects applied from it.",
                                ["properties"] = new JsonObject
                                {
                                    ["apiVersion"] = new JsonObject { ["type"] = "string" },
                                    ["kind"] = new JsonObject { ["type"] = "string" },
                                    ["metadata"] = new JsonObject { ["type"] = "object" },
                                    ["spec"] = new JsonObject
                                    {
                                        ["type"] = "object",
                                        ["properties"] = new JsonObject
                                        {
                                            ["source"] = Str("The file's path relative to the manifests folder."),
                                            ["checksum"] = Str("sha256 of the file's content (hex) when it was last applied or tried."),
                                        },
                                    },
                                    ["status"] = new JsonObject
                                    {
                                        ["type"] = "object",
                                        ["properties"] = new JsonObject
                                        {
                                            ["objects"] = new JsonObject
                                            {
                                                ["type"] = "array",
                                                ["description"] = "The objects applied from the file; those it no longer declares are deleted.",
                                                ["items"] = new JsonObject
                                                {
                                                    ["type"] = "object",
                                                    ["properties"] = new JsonObject
                                                    {
                                                        ["apiVersion"] = Str("apiVersion"),
                                                        ["kind"] = Str("kind"),
                                                        ["namespace"] = Str("namespace; empty for a cluster-scoped object"),
                                                        ["name"] = Str("name"),
                                                    },
                                                },
                                            },
                                            ["lastError"] = Str("Why the file could not be applied; empty when it was."),
                                            ["shortChecksum"] = Str("The first hex digits of spec.checksum."),
                                            ["appliedAt"] = new JsonObject { ["type"] = "string", ["format"] = "date-time", ["description"] = "When every object of the file was last applied." },
                                        },
                                    },
                                },
                            },
                        },
                        ["additionalPrinterColumns"] = new JsonArray
                        {
                            Column("Source", "string", ".spec.source"),
                            Column("Checksum", "string", ".status.shortChecksum"),
                            Column("Applied", "date", ".status.appliedAt"),
                            Column("Error", "string", ".status.lastError"),
                        },
                    },
                },
            },
        };
    }

    private static JsonObject Column(string name, string type, string path) => new() { ["name"] = name, ["type"] = type, ["jsonPath"] = path };

    /// <summary>The Addon object for <paramref name="state"/> in <paramref name="ns"/>, as applied (every field Coracle owns).</summary>
    public static JsonObject Build(string ns, AddonState state)
    {
        var status = new JsonObject
        {
            ["objects"] = new JsonArray(state.Objects.Select(o => (JsonNode)o.ToJson()).ToArray()),
            ["shortChecksum"] = state.Checksum.Length > ShortChecksumLength ? state.Checksum[..ShortChecksumLength] : state.Checksum,
        };
        if (state.LastError is not null)
        {
            status["lastError"] = state.LastError;
        }

        if (state.AppliedAt is { } at)
        {
            status["appliedAt"] = Timestamp(at);
        }

        return new JsonObject
        {
            ["apiVersion"] = ApiVersion,
            ["kind"] = Kind,
            ["metadata"] = new JsonObject
            {
                ["name"] = state.Name,
                ["namespace"] = ns,
                ["labels"] = new JsonObject { [ManagedByLabel] = ManagedBy },
            },
            ["spec"] = new JsonObject { ["source"] = state.Source, ["checksum"] = state.Checksum },
            ["status"] = status,
        };
    }

    /// <summary>Reads an Addon object; null when it lacks a name or a source.</summary>
    public static AddonState? Read(JsonNode? item)
    {
        var name = ObjectRef.Text(item?["metadata"]?["name"]);
        var source = ObjectRef.Text(item?["spec"]?["source"]);
        if (name is null || source is null)
        {
            return null;
        }

        var objects = (item?["status"]?["objects"] as JsonArray ?? []).Select(ObjectRef.FromJson).OfType<ObjectRef>().ToList();
        var appliedAt = DateTimeOffset.TryParse(ObjectRef.Text(item?["status"]?["appliedAt"]), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var at)
            ? at
            : (DateTimeOffset?)null;
        return new AddonState(name, source, ObjectRef.Text(item?["spec"]?["checksum"]) ?? "", objects, ObjectRef.Text(item?["status"]?["lastError"]), appliedAt)
        {
            Uid = ObjectRef.Text(item?["metadata"]?["uid"]),
        };
    }

    /// <summary>RFC 3339 in UTC with seconds, as Kubernetes writes <c>metav1.Time</c>.</summary>
    public static string Timestamp(DateTimeOffset at) => at.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    /// <summary>RFC 3339 with microseconds, as Kubernetes writes <c>metav1.MicroTime</c> (Leases, Events' eventTime).</summary>
    public static string MicroTimestamp(DateTimeOffset at) => at.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture);
}
