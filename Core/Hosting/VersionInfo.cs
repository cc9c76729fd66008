using System.Reflection;

namespace Coracle.Core.Hosting;

internal static class VersionInfo
{
    public static string Version { get; } =
        (typeof(VersionInfo).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0")
        .Split('+')[0];
}
