using Coracle.Core.Composition;
using Coracle.Core.Configuration;

namespace Coracle.Core.Hosting;

/// <summary>Discovery, loading and selection as one step, shared by <c>server</c>, <c>agent</c> and <c>plugins list</c>.</summary>
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

    public static (PluginCatalog Catalog, PluginSelection Selection) Compose(CoracleConfig config, string? architecture = null)
    {
        var catalog = Load(config);
        var selection = PluginSelector.Select(catalog.Entries, config, architecture ?? Architecture);
        return (catalog, selection);
    }
}
