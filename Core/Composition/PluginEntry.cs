using System.Composition;
using Coracle.Plugins;

namespace Coracle.Core.Composition;

/// <summary>One exported plugin: its metadata, where it came from, and a factory that builds it on demand.</summary>
internal sealed record PluginEntry(PluginMetadata Metadata, string Folder, string Version, Type Contract, Func<object> Create)
{
    public string Name => Metadata.Name;

    public string Point => Metadata.ExtensionPoint;

    public static PluginEntry From<T>(ExportFactory<T, PluginMetadata> factory, string folder, string version) =>
        new(factory.Metadata, folder, version, typeof(T), () => factory.CreateExport().Value!);
}
