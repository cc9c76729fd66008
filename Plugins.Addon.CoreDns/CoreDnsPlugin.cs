namespace Coracle.Plugins.Addon.CoreDns;

/// <summary>
/// CoreDNS as K3s packages it: the cluster's DNS server behind the <c>kube-dns</c> Service at <c>--cluster-dns</c>, answering
/// for <c>--cluster-domain</c> and forwarding the rest to the node's resolv.conf (<c>--disable coredns</c> turns it off).
/// </summary>
[CoraclePlugin(Name, ExtensionPoints.Addon, typeof(IAddon), Description = "CoreDNS cluster DNS, the kube-dns Service at cluster-dns (--disable coredns)")]
[PluginSetting("image", "CoreDNS image (import it as an airgap tarball where no registry is reachable); the default comes from system-default-registry when that is set", Default = DefaultImage)]
public sealed class CoreDnsPlugin : IAddon, IValidatesOptions
{
    /// <summary>The plugin's name, and its manifest's (<c>coredns.yaml</c>).</summary>
    public const string Name = "coredns";

    /// <summary>The image K3s ships for this release line; its entrypoint is <c>/coredns</c>.</summary>
    public const string DefaultImage = "docker.io/rancher/mirrored-coredns-coredns:1.10.1";

    /// <inheritdoc />
    public void ValidateOptions(NodeSettings node, IReadOnlyDictionary<string, string> options, string pluginDataDir) => ImageOf(node, options);

    /// <inheritdoc />
    public void Configure(IPluginContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        context.Manifests.Write(Name + ".yaml", CoreDnsManifest.Render(context.Node, ImageOf(context.Node, context.Options)));
    }

    /// <summary>The <c>image</c> option, checked; the default image from the node's system default registry, another one as given.</summary>
    internal static string ImageOf(NodeSettings node, IReadOnlyDictionary<string, string> options)
    {
        var image = options.GetValueOrDefault("image", DefaultImage);
        if (image.Length == 0 || image.Any(char.IsWhiteSpace))
        {
            throw new PluginConfigException("image", $"'{image}' is not an image reference; give REPOSITORY:TAG, for example {DefaultImage}");
        }

        return image == DefaultImage ? node.SystemImage(image) : image;
    }
}
