using System.Globalization;
using System.Text.RegularExpressions;

namespace Coracle.Core.Configuration;

/// <summary>
/// K3s's <c>--system-default-registry</c> as the host checks it: <c>HOST[:PORT][/PATH]</c>, no scheme, no spaces. Rewriting
/// image names is the SDK's (<see cref="Coracle.Plugins.NodeSettings.WithRegistry"/>), so the host and plugins agree.
/// </summary>
internal static partial class SystemRegistry
{
    /// <summary>The example every error names.</summary>
    public const string Example = "registry.local:5000";

    /// <summary>What is wrong with <paramref name="registry"/>, in one line with the fix; null when it is empty or valid.</summary>
    public static string? Problem(string registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
        if (registry.Length == 0)
        {
            return null;
        }

        if (registry.Contains("://", StringComparison.Ordinal))
        {
            return $"'{registry}' has a scheme; give the registry as HOST[:PORT][/PATH] without one, like {Example}";
        }

        if (registry.Any(c => char.IsWhiteSpace(c) || char.IsControl(c)))
        {
            return $"'{registry}' contains a space; give the registry as HOST[:PORT][/PATH], like {Example}";
        }

        var match = Shape().Match(registry);
        if (!match.Success)
        {
            return $"'{registry}' is not a registry; give HOST[:PORT][/PATH] (a lower-case path), like {Example} or {Example}/mirror";
        }

        if (match.Groups["port"].Success &&
            (!int.TryParse(match.Groups["port"].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535))
        {
            return $"'{registry}' has port {match.Groups["port"].Value}; use 1-65535, like {Example}";
        }

        return null;
    }

    // Docker's reference grammar: a DNS name or a bracketed IPv6 address, an optional port, then lower-case path components.
    [GeneratedRegex(@"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::(?<port>[0-9]+))?(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")]
    private static partial Regex Shape();
}
