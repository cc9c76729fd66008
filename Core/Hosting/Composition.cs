using Coracle.Core.Composition;
using Coracle.Core.Configuration;

namespace Coracle.Core.Hosting;

/// <summary>Plugin discovery and loading from the plugin roots, shared by the start-up plan, <c>plugins list</c> and <c>killall</c>.</summary>
internal static class PluginComposition
{
    public static string Architecture =>
        System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant();

    public static PluginCatalog Load(CoracleConfig config)
    {
        var roots = new List<string> { PluginDiscovery.DefaultRoot };
        roots.AddRange(config.PluginDirs);
        var folders = PluginDiscovery.Discover(roots, config.PluginDirs.ToList());
        return PluginCatalog.Load(folders);
    }
}
