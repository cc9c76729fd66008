using System.Globalization;

namespace Coracle.Core.Update;

/// <summary>
/// <c>manifest.json</c> of a bundle, the content the detached CMS signature <c>manifest.json.p7s</c> covers: what the
/// payload is (version, profile, RID, the oldest version it updates from), the payload's size and SHA-256, and every
/// payload file's path (below <c>usr/lib/coracle/</c>), size, SHA-256 and mode (symlinks: their target).
/// </summary>
internal sealed record BundleManifest
{
    public int Format { get; init; } = 1;
    public string Version { get; init; } = "";
    public string Profile { get; init; } = "";
    public string Rid { get; init; } = "";
    public string MinVersion { get; init; } = "";
    public string Created { get; init; } = "";
    public string Payload { get; init; } = BundleFile.PayloadName;
    public long PayloadSize { get; init; }
    public string PayloadSha256 { get; init; } = "";
    public IReadOnlyList<BundleEntry> Files { get; init; } = [];
}

/// <summary>One payload entry: a regular file (size, SHA-256, mode as octal text) or a symlink (<see cref="Link"/>).</summary>
internal sealed record BundleEntry
{
    public string Path { get; init; } = "";
    public long Size { get; init; }
    public string? Sha256 { get; init; }
    public string Mode { get; init; } = "0644";
    public string? Link { get; init; }
}

/// <summary>Versions as MAJOR.MINOR.PATCH[-PRERELEASE]: numeric parts compared as numbers, a prerelease before its release.</summary>
internal static class Versions
{
    public static bool TryParse(string text, out (Version Core, string Pre) version)
    {
        var dash = text.IndexOf('-', StringComparison.Ordinal);
        var core = dash < 0 ? text : text[..dash];
        var pre = dash < 0 ? "" : text[(dash + 1)..];
        if (core.Count(c => c == '.') == 1)
        {
            core += ".0";
        }

        var ok = System.Version.TryParse(core, out var parsed) && parsed.Major >= 0;
        version = (parsed ?? new Version(0, 0), pre);
        return ok && text.Length > 0 && !text.Contains('+', StringComparison.Ordinal);
    }

    public static int Compare(string a, string b)
    {
        if (!TryParse(a, out var x) || !TryParse(b, out var y))
        {
            return string.CompareOrdinal(a, b);
        }

        var byCore = x.Core.CompareTo(y.Core);
        if (byCore != 0)
        {
            return byCore;
        }

        return (x.Pre.Length == 0, y.Pre.Length == 0) switch
        {
            (true, true) => 0,
            (true, false) => 1,
            (false, true) => -1,
            _ => string.CompareOrdinal(x.Pre, y.Pre),
        };
    }

    public static string Mode(UnixFileMode mode) => "0" + Convert.ToString((int)mode & 0xFFF, 8).PadLeft(3, '0');

    public static UnixFileMode ParseMode(string text) => (UnixFileMode)Convert.ToInt32(text, 8);

    public static string Hex(byte[] hash) => Convert.ToHexStringLower(hash);

    public static string Now() => DateTimeOffset.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);
}
