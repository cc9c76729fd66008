namespace Coracle.Core.Configuration;

/// <summary>
/// One configuration setting. The same definition drives appliance.toml (<see cref="Section"/> +
/// <see cref="Key"/>), the environment (<see cref="EnvironmentVariable"/>) and the flag
/// (<c>--</c><see cref="Flag"/>), the way K3s's flags and config file share names.
/// </summary>
internal sealed record Setting(string Section, string Key, SettingKind Kind, object Default, string Help)
{
    /// <summary>The flag name without dashes; equal to the TOML key (K3s convention).</summary>
    public string Flag => Key;

    /// <summary>The dotted TOML path, e.g. <c>server.cluster-cidr</c>.</summary>
    public string Path => Section.Length == 0 ? Key : $"{Section}.{Key}";

    /// <summary><c>CORACLE_</c> plus the key in upper case with underscores.</summary>
    public string EnvironmentVariable => "CORACLE_" + Key.ToUpperInvariant().Replace('-', '_');

    /// <summary>Allowed values for an enumerated string; empty when free-form.</summary>
    public IReadOnlyList<string> Choices { get; init; } = [];

    /// <summary>True when the flag exists on <c>coracle server</c> only.</summary>
    public bool ServerOnly { get; init; }

    /// <summary>True when the value must not be printed (tokens).</summary>
    public bool Secret { get; init; }
}
