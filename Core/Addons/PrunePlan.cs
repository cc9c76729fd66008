namespace Coracle.Core.Addons;

/// <summary>What an Addon's change deletes: the objects it applied before and no longer declares.</summary>
internal static class PrunePlan
{
    /// <summary>
    /// The objects in <paramref name="before"/> that are neither in <paramref name="now"/> nor declared by another Addon
    /// (<paramref name="claimedElsewhere"/>: an object moved to another file stays), in delete order. Objects compare by
    /// group, kind, namespace and name: a new version of the same object is the same object.
    /// </summary>
    public static IReadOnlyList<ObjectRef> Plan(IEnumerable<ObjectRef> before, IEnumerable<ObjectRef> now, IEnumerable<ObjectRef> claimedElsewhere)
    {
        var kept = now.Concat(claimedElsewhere).Select(o => o.Key).ToHashSet(StringComparer.Ordinal);
        var gone = before.Where(o => !kept.Contains(o.Key)).DistinctBy(o => o.Key);
        return ApplyOrder.DeleteOrder(gone);
    }
}
