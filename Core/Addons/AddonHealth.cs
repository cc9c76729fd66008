using System.Text.Json.Nodes;
using Coracle.Core.Kubernetes;

namespace Coracle.Core.Addons;

/// <summary>
/// How the workloads (Deployments, DaemonSets, StatefulSets) of one add-on are doing: pods ready of pods wanted, the
/// images its pods cannot get, and the first other reason a container waits for.
/// </summary>
internal sealed record AddonHealth(int Ready, int Wanted, IReadOnlyList<string> MissingImages, string? Waiting)
{
    public static readonly AddonHealth None = new(0, 0, [], null);
}

/// <summary>What one pod says about itself: Ready, images it cannot get, another reason a container waits.</summary>
internal sealed record PodFacts(bool Ready, IReadOnlyList<string> MissingImages, string? Waiting);

/// <summary>
/// Reads <see cref="AddonHealth"/> from kube-apiserver: each workload the add-on owns, then its pods by the workload's
/// label selector (a few GETs per add-on, done every <see cref="ManifestsOptions.StatusInterval"/>).
/// </summary>
internal static class AddonHealthReader
{
    /// <summary>Waiting reasons that mean the node cannot get the image (kubelet's, and containerd's for a missing image).</summary>
    private static readonly HashSet<string> ImageReasons = new(StringComparer.Ordinal)
    {
        "ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull",
    };

    /// <summary>Reasons that are the normal way to a running container, not worth reporting.</summary>
    private static readonly HashSet<string> NormalReasons = new(StringComparer.Ordinal)
    {
        "ContainerCreating", "PodInitializing",
    };

    /// <summary>The workloads among <paramref name="objects"/>, as <c>(resource, ObjectRef)</c>.</summary>
    public static IEnumerable<(string Resource, ObjectRef Ref)> Workloads(IEnumerable<ObjectRef> objects) =>
        objects
            .Where(o => o.Group == "apps" && o.Namespace is not null)
            .Select(o => (Resource: o.Kind switch
            {
                "Deployment" => "deployments",
                "DaemonSet" => "daemonsets",
                "StatefulSet" => "statefulsets",
                _ => "",
            }, Ref: o))
            .Where(w => w.Resource.Length > 0);

    /// <summary>Null when the add-on owns no workload; throws <see cref="KubeApiUnavailableException"/> when kube-apiserver does not answer.</summary>
    public static async Task<AddonHealth?> ReadAsync(KubeApi api, IReadOnlyList<ObjectRef> objects, CancellationToken cancellationToken)
    {
        var workloads = Workloads(objects).ToList();
        if (workloads.Count == 0)
        {
            return null;
        }

        int ready = 0, wanted = 0;
        var missing = new List<string>();
        string? waiting = null;
        foreach (var (resource, workload) in workloads)
        {
            var ns = Uri.EscapeDataString(workload.Namespace!);
            var response = await api.GetAsync($"/apis/apps/v1/namespaces/{ns}/{resource}/{Uri.EscapeDataString(workload.Name)}", cancellationToken);
            if (!response.IsSuccess || response.Body is not JsonObject body || LabelSelector(body["spec"]?["selector"]) is not { } selector)
            {
                continue;
            }

            var pods = await api.GetAsync($"/api/v1/namespaces/{ns}/pods?labelSelector={Uri.EscapeDataString(selector)}", cancellationToken);
            var facts = (pods.IsSuccess ? pods.Body?["items"] as JsonArray ?? [] : [])
                .OfType<JsonObject>()
                .Where(p => p["metadata"]?["deletionTimestamp"] is null)
                .Select(Read)
                .ToList();
            var want = resource == "daemonsets"
                ? Math.Max(Int(body["status"]?["desiredNumberScheduled"]) ?? 0, facts.Count)
                : Int(body["spec"]?["replicas"]) ?? 1;
            wanted += want;
            ready += Math.Min(want, facts.Count(f => f.Ready));
            foreach (var fact in facts.Where(f => !f.Ready))
            {
                missing.AddRange(fact.MissingImages);
                waiting ??= fact.Waiting;
            }
        }

        return new AddonHealth(ready, wanted, missing.Distinct(StringComparer.Ordinal).ToList(), waiting);
    }

