using System.Text.Json.Nodes;

namespace Coracle.Core.Addons;

/// <summary>
/// One object a manifest file declares or an Addon applied: what <c>status.objects</c> lists and what pruning compares.
/// <see cref="Namespace"/> is the effective one (null for a cluster-scoped object, <c>default</c> for a namespaced
/// object written without one).
/// </summary>
internal sealed record ObjectRef(string ApiVersion, string Kind, string? Namespace, string Name)
{
    /// <summary>The API group: the part of <see cref="ApiVersion"/> before the slash, empty for the core group.</summary>
    public string Group => ApiVersion.IndexOf('/', StringComparison.Ordinal) is var slash and >= 0 ? ApiVersion[..slash] : "";

    /// <summary>
    /// The object's identity across versions of its group: a file that moves an object from <c>v1beta1</c> to
    /// <c>v1</c> still declares the same object, which must not be pruned.
    /// </summary>
    public string Key => $"{Group}|{Kind}|{Namespace}|{Name}";

    public override string ToString() => Namespace is null ? $"{Kind} {Name}" : $"{Kind} {Namespace}/{Name}";

    public JsonObject ToJson()
    {
        var json = new JsonObject { ["apiVersion"] = ApiVersion, ["kind"] = Kind };
        if (Namespace is not null)
        {
            json["namespace"] = Namespace;
        }

        json["name"] = Name;
        return json;
    }

    /// <summary>Reads one entry of <c>status.objects</c>; null when a field is missing.</summary>
    public static ObjectRef? FromJson(JsonNode? node) =>
        node is JsonObject json
            && Text(json["apiVersion"]) is { } apiVersion
            && Text(json["kind"]) is { } kind
            && Text(json["name"]) is { } name
            ? new ObjectRef(apiVersion, kind, Text(json["namespace"]), name)
            : null;

    internal static string? Text(JsonNode? node) =>
        node is JsonValue value && value.TryGetValue<string>(out var text) && text.Length > 0 ? text : null;
}
