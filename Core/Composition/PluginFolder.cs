namespace Coracle.Core.Composition;

/// <summary>A plugin folder found on disk: <c>DIR/NAME/NAME.dll</c>.</summary>
internal sealed record PluginFolder(string Directory, string AssemblyPath)
{
    public string Name => Path.GetFileName(Directory);
}
