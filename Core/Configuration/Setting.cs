namespace Coracle.Core.Configuration;

/// <summary>
/// One configuration setting, Coracle's own or a plugin's. The same definition drives appliance.toml
/// (<see cref="Section"/> + <see cref="Key"/>), the environment (<see cref="EnvironmentVariable"/>) and the flag
/// (<c>--</c><see cref="Flag"/>), the way K3s's flags and config file share names.
/// </summary>
internal sealed record Setting(string Section, string Key, SettingKind Kind, object Default, string Help)
{
    /// <summary>The flag name without dashes; the TOML key for Coracle's own settings (K3s convention).</summary>
    public string Flag { get; init; } = Key;

    /// <summary>Further flag names for the same setting.</summary>
    public IReadOnlyList<string> Aliases { get; init; } = [];

    /// <summary>The dotted TOML path, e.g. <c>server.cluster-cidr</c> or <c>plugins.flannel.backend</c>.</summary>
    public string Path => Section.Length == 0 ? Key : $"{Section}.{Key}";

    /// <summary><c>CORACLE_</c> plus the flag in upper case with underscores.</summary>
    public string EnvironmentVariable => "CORACLE_" + Flag.ToUpperInvariant().Replace('-', '_');

    /// <summary>Allowed values for an enumerated string; empty when free-form.</summary>
    public IReadOnlyList<string> Choices { get; init; } = [];

    /// <summary>True when the flag exists on <c>coracle server</c> only.</summary>
    public bool ServerOnly { get; init; }

    /// <summary>True when the value must not be printed (tokens).</summary>
    public bool Secret { get; init; }

    /// <summary>The plugin that declared the setting; empty for Coracle's own.</summary>
    public string Plugin { get; init; } = "";

    /// <summary>Values that switch <see cref="Plugin"/> off (K3s's <c>--flannel-backend=none</c>).</summary>
    public IReadOnlyList<string> TurnsOff { get; init; } = [];

    /// <summary>Decided on the server; agents receive the server's value when they join.</summary>
    public bool ClusterWide { get; init; }

    /// <summary>The value as a plugin receives it in its options: plain text, lists comma-separated.</summary>
    public static string PlainText(object value) => value switch
    {
        string s => s,
        string[] list => string.Join(',', list),
        TimeSpan t => SettingParser.FormatDuration(t),
        bool b => b ? "true" : "false",
        long n => n.ToString(System.Globalization.CultureInfo.InvariantCulture),
        _ => SettingParser.Format(value).Trim('"'),
    };
}
