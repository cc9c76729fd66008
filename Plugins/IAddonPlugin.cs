namespace Coracle.Plugins;

/// <summary>The ingress extension point. Zero or one is active; <c>--disable traefik</c> turns the default off.</summary>
public interface IIngressController
{
    /// <summary>Writes the controller's manifests and registers anything it runs in-process.</summary>
    void Configure(IPluginContext context);
}

/// <summary>The service load balancer extension point. Zero or one is active.</summary>
public interface IServiceLoadBalancer
{
    /// <summary>Writes the load balancer's manifests and registers its in-process controller.</summary>
    void Configure(IPluginContext context);
}
