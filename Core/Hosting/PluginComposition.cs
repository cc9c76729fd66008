using Coracle.Core.Composition;
using Coracle.Core.Configuration;

namespace Coracle.Core.Hosting;

/// <summary>Plugin discovery and loading from the plugin roots, shared by the start-up plan, <c>plugins list</c> and <c>killall</c>.</summary>
internal static class PluginComposition
{
    /// <summary>The catalog the command line was built with, and its roots; reused when the same roots are asked for.</summary>
    private static (string Roots, PluginCatalog Catalog)? _preloaded;

    public static string Architecture =>
        System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant();

    /// <summary>The plugins of <paramref name="config"/>'s plugin roots.</summary>
    /// <exception cref="CompositionException">A folder or plugin cannot be loaded.</exception>
    public static PluginCatalog Load(CoracleConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return Load(config.PluginDirs);
    }

    /// <inheritdoc cref="Load(CoracleConfig)"/>
    public static PluginCatalog Load(IReadOnlyList<string> pluginDirs)
    {
        ArgumentNullException.ThrowIfNull(pluginDirs);
        var roots = new List<string> { PluginDiscovery.DefaultRoot };
        roots.AddRange(pluginDirs);
        var key = string.Join('\n', roots);
        return _preloaded is { } preloaded && preloaded.Roots == key
            ? preloaded.Catalog
            : PluginCatalog.Load(PluginDiscovery.Discover(roots, pluginDirs.ToList()));
    }

    /// <summary>
    /// The plugins the command line will be built with: plugin settings are flags, so the plugins must be known before
    /// the arguments are parsed. The plugin roots come from <c>--plugin-dir</c> in <paramref name="args"/>, else
    /// <c>CORACLE_PLUGIN_DIR</c>, else appliance.toml (<c>--config</c>, <c>CORACLE_CONFIG_FILE</c> or the default file).
    /// Never fails: a catalog that cannot be loaded gives no plugin settings here, and the start-up plan reports why.
    /// </summary>
    public static PluginCatalog ForCommandLine(IReadOnlyList<string> args, IReadOnlyDictionary<string, string> environment)
    {
        ArgumentNullException.ThrowIfNull(args);
        var pluginDirs = FlagValues(args, "--" + Settings.PluginDirs.Flag, null);
        var configFile = FlagValues(args, "--config", "-c").LastOrDefault();
        var flags = new Dictionary<Setting, IReadOnlyList<string>>();
        if (pluginDirs.Count > 0)
        {
            flags[Settings.PluginDirs] = pluginDirs;
        }

        var (config, _) = ConfigLoader.LoadAll("server", configFile, environment, flags);
        try
        {
            var catalog = Load(config.PluginDirs);
            _preloaded = (string.Join('\n', config.PluginDirs.Prepend(PluginDiscovery.DefaultRoot)), catalog);
            return catalog;
        }
        catch (CompositionException)
        {
            return PluginCatalog.Empty;
        }
    }

    /// <summary>The values given to a flag as <c>--flag VALUE</c> or <c>--flag=VALUE</c>, in order.</summary>
    internal static List<string> FlagValues(IReadOnlyList<string> args, string flag, string? shortFlag)
    {
        var values = new List<string>();
        for (var i = 0; i < args.Count; i++)
        {
            if (args[i] == "--")
            {
                break;
            }

            if ((args[i] == flag || args[i] == shortFlag) && i + 1 < args.Count)
            {
                values.Add(args[++i]);
            }
            else if (args[i].StartsWith(flag + "=", StringComparison.Ordinal))
            {
                values.Add(args[i][(flag.Length + 1)..]);
            }
        }

        return values;
    }
}
