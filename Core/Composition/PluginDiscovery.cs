namespace Coracle.Core.Composition;

/// <summary>
/// Finds plugin folders. Each plugin lives in its own folder <c>ROOT/NAME/</c> with <c>NAME.dll</c> inside.
/// Refuses folders other users can write to: a world-writable plugin folder lets anyone run code as root.
/// </summary>
internal static class PluginDiscovery
{
    /// <summary>The default plugin root: <c>plugins/</c> beside the executable.</summary>
    public static string DefaultRoot => Path.Combine(AppContext.BaseDirectory, "plugins");

    public static IReadOnlyList<PluginFolder> Discover(IEnumerable<string> roots, IReadOnlyCollection<string> explicitRoots)
    {
        var found = new List<PluginFolder>();
        foreach (var root in roots.Distinct())
        {
            if (!Directory.Exists(root))
            {
                if (explicitRoots.Contains(root))
                {
                    throw new CompositionException(
                        $"plugin-dir '{root}' does not exist; create it or remove it from plugin-dir", ExitCodes.InvalidConfig);
                }

                continue;
            }

            RefuseWorldWritable(root);
            foreach (var dir in Directory.EnumerateDirectories(root).Order(StringComparer.Ordinal))
            {
                RefuseWorldWritable(dir);
                var name = Path.GetFileName(dir);
                var assembly = Path.Combine(dir, name + ".dll");
                if (!File.Exists(assembly))
                {
                    throw new CompositionException(
                        $"plugin folder '{dir}' has no {name}.dll; reinstall the plugin or remove the folder", ExitCodes.PluginFailure);
                }

                RefuseWorldWritable(assembly);
                found.Add(new PluginFolder(dir, assembly));
            }
        }

        return found;
    }

    private static void RefuseWorldWritable(string path)
    {
        var mode = File.GetUnixFileMode(path);
        if ((mode & UnixFileMode.OtherWrite) != 0)
        {
            var octal = Convert.ToString((int)mode & 0xFFF, 8);
            throw new CompositionException(
                $"plugin path '{path}' is world-writable (mode {octal}); run 'chmod o-w {path}' so only root can change plugins", ExitCodes.PluginFailure);
        }
    }
}
