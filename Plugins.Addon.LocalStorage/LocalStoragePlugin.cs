namespace Coracle.Plugins.Addon.LocalStorage;

/// <summary>
/// local-path-provisioner as K3s packages it: the default StorageClass <c>local-path</c>, whose volumes are folders under
/// the storage path of the node the pod runs on (<c>--disable local-storage</c> turns it off).
/// </summary>
[CoraclePlugin(Name, ExtensionPoints.Addon, typeof(IAddon), Description = "local-path-provisioner, the default StorageClass local-path (--disable local-storage)")]
[PluginSetting("image", "local-path-provisioner image (import it as an airgap tarball where no registry is reachable); the default comes from system-default-registry when that is set", Default = DefaultImage)]
[PluginSetting("helper-image", "Image of the helper pods that create and delete the volume folders; the default comes from system-default-registry when that is set", Default = DefaultHelperImage)]
[PluginSetting("default-local-storage-path", "Folder on each node that holds the local-path volumes; empty: DATA/storage", Flag = "default-local-storage-path")]
[PluginFolder("storage", "storage")]
public sealed class LocalStoragePlugin : IAddon, IValidatesOptions
{
    /// <summary>The plugin's name, and its manifest's (<c>local-storage.yaml</c>).</summary>
    public const string Name = "local-storage";

    /// <summary>The provisioner image K3s ships for this release line (<c>/usr/bin/local-path-provisioner</c>).</summary>
    public const string DefaultImage = "docker.io/rancher/local-path-provisioner:v0.0.24";

    /// <summary>The helper pods' image K3s ships (a busybox: <c>sh</c>, <c>mkdir</c>, <c>chmod</c>, <c>rm</c>).</summary>
    public const string DefaultHelperImage = "docker.io/rancher/mirrored-library-busybox:1.36.1";

    /// <inheritdoc />
    public void ValidateOptions(NodeSettings node, IReadOnlyDictionary<string, string> options, string pluginDataDir) =>
        _ = Read(node, options, storageFolder: "");

    /// <inheritdoc />
    public void Configure(IPluginContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        context.Manifests.Write(Name + ".yaml", LocalStorageManifest.Render(Read(context.Node, context.Options, context.Folders["storage"])));
    }

    /// <summary>
    /// The options, checked; <paramref name="storageFolder"/> is the storage path when none is set. The default images come from
    /// the node's system default registry, images set in the options as given.
    /// </summary>
    internal static LocalStorageOptions Read(NodeSettings node, IReadOnlyDictionary<string, string> options, string storageFolder)
    {
        var path = options.GetValueOrDefault("default-local-storage-path", "");
        if (path.Length == 0)
        {
            path = storageFolder;
        }
        else if (!Path.IsPathRooted(path) || path.Any(char.IsControl))
        {
            throw new PluginConfigException("default-local-storage-path", $"'{path}' is not an absolute path; give a folder like /var/lib/coracle/storage, or leave it empty for DATA/storage");
        }

        return new LocalStorageOptions(Image(node, options, "image", DefaultImage), Image(node, options, "helper-image", DefaultHelperImage), path);
    }

    private static string Image(NodeSettings node, IReadOnlyDictionary<string, string> options, string key, string fallback)
    {
        var image = options.GetValueOrDefault(key, fallback);
        if (image.Length == 0 || image.Any(char.IsWhiteSpace))
        {
            throw new PluginConfigException(key, $"'{image}' is not an image reference; give REPOSITORY:TAG, for example {fallback}");
        }

        return image == fallback ? node.SystemImage(image) : image;
    }
}
