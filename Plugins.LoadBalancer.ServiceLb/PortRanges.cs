using System.Globalization;

namespace Coracle.Plugins.LoadBalancer.ServiceLb;

/// <summary>
/// The ports a LoadBalancer Service may take on the nodes (<c>[plugins.servicelb] ports</c>): comma-separated ports and
/// ranges, for example <c>80,443,8000-8999</c>. A Service port outside them is refused with a Warning Event
/// (<see cref="Planner.PortNotAllowed"/>) and the Service is not served; the other Services are.
/// </summary>
internal sealed record PortRanges(IReadOnlyList<(int First, int Last)> Ranges)
{
    /// <summary>The setting's key and its default: every port.</summary>
    public const string Key = "ports";

    public const string Default = "1-65535";

    public static PortRanges All { get; } = Parse(Default);

    public bool Contains(int port) => Ranges.Any(r => port >= r.First && port <= r.Last);

    /// <summary>As the operator writes it.</summary>
    public override string ToString() =>
        string.Join(",", Ranges.Select(r => r.First == r.Last ? r.First.ToString(CultureInfo.InvariantCulture) : $"{r.First}-{r.Last}"));

    /// <summary>Reads the setting; a bad value throws <see cref="PluginConfigException"/> naming the part and the fix.</summary>
    public static PortRanges Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ranges = new List<(int, int)>();
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries))
        {
            var dash = part.IndexOf('-', StringComparison.Ordinal);
            var (first, last) = dash < 0 ? (part, part) : (part[..dash].Trim(), part[(dash + 1)..].Trim());
            if (!TryPort(first, out var a) || !TryPort(last, out var b) || a > b)
            {
                throw new PluginConfigException(Key, $"'{part}' is not a port or a range of ports from 1 to 65535; write for example ports = \"80,443,8000-8999\"");
            }

            ranges.Add((a, b));
        }

        return new PortRanges(ranges);
    }

    private static bool TryPort(string text, out int port) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out port) && port is >= 1 and <= 65535;
}
