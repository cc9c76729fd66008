using Coracle.Core.Kubernetes;
using System.Text.Json.Nodes;
using Coracle.Core.Logging;
using Microsoft.Extensions.Logging;

namespace Coracle.Core.Addons;

/// <summary>kube-apiserver answered a call the controller cannot do without (listing or writing an Addon) with an error.</summary>
internal sealed class KubeApiException(string message) : Exception(message);

/// <summary>
/// The Addons in kube-apiserver: their CustomResourceDefinition (applied, then awaited until Established), listing,
/// writing (server-side apply of spec and status together), deleting, and the Events about them.
/// </summary>
internal sealed class AddonStore(KubeApi api, ManifestsOptions options, ILogger log, TimeProvider time)
{
    private string Namespace => options.Namespace;

    /// <summary>Applies the Addon CustomResourceDefinition and waits until it is Established.</summary>
    public async Task EnsureCrdAsync(CancellationToken cancellationToken)
    {
        var response = await api.ApplyAsync(AddonResource.CrdPath, AddonResource.Crd(), ManifestsOptions.FieldManager, cancellationToken);
        if (!response.IsSuccess)
        {
            throw new KubeApiException($"applying CustomResourceDefinition {AddonResource.CrdName}: {response.Describe()}");
        }

        if (!await WaitEstablishedAsync(AddonResource.CrdName, cancellationToken))
        {
            throw new KubeApiException($"CustomResourceDefinition {AddonResource.CrdName} is not Established after {options.EstablishTimeout.TotalSeconds:0} s");
        }
    }

    /// <summary>Polls a CustomResourceDefinition until its Established condition is True; false after <see cref="ManifestsOptions.EstablishTimeout"/>.</summary>
    public async Task<bool> WaitEstablishedAsync(string crd, CancellationToken cancellationToken)
    {
        var started = time.GetTimestamp();
        while (true)
        {
            var response = await api.GetAsync($"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{Uri.EscapeDataString(crd)}", cancellationToken);
            var established = (response.Body?["status"]?["conditions"] as JsonArray ?? [])
                .Any(c => ObjectRef.Text(c?["type"]) == "Established" && ObjectRef.Text(c?["status"]) == "True");
            if (established)
            {
                log.ManifestsCrdEstablished(crd);
                return true;
            }

            if (time.GetElapsedTime(started) >= options.EstablishTimeout)
            {
                return false;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(250), time, cancellationToken);
        }
    }

    /// <summary>Coracle's Addons (label <c>app.kubernetes.io/managed-by=coracle</c>): what was applied before this start.</summary>
    public async Task<IReadOnlyList<AddonState>> ListAsync(CancellationToken cancellationToken)
    {
        var response = await api.GetAsync(AddonResource.ListPath(Namespace), cancellationToken);
        if (!response.IsSuccess)
        {
            throw new KubeApiException($"listing Addons in {Namespace}: {response.Describe()}");
        }

        return (response.Body?["items"] as JsonArray ?? []).Select(AddonResource.Read).OfType<AddonState>().ToList();
    }

    /// <summary>Writes the Addon (every field Coracle owns; an omitted <c>lastError</c> goes); returns it with its uid.</summary>
    public async Task<AddonState> WriteAsync(AddonState state, CancellationToken cancellationToken)
    {
        var response = await api.ApplyAsync(AddonResource.PathOf(Namespace, state.Name), AddonResource.Build(Namespace, state),
            ManifestsOptions.FieldManager, cancellationToken);
        if (!response.IsSuccess)
        {
            throw new KubeApiException($"writing Addon {Namespace}/{state.Name}: {response.Describe()}");
        }

        return state with { Uid = ObjectRef.Text(response.Body?["metadata"]?["uid"]) ?? state.Uid };
    }

    public async Task DeleteAsync(string name, CancellationToken cancellationToken)
    {
        var response = await api.DeleteAsync(AddonResource.PathOf(Namespace, name), cancellationToken);
        if (!response.IsSuccess && !response.IsNotFound)
        {
            throw new KubeApiException($"deleting Addon {Namespace}/{name}: {response.Describe()}");
        }
    }

    /// <summary>A core/v1 Event about <paramref name="addon"/> (best effort: a failure is logged at debug level).</summary>
    public async Task EventAsync(AddonState addon, string type, string reason, string message, CancellationToken cancellationToken)
    {
        var now = AddonResource.Timestamp(time.GetUtcNow());
        var involved = new JsonObject
        {
            ["apiVersion"] = AddonResource.ApiVersion,
            ["kind"] = AddonResource.Kind,
            ["namespace"] = Namespace,
            ["name"] = addon.Name,
        };
        if (addon.Uid is not null)
        {
            involved["uid"] = addon.Uid;
        }

        var body = new JsonObject
        {
            ["apiVersion"] = "v1",
            ["kind"] = "Event",
            ["metadata"] = new JsonObject
            {
                ["generateName"] = (addon.Name.Length > 200 ? addon.Name[..200] : addon.Name) + ".",
                ["namespace"] = Namespace,
            },
            ["involvedObject"] = involved,
            ["type"] = type,
            ["reason"] = reason,
            ["message"] = message.Length > 1024 ? message[..1021] + "..." : message,
            ["source"] = new JsonObject { ["component"] = ManifestsOptions.Component, ["host"] = options.Identity },
            ["firstTimestamp"] = now,
            ["lastTimestamp"] = now,
            ["count"] = 1,
        };
        try
        {
            var response = await api.CreateAsync($"/api/v1/namespaces/{Uri.EscapeDataString(Namespace)}/events", body, cancellationToken);
            if (!response.IsSuccess)
            {
                log.ManifestsEventFailed(reason, addon.Name, response.Describe());
            }
        }
        catch (KubeApiUnavailableException ex)
        {
            log.ManifestsEventFailed(reason, addon.Name, ex.Message);
        }
    }
}
