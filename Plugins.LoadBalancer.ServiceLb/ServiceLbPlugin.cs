using Coracle.Plugins;

namespace Coracle.Plugins.LoadBalancer.ServiceLb;

/// <summary>
/// klipper-lb style service load balancer (--disable servicelb). Placeholder: the metadata is real (selection, conflicts, listing), the implementation is not
/// there yet, so the host reports it as not implemented and never constructs it.
/// </summary>
[CoraclePlugin("servicelb", ExtensionPoints.LoadBalancer, typeof(IServiceLoadBalancer), Description = "klipper-lb style service load balancer (--disable servicelb)", Implemented = false, IsDefault = true)]
public sealed class ServiceLbPlugin : IServiceLoadBalancer
{
    /// <inheritdoc />
    public void Configure(IPluginContext context) =>
        throw new NotSupportedException("servicelb is not implemented in this build");
}
