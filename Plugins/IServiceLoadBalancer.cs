namespace Coracle.Plugins;

/// <summary>The service load balancer extension point. Zero or one is active.</summary>
public interface IServiceLoadBalancer
{
    /// <summary>Writes the load balancer's manifests and registers its in-process controller.</summary>
    void Configure(IPluginContext context);
}
