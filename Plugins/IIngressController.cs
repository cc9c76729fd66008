namespace Coracle.Plugins;

/// <summary>The ingress extension point. Zero or one is active; <c>--disable traefik</c> turns the default off.</summary>
public interface IIngressController
{
    /// <summary>Writes the controller's manifests and registers anything it runs in-process.</summary>
    void Configure(IPluginContext context);
}
