using System.Composition;
using Coracle.Plugins;

namespace Coracle.Core.Composition;

/// <summary>One exported plugin: its metadata, where it came from, and a factory that builds it on demand.</summary>
internal sealed record PluginEntry(PluginMetadata Metadata, string Folder, string Version, Type Contract, Func<object> Create)
{
    /// <summary>The settings the plugin declares (<see cref="PluginSettingAttribute"/>), in declaration order.</summary>
    public IReadOnlyList<Configuration.Setting> Settings { get; init; } = [];

    /// <summary>The folders the plugin declares (<see cref="PluginFolderAttribute"/>): name and path relative to the data dir.</summary>
    public IReadOnlyList<PluginFolderAttribute> Folders { get; init; } = [];

    public string Name => Metadata.Name;

    public string Point => Metadata.ExtensionPoint;

    public static PluginEntry From<T>(ExportFactory<T, PluginMetadata> factory, string folder, string version, Type? implementation) =>
        new(factory.Metadata, folder, version, typeof(T), () => factory.CreateExport().Value!)
        {
            Settings = implementation is null ? [] : PluginSettings.Declared(implementation, factory.Metadata),
            Folders = implementation is null ? [] : implementation.GetCustomAttributes(typeof(PluginFolderAttribute), false).Cast<PluginFolderAttribute>().ToList(),
        };
}
