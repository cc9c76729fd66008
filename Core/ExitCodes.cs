namespace Coracle.Core;

/// <summary>Fixed exit codes, documented in the README. Extend the table; never reuse a number.</summary>
internal static class ExitCodes
{
    public const int Ok = 0;
    public const int RuntimeFailure = 1;
    public const int InvalidConfig = 2;
    public const int PluginFailure = 3;
}
