using Coracle.Core.Kubernetes;
using System.Text.Json.Nodes;

namespace Coracle.Core.Addons;

/// <summary>A kind served by kube-apiserver: its REST resource and whether its objects live in a namespace.</summary>
internal sealed record ApiResource(string GroupVersion, string Kind, string Resource, bool Namespaced)
{
    /// <summary><c>/api/v1/namespaces/NS/configmaps/NAME</c>, <c>/apis/GROUP/VERSION/RESOURCE/NAME</c>, …</summary>
    public string PathOf(string? ns, string name) =>
        $"{Root(GroupVersion)}{(Namespaced ? $"/namespaces/{Uri.EscapeDataString(ns ?? "default")}" : "")}/{Resource}/{Uri.EscapeDataString(name)}";

    /// <summary>The discovery document (and path prefix) of a group version: <c>/api/v1</c> or <c>/apis/GROUP/VERSION</c>.</summary>
    public static string Root(string groupVersion) => groupVersion.Contains('/', StringComparison.Ordinal) ? $"/apis/{groupVersion}" : $"/api/{groupVersion}";
}

/// <summary>
/// Resolves <c>apiVersion</c> and <c>kind</c> to a REST resource and scope through kube-apiserver's discovery (the
/// group version's <c>APIResourceList</c>: <c>/api/v1</c>, <c>/apis/GROUP/VERSION</c>), fetched on first use and again
/// — at most once per pass — when a kind is not in it (a CustomResourceDefinition just created). A group version that
/// is not served (404) is remembered as such until the next refresh.
/// </summary>
internal sealed class ApiDiscovery(KubeApi api)
{
    private readonly Dictionary<string, Dictionary<string, ApiResource>?> _groupVersions = new(StringComparer.Ordinal);
    private readonly HashSet<string> _refreshed = new(StringComparer.Ordinal);

    /// <summary>Starts a pass: every group version may be fetched again once.</summary>
    public void NewPass() => _refreshed.Clear();

    /// <summary>Forgets a group version, so the next lookup fetches it (its CRD changed or was deleted).</summary>
    public void Forget(string groupVersion)
    {
        _groupVersions.Remove(groupVersion);
        _refreshed.Remove(groupVersion);
    }

    /// <summary>The resource serving <paramref name="kind"/> in <paramref name="apiVersion"/>, or null when none is served (yet).</summary>
    public async Task<ApiResource?> ResolveAsync(string apiVersion, string kind, CancellationToken cancellationToken)
    {
        if (_groupVersions.TryGetValue(apiVersion, out var known))
        {
            if (known?.GetValueOrDefault(kind) is { } found)
            {
                return found;
            }

            if (_refreshed.Contains(apiVersion))
            {
                return null;
            }
        }

        _refreshed.Add(apiVersion);
        _groupVersions[apiVersion] = await FetchAsync(apiVersion, cancellationToken);
        return _groupVersions[apiVersion]?.GetValueOrDefault(kind);
    }

    private async Task<Dictionary<string, ApiResource>?> FetchAsync(string groupVersion, CancellationToken cancellationToken)
    {
        var response = await api.GetAsync(ApiResource.Root(groupVersion), cancellationToken);
        if (!response.IsSuccess)
        {
            // 404: the group version is not served; 503: an aggregated API is down. Either way, nothing resolves now.
            return null;
        }

        return Parse(groupVersion, response.Body);
    }

    /// <summary>The kinds of an <c>APIResourceList</c> (subresources such as <c>pods/status</c> left out).</summary>
    internal static Dictionary<string, ApiResource> Parse(string groupVersion, JsonNode? list)
    {
        var kinds = new Dictionary<string, ApiResource>(StringComparer.Ordinal);
        foreach (var resource in list?["resources"] as JsonArray ?? [])
        {
            var name = ObjectRef.Text(resource?["name"]);
            var kind = ObjectRef.Text(resource?["kind"]);
            if (name is null || kind is null || name.Contains('/', StringComparison.Ordinal))
            {
                continue;
            }

            var namespaced = resource?["namespaced"] is JsonValue value && value.TryGetValue<bool>(out var flag) && flag;
            kinds.TryAdd(kind, new ApiResource(groupVersion, kind, name, namespaced));
        }

        return kinds;
    }
}
