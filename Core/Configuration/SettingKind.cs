namespace Coracle.Core.Configuration;

/// <summary>The value types a setting can have; each parses from TOML, environment and flags the same way.</summary>
internal enum SettingKind
{
    String,
    StringList,

    /// <summary>A list where each flag occurrence, environment value or TOML array item is one item, commas kept (K3s's <c>--kubelet-arg</c>).</summary>
    ArgList,
    Integer,
    Boolean,
    Duration,
    Cidr,
    IpAddress,
    IpList,
    FileMode,
}
