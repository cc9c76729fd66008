namespace Coracle.Core.Addons;

/// <summary>
/// One add-on as <c>coracle status</c> lists it: a manifest file (and its Addon), or an add-on plugin that is off.
/// </summary>
/// <param name="Name">The Addon's name (an add-on plugin's name for its <c>NAME.yaml</c>).</param>
/// <param name="Source">The file below the manifests folder; empty for a plugin that is off.</param>
/// <param name="State"><c>applied</c>, <c>progressing</c> (applied, not every pod Ready), <c>failed</c>, <c>skipped</c>, <c>disabled</c> or <c>pending</c>.</param>
/// <param name="Objects">The objects its Addon owns.</param>
/// <param name="PodsReady">Pods of its Deployments/DaemonSets/StatefulSets that are Ready; null when it has none.</param>
/// <param name="PodsWanted">Pods those workloads want.</param>
/// <param name="MissingImages">Images its pods wait for with <c>ErrImagePull</c>, <c>ImagePullBackOff</c> or an image-not-found error.</param>
/// <param name="Detail">One line: the error, why it is off, the missing image, or why a pod waits.</param>
internal sealed record AddonRow(
    string Name, string Source, string State, int Objects, int? PodsReady, int? PodsWanted, IReadOnlyList<string> MissingImages, string Detail);

/// <summary>Builds the <see cref="AddonRow"/>s from what the manifests controller knows (no API calls).</summary>
internal static class AddonRows
{
    /// <summary>The most of an error a row shows.</summary>
    public const int MaxDetail = 200;

    /// <param name="files">The manifests folder as scanned.</param>
    /// <param name="addons">Coracle's Addons by name.</param>
    /// <param name="off">Add-on plugins that are off, name → why (<c>disabled by --disable</c>).</param>
    /// <param name="health">The workloads' health by Addon name (absent: not read yet, or no workloads).</param>
    public static IReadOnlyList<AddonRow> Build(
        IReadOnlyList<ManifestFile> files,
        IReadOnlyDictionary<string, AddonState> addons,
        IReadOnlyDictionary<string, string> off,
        IReadOnlyDictionary<string, AddonHealth> health)
    {
        var rows = new Dictionary<string, AddonRow>(StringComparer.Ordinal);
        foreach (var file in files)
        {
            if (file.Conflict is not null)
            {
                // Its name is the other file's; the row is keyed by path so both show.
                rows[file.RelativePath] = new AddonRow(file.AddonName, file.RelativePath, "failed", 0, null, null, [],
                    $"{file.RelativePath}: Addon name {file.AddonName} is already {file.Conflict}'s");
                continue;
            }

            addons.TryGetValue(file.AddonName, out var addon);
            health.TryGetValue(file.AddonName, out var h);
            var objects = addon?.Objects.Count ?? 0;
            rows[file.AddonName] = file.Skipped
                ? Row(file.AddonName, file.RelativePath, "skipped", objects, h, $"{file.RelativePath}{AddonNames.SkipSuffix} is present: not applied")
                : addon is null || addon.Source != file.RelativePath
                    ? new AddonRow(file.AddonName, file.RelativePath, "pending", objects, null, null, [], "not applied yet")
                    : addon.LastError is { } error
                        ? Row(file.AddonName, file.RelativePath, "failed", objects, h, OneLine(error))
                        : Row(file.AddonName, file.RelativePath, h is not null && h.Ready < h.Wanted ? "progressing" : "applied", objects, h, "");
        }

        // An Addon whose file is gone but whose objects could not all be deleted.
        foreach (var addon in addons.Values.Where(a => !rows.ContainsKey(a.Name) && a.LastError is not null))
        {
            rows[addon.Name] = new AddonRow(addon.Name, addon.Source, "failed", addon.Objects.Count, null, null, [], OneLine(addon.LastError!));
        }

        foreach (var (name, why) in off)
        {
            addons.TryGetValue(name, out var addon);
            var detail = addon?.LastError is { } error ? $"{why}; {OneLine(error)}" : why;
            rows[name] = new AddonRow(name, "", "disabled", addon?.Objects.Count ?? 0, null, null, [], detail);
        }

        return rows.Values.OrderBy(r => r.Name, StringComparer.Ordinal).ThenBy(r => r.Source, StringComparer.Ordinal).ToList();
    }

    private static AddonRow Row(string name, string source, string state, int objects, AddonHealth? health, string detail)
    {
        var parts = new List<string>();
        if (detail.Length > 0)
        {
            parts.Add(detail);
        }

        if (health is { MissingImages.Count: > 0 })
        {
            parts.Add(ImageMissing(health.MissingImages));
        }
        else if (health?.Waiting is { } waiting && health.Ready < health.Wanted)
        {
            parts.Add($"waiting: {OneLine(waiting)}");
        }

        return new AddonRow(name, source, state, objects, health?.Ready, health?.Wanted, health?.MissingImages ?? [], string.Join("; ", parts));
    }

    /// <summary><c>image missing: IMAGE (put it in DATA/agent/images or a registry)</c>.</summary>
    public static string ImageMissing(IReadOnlyList<string> images) =>
        images.Count == 1
            ? $"image missing: {images[0]} (put it in DATA/agent/images or a registry)"
            : $"images missing: {string.Join(", ", images)} (put them in DATA/agent/images or a registry)";

    /// <summary>The first line of <paramref name="text"/>, at most <see cref="MaxDetail"/> characters.</summary>
    public static string OneLine(string text)
    {
        var line = text.Split('\n', 2)[0].TrimEnd('\r').Trim();
        return line.Length > MaxDetail ? line[..(MaxDetail - 3)] + "..." : line;
    }
}

/// <summary>
/// Where the manifests controller publishes its <see cref="AddonRow"/>s and the status socket reads them: the last list,
/// swapped whole.
/// </summary>
internal sealed class AddonBoard
{
    private volatile IReadOnlyList<AddonRow> _rows = [];

    public IReadOnlyList<AddonRow> Rows => _rows;

    public void Publish(IReadOnlyList<AddonRow> rows) => _rows = rows;
}
