using Coracle.Plugins;

namespace Coracle.TestPlugins.OtherArch;

/// <summary>A load balancer built for another architecture.</summary>
[CoraclePlugin("riscv-lb", ExtensionPoints.LoadBalancer, typeof(IServiceLoadBalancer), Description = "riscv only", Architectures = new[] { "riscv64" })]
public sealed class RiscvPlugin : IServiceLoadBalancer
{
    /// <inheritdoc />
    public void Configure(IPluginContext context)
    {
    }
}
