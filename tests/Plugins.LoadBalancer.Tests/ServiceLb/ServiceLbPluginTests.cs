using Coracle.Plugins.LoadBalancer.ServiceLb;
using Xunit;

namespace Coracle.Plugins.LoadBalancer.Tests.ServiceLb;

public sealed class ServiceLbPluginTests
{
    [Fact]
    public void Configure_WithControllerKubeconfig_RegistersAClientOfKubeApiServerRestartedOnRenewal()
    {
        using var dir = new TempDir("slbcfg");
        var context = new FakePluginContext(FakePluginContext.Settings(dir.Path) with { ControllerKubeconfig = dir.Combine("controller.kubeconfig") });

        new ServiceLbPlugin().Configure(context);

        var component = Assert.IsType<InProcessComponent>(Assert.Single(context.Supervisor.Components));
        Assert.Equal("servicelb", component.Name);
        Assert.Equal([WellKnownComponents.KubeApiServer], component.StopsBefore);
        Assert.Empty(component.DependsOn);
        Assert.True(component.RestartOnCertificateRenewal);
        Assert.NotNull(component.Readiness);
    }

    [Fact]
    public void Configure_NoControllerKubeconfig_ReportedUnavailableWithTheReason()
    {
        using var dir = new TempDir("slbcfg");
        var context = new FakePluginContext(FakePluginContext.Settings(dir.Path) with { ControllerKubeconfig = "" });

        new ServiceLbPlugin().Configure(context);

        Assert.Empty(context.Supervisor.Components);
        Assert.Equal("servicelb needs the node's controller kubeconfig, and the host provides none", context.Supervisor.Unavailable["servicelb"]);
    }

    [Fact]
    public void Metadata_DefaultLoadBalancerWithCleanup()
    {
        var meta = (CoraclePluginAttribute)Attribute.GetCustomAttribute(typeof(ServiceLbPlugin), typeof(CoraclePluginAttribute))!;

        Assert.Equal("servicelb", meta.Name);
        Assert.Equal(ExtensionPoints.LoadBalancer, meta.ExtensionPoint);
        Assert.True(meta.IsDefault);
        Assert.True(meta.HasCleanup);
        Assert.True(meta.Implemented);
    }
}