    /// <summary>One pod's readiness, the images its containers cannot get, and another reason one waits.</summary>
    public static PodFacts Read(JsonObject pod)
    {
        var ready = (pod["status"]?["conditions"] as JsonArray ?? [])
            .Any(c => ObjectRef.Text(c?["type"]) == "Ready" && ObjectRef.Text(c?["status"]) == "True");
        var specImages = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var list in new[] { "initContainers", "containers" })
        {
            foreach (var container in pod["spec"]?[list] as JsonArray ?? [])
            {
                if (ObjectRef.Text(container?["name"]) is { } name && ObjectRef.Text(container?["image"]) is { } image)
                {
                    specImages.TryAdd(name, image);
                }
            }
        }

        var missing = new List<string>();
        string? waiting = null;
        foreach (var list in new[] { "initContainerStatuses", "containerStatuses" })
        {
            foreach (var status in pod["status"]?[list] as JsonArray ?? [])
            {
                var reason = ObjectRef.Text(status?["state"]?["waiting"]?["reason"]);
                if (reason is null)
                {
                    continue;
                }

                var message = ObjectRef.Text(status?["state"]?["waiting"]?["message"]) ?? "";
                if (IsImageMissing(reason, message))
                {
                    var image = ObjectRef.Text(status?["image"])
                        ?? (ObjectRef.Text(status?["name"]) is { } name && specImages.TryGetValue(name, out var fromSpec) ? fromSpec : null)
                        ?? "(unknown image)";
                    missing.Add(image);
                }
                else if (!NormalReasons.Contains(reason))
                {
                    waiting ??= message.Length > 0 ? $"{reason}: {message}" : reason;
                }
            }
        }

        return new PodFacts(ready, missing, waiting);
    }

    /// <summary>
    /// kubelet's pull failures (<c>ErrImagePull</c>, <c>ImagePullBackOff</c>, <c>ErrImageNeverPull</c>), and any other
    /// waiting reason whose message says an image was not found (containerd's <c>... image ...: not found</c>).
    /// </summary>
    public static bool IsImageMissing(string reason, string message) =>
        ImageReasons.Contains(reason)
        || (message.Contains("image", StringComparison.OrdinalIgnoreCase) && message.Contains("not found", StringComparison.OrdinalIgnoreCase));

    /// <summary>A <c>metav1.LabelSelector</c> as the <c>labelSelector</c> query text; null when there is none.</summary>
    public static string? LabelSelector(JsonNode? selector)
    {
        if (selector is not JsonObject json)
        {
            return null;
        }

        var terms = new List<string>();
        foreach (var (key, value) in json["matchLabels"] as JsonObject ?? [])
        {
            terms.Add($"{key}={ObjectRef.Text(value)}");
        }

        foreach (var expression in json["matchExpressions"] as JsonArray ?? [])
        {
            var key = ObjectRef.Text(expression?["key"]);
            var values = string.Join(",", (expression?["values"] as JsonArray ?? []).Select(v => ObjectRef.Text(v)));
            var term = ObjectRef.Text(expression?["operator"]) switch
            {
                "In" => $"{key} in ({values})",
                "NotIn" => $"{key} notin ({values})",
                "Exists" => key,
                "DoesNotExist" => $"!{key}",
                _ => null,
            };
            if (key is not null && term is not null)
            {
                terms.Add(term);
            }
        }

        return terms.Count == 0 ? null : string.Join(",", terms);
    }

    private static int? Int(JsonNode? node) => node is JsonValue value && value.TryGetValue<int>(out var number) ? number : null;
}
