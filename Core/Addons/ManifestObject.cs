using System.Text.Json.Nodes;

namespace Coracle.Core.Addons;

/// <summary>
/// One Kubernetes object read from a manifest file (a YAML document, an item of a <c>kind: List</c>, or a JSON object),
/// already checked to have <c>apiVersion</c>, <c>kind</c> and <c>metadata.name</c>.
/// </summary>
/// <param name="Body">The object as JSON.</param>
/// <param name="Position">Where it starts, for error messages: <c>FILE:LINE:COLUMN</c> (or <c>FILE: items[N]</c>).</param>
internal sealed record ManifestObject(JsonObject Body, string Position)
{
    public string ApiVersion => ObjectRef.Text(Body["apiVersion"])!;

    public string Kind => ObjectRef.Text(Body["kind"])!;

    public string Name => ObjectRef.Text(Body["metadata"]?["name"])!;

    /// <summary>The namespace as written; null when the file gives none.</summary>
    public string? Namespace => ObjectRef.Text(Body["metadata"]?["namespace"]);

    /// <summary>The reference with the effective namespace (null for a cluster-scoped kind).</summary>
    public ObjectRef Ref(string? effectiveNamespace) => new(ApiVersion, Kind, effectiveNamespace, Name);
}
