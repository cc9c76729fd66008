namespace Coracle.Plugins.Addon.MetricsServer;

/// <summary>
/// metrics-server as K3s packages it: the resource metrics API (<c>metrics.k8s.io</c>, for <c>kubectl top</c> and the
/// HorizontalPodAutoscaler) served through kube-apiserver's aggregation layer (<c>--disable metrics-server</c> turns it off).
/// </summary>
[CoraclePlugin(Name, ExtensionPoints.Addon, typeof(IAddon), Description = "metrics-server, the metrics.k8s.io API for kubectl top and autoscaling (--disable metrics-server)")]
[PluginSetting("image", "metrics-server image (import it as an airgap tarball where no registry is reachable); the default comes from system-default-registry when that is set", Default = DefaultImage)]
[PluginSetting("kubelet-insecure-tls", "Skip verifying the kubelets' serving certificates (they are signed by the server CA, which metrics-server trusts)",
    Type = PluginSettingType.Boolean, Default = "false")]
public sealed class MetricsServerPlugin : IAddon, IValidatesOptions
{
    /// <summary>The plugin's name, and its manifest's (<c>metrics-server.yaml</c>).</summary>
    public const string Name = "metrics-server";

    /// <summary>The image K3s ships for this release line; its entrypoint is <c>/metrics-server</c>.</summary>
    public const string DefaultImage = "docker.io/rancher/mirrored-metrics-server:v0.6.4";

    /// <inheritdoc />
    public void ValidateOptions(NodeSettings node, IReadOnlyDictionary<string, string> options, string pluginDataDir) => _ = Read(node, options);

    /// <inheritdoc />
    public void Configure(IPluginContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var (image, insecureTls) = Read(context.Node, context.Options);
        context.Manifests.Write(Name + ".yaml", MetricsServerManifest.Render(image, insecureTls));
    }

    /// <summary>The options, checked; the default image from the node's system default registry, another one as given.</summary>
    internal static (string Image, bool KubeletInsecureTls) Read(NodeSettings node, IReadOnlyDictionary<string, string> options)
    {
        var image = options.GetValueOrDefault("image", DefaultImage);
        if (image.Length == 0 || image.Any(char.IsWhiteSpace))
        {
            throw new PluginConfigException("image", $"'{image}' is not an image reference; give REPOSITORY:TAG, for example {DefaultImage}");
        }

        return (image == DefaultImage ? node.SystemImage(image) : image, string.Equals(options.GetValueOrDefault("kubelet-insecure-tls", "false"), "true", StringComparison.OrdinalIgnoreCase));
    }
}
