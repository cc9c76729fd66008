namespace Coracle.Core.Addons;

/// <summary>
/// One manifest file found in the folder.
/// </summary>
/// <param name="RelativePath">Its path below the manifests folder, with <c>/</c> between folders: the Addon's <c>spec.source</c>.</param>
/// <param name="FullPath">Where it is.</param>
/// <param name="AddonName">The Addon that tracks it.</param>
/// <param name="Skipped">A <c>NAME.skip</c> sits beside it: Coracle does not apply it (its objects stay as they are).</param>
/// <param name="Conflict">The file that already took <see cref="AddonName"/>; this one is not applied. Null normally.</param>
internal sealed record ManifestFile(string RelativePath, string FullPath, string AddonName, bool Skipped, string? Conflict = null);

/// <summary>Lists the manifests of the folder: recursive, hidden files and folders ignored, in path order.</summary>
internal static class ManifestFolder
{
    /// <summary>
    /// Every <c>.yaml</c>, <c>.yml</c> and <c>.json</c> file below <paramref name="folder"/>, sorted by relative path. When
    /// two files map to the same Addon name (<c>a/b.yaml</c> and <c>a-b.yaml</c>), the first in that order keeps it
    /// and the other is returned with <see cref="ManifestFile.Conflict"/> set.
    /// </summary>
    public static IReadOnlyList<ManifestFile> Scan(string folder)
    {
        var options = new EnumerationOptions
        {
            RecurseSubdirectories = true,
            IgnoreInaccessible = true,
            AttributesToSkip = FileAttributes.Hidden | FileAttributes.System,
            ReturnSpecialDirectories = false,
        };
        var all = Directory.EnumerateFiles(folder, "*", options)
            .Select(path => Path.GetRelativePath(folder, path).Replace(Path.DirectorySeparatorChar, '/'))
            .Where(relative => !relative.Split('/').Any(part => part.StartsWith('.')))
            .ToHashSet(StringComparer.Ordinal);
        var taken = new Dictionary<string, string>(StringComparer.Ordinal);
        var files = new List<ManifestFile>();
        foreach (var relative in all.Where(r => AddonNames.IsManifest(Path.GetFileName(r))).Order(StringComparer.Ordinal))
        {
            var name = AddonNames.For(relative);
            var skipped = all.Contains(relative + AddonNames.SkipSuffix);
            var full = Path.Combine(folder, relative);
            if (taken.TryGetValue(name, out var first))
            {
                files.Add(new ManifestFile(relative, full, name, skipped, first));
                continue;
            }

            taken[name] = relative;
            files.Add(new ManifestFile(relative, full, name, skipped));
        }

        return files;
    }
}
