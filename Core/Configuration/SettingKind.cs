namespace Coracle.Core.Configuration;

/// <summary>The value types a setting can have; each parses from TOML, environment and flags the same way.</summary>
internal enum SettingKind
{
    String,
    StringList,
    Integer,
    Boolean,
    Duration,
    Cidr,
    IpAddress,
    IpList,
    FileMode,
}
