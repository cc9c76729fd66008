using System.Text.RegularExpressions;

namespace Coracle.Core.Kubernetes;

/// <summary>A taint the kubelet registers the node with (<c>--node-taint KEY=VALUE:EFFECT</c>).</summary>
internal sealed record NodeTaint(string Key, string Value, string Effect);

/// <summary>
/// What a node registers with besides its name and addresses: K3s's <c>--node-label</c> (the kubelet's
/// <c>--node-labels</c>) and <c>--node-taint</c> (the kubelet configuration's <c>registerWithTaints</c>), in the formats
/// K3s accepts.
/// </summary>
internal static partial class NodeRegistration
{
    /// <summary>The taint effects Kubernetes knows.</summary>
    public static IReadOnlyList<string> Effects { get; } = ["NoSchedule", "PreferNoSchedule", "NoExecute"];

    /// <summary><c>KEY=VALUE</c> as a label (key with an optional DNS prefix, both parts Kubernetes-valid), or null.</summary>
    public static (string Key, string Value)? ParseLabel(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var eq = text.IndexOf('=', StringComparison.Ordinal);
        if (eq <= 0)
        {
            return null;
        }

        var (key, value) = (text[..eq], text[(eq + 1)..]);
        return IsKey(key) && (value.Length == 0 || (value.Length <= 63 && NamePart().IsMatch(value))) ? (key, value) : null;
    }

    /// <summary><c>KEY=VALUE:EFFECT</c> or <c>KEY:EFFECT</c> as a taint, or null.</summary>
    public static NodeTaint? ParseTaint(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var colon = text.LastIndexOf(':');
        if (colon <= 0)
        {
            return null;
        }

        var effect = Effects.FirstOrDefault(e => e == text[(colon + 1)..]);
        var keyValue = text[..colon];
        var eq = keyValue.IndexOf('=', StringComparison.Ordinal);
        var (key, value) = eq < 0 ? (keyValue, "") : (keyValue[..eq], keyValue[(eq + 1)..]);
        return effect is not null && IsKey(key) && (value.Length == 0 || (value.Length <= 63 && NamePart().IsMatch(value)))
            ? new NodeTaint(key, value, effect)
            : null;
    }

    /// <summary>The kubelet's <c>--node-labels</c> value, or null when there are none.</summary>
    public static string? KubeletNodeLabels(IEnumerable<string> labels)
    {
        var joined = string.Join(',', labels.Select(ParseLabel).OfType<(string Key, string Value)>().Select(l => $"{l.Key}={l.Value}"));
        return joined.Length == 0 ? null : joined;
    }

    private static bool IsKey(string key)
    {
        var slash = key.IndexOf('/', StringComparison.Ordinal);
        var (prefix, name) = slash < 0 ? ("", key) : (key[..slash], key[(slash + 1)..]);
        return name.Length is > 0 and <= 63 && NamePart().IsMatch(name)
            && (slash < 0 || (prefix.Length is > 0 and <= 253 && DnsSubdomain().IsMatch(prefix)));
    }

    [GeneratedRegex("^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")]
    private static partial Regex NamePart();

    [GeneratedRegex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")]
    private static partial Regex DnsSubdomain();
}
