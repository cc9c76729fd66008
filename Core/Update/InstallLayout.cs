using System.Text.Json;
using System.Text.Json.Serialization;

namespace Coracle.Core.Update;

/// <summary>
/// The installed layout under the install root R (default <c>/usr/lib/coracle</c>): <c>R/slots/a</c> and
/// <c>R/slots/b</c> hold one image each, <c>R/current</c> is a relative symlink to the active one, and <c>R/update/</c>
/// (outside the slots) holds the state file, the boot guard and downloads. The data dir is never in a slot.
/// </summary>
internal sealed class InstallLayout(string root)
{
    /// <summary>The default install root, as packaging/install.sh makes it.</summary>
    public const string DefaultRoot = "/usr/lib/coracle";

    public static readonly string[] SlotNames = ["a", "b"];

    public string Root { get; } = Path.GetFullPath(root);

    public string Current => Path.Combine(Root, "current");

    public string UpdateDir => Path.Combine(Root, "update");

    public string StateFile => Path.Combine(UpdateDir, "state");

    public string DownloadDir => Path.Combine(UpdateDir, "download");

    public string SlotPath(string slot) => Path.Combine(Root, "slots", slot);

    /// <summary>The slot <c>R/current</c> points at ("a" or "b"), or null when it is not a link to a slot.</summary>
    public string? ActiveSlot()
    {
        var target = new FileInfo(Current).LinkTarget;
        if (target is null)
        {
            return null;
        }

        var name = Path.GetFileName(target.TrimEnd('/'));
        return SlotNames.Contains(name) && Path.GetFileName(Path.GetDirectoryName(target.TrimEnd('/')) ?? "") == "slots" ? name : null;
    }

    public static string Other(string slot) => slot == "a" ? "b" : "a";

    /// <summary>The image manifest of <paramref name="slot"/> (<c>image.json</c>), or null when it has none or it is unreadable.</summary>
    public ImageInfo? Image(string slot) => ImageInfo.TryRead(Path.Combine(SlotPath(slot), "image.json"));

    /// <summary>Points <c>R/current</c> at <paramref name="slot"/> in one rename.</summary>
    public void Switch(string slot) => AtomicFile.ReplaceLink(Current, Path.Combine("slots", slot));

    /// <summary>
    /// The install root this executable runs from: its real folder is <c>R/slots/X</c>. Null when it runs from
    /// anywhere else (a build output, a package without slots).
    /// </summary>
    public static (InstallLayout Layout, string Slot)? OfThisProcess()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd('/'));
        if (SlotNames.Contains(dir.Name) && dir.Parent is { Name: "slots", Parent: { } root })
        {
            return (new InstallLayout(root.FullName), dir.Name);
        }

        return null;
    }
}

/// <summary><c>usr/lib/coracle/image.json</c>: what an image is (packaging writes it).</summary>
internal sealed record ImageInfo
{
    public string Profile { get; init; } = "";
    public string Rid { get; init; } = "";
    public string Version { get; init; } = "";
    public IReadOnlyList<string> Plugins { get; init; } = [];

    public static ImageInfo? TryRead(string file)
    {
        try
        {
            return File.Exists(file) ? Parse(File.ReadAllBytes(file)) : null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or JsonException)
        {
            return null;
        }
    }

    public static ImageInfo? Parse(byte[] json) => JsonSerializer.Deserialize(json, UpdateJson.Default.ImageInfo);
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, ReadCommentHandling = JsonCommentHandling.Skip)]
[JsonSerializable(typeof(ImageInfo))]
[JsonSerializable(typeof(BundleManifest))]
internal sealed partial class UpdateJson : JsonSerializerContext;
