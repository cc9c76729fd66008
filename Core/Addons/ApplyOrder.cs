namespace Coracle.Core.Addons;

/// <summary>
/// The order objects are applied in: Namespaces, then CustomResourceDefinitions, then everything else as written (so a
/// file's objects find their namespace and their kind). Deleting goes the other way.
/// </summary>
internal static class ApplyOrder
{
    public static int Rank(string apiVersion, string kind) => (apiVersion, kind) switch
    {
        ("v1", "Namespace") => 0,
        (_, "CustomResourceDefinition") when apiVersion.StartsWith("apiextensions.k8s.io/", StringComparison.Ordinal) => 1,
        _ => 2,
    };

    /// <summary>The objects in apply order; stable within a rank.</summary>
    public static IReadOnlyList<ManifestObject> Sort(IEnumerable<ManifestObject> objects) =>
        objects.OrderBy(o => Rank(o.ApiVersion, o.Kind)).ToList();

    /// <summary>The objects in delete order: everything else (last written first), then CRDs, then Namespaces.</summary>
    public static IReadOnlyList<ObjectRef> DeleteOrder(IEnumerable<ObjectRef> objects) =>
        objects.Select((o, index) => (o, index))
            .OrderByDescending(x => Rank(x.o.ApiVersion, x.o.Kind))
            .ThenByDescending(x => x.index)
            .Select(x => x.o)
            .ToList();
}
