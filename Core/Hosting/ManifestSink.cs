using Coracle.Plugins;

namespace Coracle.Core.Hosting;

/// <summary>Writes plugin manifests into <c>DATA/server/manifests</c>, atomically, like K3s's manifests folder.</summary>
internal sealed class ManifestSink : IManifestSink
{
    private readonly string _directory;

    public ManifestSink(string directory)
    {
        _directory = directory;
    }

    /// <summary>The manifests folder of a data dir, <c>DATA/server/manifests</c>: what the manifests controller applies.</summary>
    public static string FolderFor(string dataDir) => Path.Combine(dataDir, "server", "manifests");

    public void Write(string name, string yaml)
    {
        FileUtil.WriteAtomic(PathOf(name), yaml,
            UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
    }

    public void Remove(string name)
    {
        var path = PathOf(name);
        if (File.Exists(path))
        {
            File.Delete(path);
        }
    }

    private string PathOf(string name)
    {
        if (name.Length == 0 || name != Path.GetFileName(name) || !name.EndsWith(".yaml", StringComparison.Ordinal))
        {
            throw new ArgumentException($"manifest name '{name}' must be a plain file name ending in .yaml", nameof(name));
        }

        return Path.Combine(_directory, name);
    }
}
