using System.Reflection;

namespace Coracle.Plugins;

/// <summary>
/// Declares a folder under the data dir that a plugin needs besides its own <see cref="IPluginContext.PluginDataDir"/>,
/// usually to keep K3s's layout (containerd's state in <c>agent/containerd</c>, the airgap images in
/// <c>agent/images</c>). The host checks the declarations when the plugins load (a relative path inside the data dir,
/// no two plugins sharing one), creates each folder (mode 0700 when new) before the plugin's <c>Configure</c>, and
/// hands the absolute paths in <see cref="IPluginContext.Folders"/>. Where no context exists (option checks, cleanup),
/// <see cref="Resolve"/> gives the same paths.
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class PluginFolderAttribute : Attribute
{
    /// <summary>Declares a folder.</summary>
    /// <param name="name">The key in <see cref="IPluginContext.Folders"/>.</param>
    /// <param name="path">The path relative to the data dir, <c>/</c>-separated, e.g. <c>agent/containerd</c>.</param>
    public PluginFolderAttribute(string name, string path)
    {
        Name = name;
        Path = path;
    }

    /// <summary>The key in <see cref="IPluginContext.Folders"/>.</summary>
    public string Name { get; }

    /// <summary>The path relative to the data dir.</summary>
    public string Path { get; }

    /// <summary>The absolute path of this folder for the data dir <paramref name="dataDir"/>.</summary>
    public string Under(string dataDir) => System.IO.Path.Combine(dataDir, Path);

    /// <summary>The absolute folders <paramref name="pluginType"/> declares, for the data dir <paramref name="dataDir"/>.</summary>
    public static IReadOnlyDictionary<string, string> Resolve(Type pluginType, string dataDir)
    {
        ArgumentNullException.ThrowIfNull(pluginType);
        return pluginType.GetCustomAttributes<PluginFolderAttribute>()
            .ToDictionary(a => a.Name, a => a.Under(dataDir), StringComparer.Ordinal);
    }
}
