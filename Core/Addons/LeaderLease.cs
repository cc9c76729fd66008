using Coracle.Core.Kubernetes;
using System.Globalization;
using System.Text.Json.Nodes;

namespace Coracle.Core.Addons;

/// <summary>What to do with a Lease another holder may hold.</summary>
internal enum LeaseAction
{
    /// <summary>It is ours: renew it.</summary>
    Renew,

    /// <summary>Free, or its holder stopped renewing it for a whole duration: take it.</summary>
    TakeOver,

    /// <summary>Another holder renews it: stand by.</summary>
    Wait,
}

/// <summary>The outcome of one acquire-or-renew round: whether we hold the Lease, and who does.</summary>
internal sealed record LeaseResult(bool Held, string? Holder);

/// <summary>
/// Leader election on a <c>coordination.k8s.io/v1</c> Lease, as client-go's <c>leaderelection</c> does it: the holder
/// renews <c>spec.renewTime</c>; another candidate takes the Lease only when its record has not changed for a whole
/// <c>leaseDurationSeconds</c> by its own clock (so clock skew between servers does not matter). Updates carry the
/// observed <c>resourceVersion</c>, so two candidates cannot both win. Releasing clears the holder.
/// </summary>
internal sealed class LeaderLease
{
    private readonly KubeApi _api;
    private readonly string _namespace;
    private readonly string _name;
    private readonly string _identity;
    private readonly TimeSpan _duration;
    private readonly TimeProvider _time;
    private string? _observedVersion;
    private long _observedAt;

    public LeaderLease(KubeApi api, string ns, string name, string identity, TimeSpan duration, TimeProvider time)
    {
        _api = api;
        _namespace = ns;
        _name = name;
        _identity = identity;
        _duration = duration;
        _time = time;
    }

    private string CollectionPath => $"/apis/coordination.k8s.io/v1/namespaces/{Uri.EscapeDataString(_namespace)}/leases";

    private string PathOf => $"{CollectionPath}/{Uri.EscapeDataString(_name)}";

    /// <summary>The decision, from the current holder and how long its record has stayed unchanged by our clock.</summary>
    public static LeaseAction Decide(string? holder, string me, TimeSpan unchangedFor, TimeSpan duration) =>
        holder == me ? LeaseAction.Renew
        : string.IsNullOrEmpty(holder) || unchangedFor >= duration ? LeaseAction.TakeOver
        : LeaseAction.Wait;

    /// <summary>Creates, renews or takes over the Lease when it may; otherwise reports who holds it.</summary>
    public async Task<LeaseResult> TryAcquireOrRenewAsync(CancellationToken cancellationToken)
    {
        var current = await _api.GetAsync(PathOf, cancellationToken);
        var now = _time.GetUtcNow();
        if (current.IsNotFound)
        {
            // 409: another server created it first; anything else (kube-system not there yet) is a problem to retry.
            var created = await _api.CreateAsync(CollectionPath, Lease(null, now, now, 0), cancellationToken);
            return created.IsSuccess ? new LeaseResult(true, _identity)
                : created.IsConflict ? new LeaseResult(false, null)
                : throw new InvalidOperationException($"creating Lease {_namespace}/{_name}: {created.Describe()}");
        }

        if (!current.IsSuccess || current.Body is not JsonObject lease)
        {
            throw new InvalidOperationException($"reading Lease {_namespace}/{_name}: {current.Describe()}");
        }

        var version = ObjectRef.Text(lease["metadata"]?["resourceVersion"]);
        if (version != _observedVersion)
        {
            _observedVersion = version;
            _observedAt = _time.GetTimestamp();
        }

        var holder = ObjectRef.Text(lease["spec"]?["holderIdentity"]);
        var duration = lease["spec"]?["leaseDurationSeconds"] is JsonValue seconds && seconds.TryGetValue<int>(out var s) && s > 0
            ? TimeSpan.FromSeconds(s)
            : _duration;
        var action = Decide(holder, _identity, _time.GetElapsedTime(_observedAt), duration);
        if (action == LeaseAction.Wait)
        {
            return new LeaseResult(false, holder);
        }

        var transitions = lease["spec"]?["leaseTransitions"] is JsonValue t && t.TryGetValue<int>(out var n) ? n : 0;
        var acquired = action == LeaseAction.Renew && ObjectRef.Text(lease["spec"]?["acquireTime"]) is { } a
            && DateTimeOffset.TryParse(a, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var at) ? at : now;
        var updated = await _api.ReplaceAsync(PathOf, Lease(version, acquired, now, action == LeaseAction.TakeOver ? transitions + 1 : transitions), cancellationToken);
        if (updated.IsSuccess)
        {
            _observedVersion = ObjectRef.Text(updated.Body?["metadata"]?["resourceVersion"]);
            _observedAt = _time.GetTimestamp();
            return new LeaseResult(true, _identity);
        }

        // 409: someone else wrote it first.
        return updated.IsConflict
            ? new LeaseResult(false, holder)
            : throw new InvalidOperationException($"updating Lease {_namespace}/{_name}: {updated.Describe()}");
    }

    /// <summary>Clears the holder when it is us, so another server (or our own restart) takes over at once.</summary>
    public async Task ReleaseAsync(CancellationToken cancellationToken)
    {
        var current = await _api.GetAsync(PathOf, cancellationToken);
        if (!current.IsSuccess || ObjectRef.Text(current.Body?["spec"]?["holderIdentity"]) != _identity)
        {
            return;
        }

        var lease = (JsonObject)current.Body!;
        lease["spec"]!["holderIdentity"] = null;
        lease["spec"]!["leaseDurationSeconds"] = 1;
        lease["spec"]!["renewTime"] = AddonResource.MicroTimestamp(_time.GetUtcNow());
        await _api.ReplaceAsync(PathOf, lease, cancellationToken);
    }

    private JsonObject Lease(string? resourceVersion, DateTimeOffset acquired, DateTimeOffset renewed, int transitions)
    {
        var metadata = new JsonObject { ["name"] = _name, ["namespace"] = _namespace };
        if (resourceVersion is not null)
        {
            metadata["resourceVersion"] = resourceVersion;
        }

        return new JsonObject
        {
            ["apiVersion"] = "coordination.k8s.io/v1",
            ["kind"] = "Lease",
            ["metadata"] = metadata,
            ["spec"] = new JsonObject
            {
                ["holderIdentity"] = _identity,
                ["leaseDurationSeconds"] = (int)Math.Ceiling(_duration.TotalSeconds),
                ["acquireTime"] = AddonResource.MicroTimestamp(acquired),
                ["renewTime"] = AddonResource.MicroTimestamp(renewed),
                ["leaseTransitions"] = transitions,
            },
        };
    }
}
