using System.Globalization;

namespace Coracle.Plugins.Ingress.Traefik;

/// <summary>
/// Traefik v3 as K3s ships it, the default ingress controller (<c>--disable traefik</c> turns it off): on a server it
/// renders <c>traefik.yaml</c> into the manifests folder — the <c>traefik.io</c> CRDs, RBAC, the default IngressClass
/// <c>traefik</c>, the Deployment and the LoadBalancer Service on 80/443 — with the operator's override file merged
/// over it, and the server's manifests controller applies it. An agent does nothing.
/// </summary>
[CoraclePlugin(Name, ExtensionPoints.Ingress, typeof(IIngressController), Description = "Traefik ingress controller (--disable traefik)", IsDefault = true)]
[PluginSetting("image", "Traefik image (import it as an airgap tarball where no registry is reachable); the default comes from system-default-registry when that is set", Default = DefaultImage)]
[PluginSetting("replicas", "Traefik pods to run", Type = PluginSettingType.Integer, Default = "1")]
[PluginSetting("override", "YAML file merged over Traefik's objects by kind and name (K3s's HelmChartConfig role: extra args, Service annotations, new objects); empty: none")]
public sealed class TraefikPlugin : IIngressController, IValidatesOptions
{
    /// <summary>The plugin's name, and its manifest's (<c>traefik.yaml</c>).</summary>
    public const string Name = "traefik";

    /// <summary>The image K3s ships for the 1.32 line (chart 34.2.1+up34.2.0); the Deployment passes only arguments, so the image's own entrypoint runs Traefik.</summary>
    public const string DefaultImage = "docker.io/rancher/mirrored-library-traefik:3.3.6";

    /// <summary>The most pods the <c>replicas</c> setting accepts.</summary>
    public const int MaxReplicas = 100;

    /// <inheritdoc />
    public void ValidateOptions(NodeSettings node, IReadOnlyDictionary<string, string> options, string pluginDataDir)
    {
        ArgumentNullException.ThrowIfNull(node);
        if (node.Role == "server")
        {
            // Merging finds what reading cannot: a document that names no rendered object and has no apiVersion.
            var settings = Read(node, options);
            _ = settings.Override?.Apply(TraefikManifest.Render(settings.Image, settings.Replicas));
        }
    }

    /// <inheritdoc />
    public void Configure(IPluginContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (context.Node.Role != "server")
        {
            Log.AgentSkipped(context.Logger);
            return;
        }

        var settings = Read(context.Node, context.Options);
        var yaml = TraefikManifest.Render(settings.Image, settings.Replicas);
        if (settings.Override is { } extra)
        {
            var (merged, changed, added) = extra.Apply(yaml);
            yaml = merged;
            Log.OverrideMerged(context.Logger, extra.Path, changed, added);
        }

        context.Manifests.Write(Name + ".yaml", yaml);
        Log.Written(context.Logger, Name + ".yaml", settings.Image, settings.Replicas);
    }

    /// <summary>
    /// The options, checked: the default image from the node's system default registry (another one as given), the
    /// replica count, and the override file read and parsed.
    /// </summary>
    internal static TraefikSettings Read(NodeSettings node, IReadOnlyDictionary<string, string> options)
    {
        var image = options.GetValueOrDefault("image", DefaultImage);
        if (image.Length == 0 || image.Any(char.IsWhiteSpace))
        {
            throw new PluginConfigException("image", $"'{image}' is not an image reference; give REPOSITORY:TAG, for example {DefaultImage}");
        }

        var text = options.GetValueOrDefault("replicas", "1");
        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var replicas) || replicas > MaxReplicas)
        {
            throw new PluginConfigException("replicas", $"'{text}' is not a number of pods from 0 to {MaxReplicas}; give one, for example 1 (0 keeps Traefik's objects but runs no pod)");
        }

        var path = options.GetValueOrDefault("override", "");
        return new TraefikSettings(image == DefaultImage ? node.SystemImage(image) : image, replicas, path.Length == 0 ? null : TraefikOverride.Read(path));
    }
}

/// <summary>The plugin's checked options.</summary>
/// <param name="Image">The image the Deployment runs.</param>
/// <param name="Replicas">Its pod count.</param>
/// <param name="Override">The override file, read; null when none is set.</param>
internal sealed record TraefikSettings(string Image, int Replicas, TraefikOverride? Override);
