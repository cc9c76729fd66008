using System.Security.Cryptography;
using System.Text;

namespace Coracle.Core.Addons;

/// <summary>
/// Which files of the manifests folder are manifests, and the Addon name each gets: the path relative to the folder
/// without its extension, sub-folders joined with <c>-</c> (K3s names an Addon after the file name), made a DNS-1123
/// subdomain (lower case; anything but letters, digits, <c>-</c> and <c>.</c> becomes <c>-</c>; at most 253 characters).
/// </summary>
internal static class AddonNames
{
    public const int MaxLength = 253;

    /// <summary>The manifest extensions (case-sensitive, as K3s).</summary>
    public static IReadOnlyList<string> Extensions { get; } = [".yaml", ".yml", ".json"];

    /// <summary>The suffix beside a manifest that stops Coracle applying it: <c>NAME.yaml.skip</c>.</summary>
    public const string SkipSuffix = ".skip";

    public static bool IsManifest(string fileName) =>
        !fileName.StartsWith('.') && Extensions.Any(e => fileName.EndsWith(e, StringComparison.Ordinal) && fileName.Length > e.Length);

    /// <summary>The Addon name for <paramref name="relativePath"/> (with <c>/</c> between folders).</summary>
    public static string For(string relativePath)
    {
        var extension = Extensions.FirstOrDefault(e => relativePath.EndsWith(e, StringComparison.Ordinal)) ?? "";
        var stem = relativePath[..^extension.Length];
        var joined = string.Join('-', stem.Split('/', StringSplitOptions.RemoveEmptyEntries));
        var mapped = new StringBuilder(joined.Length);
        foreach (var c in joined.ToLowerInvariant())
        {
            mapped.Append(char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c is '.' or '-' ? c : '-');
        }

        // Each dot-separated label starts and ends with a letter or digit; empty labels go.
        var labels = mapped.ToString().Split('.')
            .Select(label => CollapseDashes(label).Trim('-'))
            .Where(label => label.Length > 0);
        var name = string.Join('.', labels);
        if (name.Length == 0)
        {
            return "addon-" + ShortHash(relativePath);
        }

        if (name.Length > MaxLength)
        {
            name = name[..(MaxLength - 9)].TrimEnd('-', '.') + "-" + ShortHash(relativePath);
        }

        return name;
    }

    private static string CollapseDashes(string text)
    {
        var builder = new StringBuilder(text.Length);
        foreach (var c in text)
        {
            if (c != '-' || builder.Length == 0 || builder[^1] != '-')
            {
                builder.Append(c);
            }
        }

        return builder.ToString();
    }

    private static string ShortHash(string text) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..8];
}
