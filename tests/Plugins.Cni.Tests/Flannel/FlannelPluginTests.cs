using Coracle.Plugins;
using Coracle.Plugins.Cni.Flannel;
using Coracle.Plugins.Cni.Tests.Support;
using Xunit;

namespace Coracle.Plugins.Cni.Tests.Flannel;

public sealed class FlannelPluginTests : IDisposable
{
    private readonly TempDir _dir = new("flplug");

    private FlannelPlugin Plugin()
    {
        Directory.CreateDirectory(_dir.Combine("net", "eth0"));
        return new FlannelPlugin(_dir.Combine("net"), ["/usr/lib/cni", "/opt/cni/bin"], _ => throw new InvalidOperationException("Configure must not run commands"));
    }

    [Fact]
    public void Configure_Vxlan_RegistersFlannelComponentWithoutTouchingTheKernel()
    {
        var context = new FakePluginContext(FakePluginContext.Settings(_dir.Path), plugin: typeof(FlannelPlugin));
        var cni = Plugin().Configure(context);

        var component = Assert.IsType<InProcessComponent>(Assert.Single(context.Supervisor.Components));
        Assert.Equal("flannel", component.Name);
        Assert.IsType<CustomProbe>(component.Readiness);
        Assert.Equal(Path.Combine(_dir.Path, "data", "agent", "etc", "cni", "net.d"), cni.ConfDir);
        Assert.Equal("subnet pending, backend vxlan, peers: none", context.Supervisor.Details["flannel"]);
        Assert.Empty(Directory.EnumerateFileSystemEntries(cni.ConfDir)); // the host made the folder; flannel writes nothing yet
    }

    [Fact]
    public void Configure_BackendNone_RegistersNothing()
    {
        var context = new FakePluginContext(FakePluginContext.Settings(_dir.Path), new Dictionary<string, string> { ["backend"] = "none" }, plugin: typeof(FlannelPlugin));
        Plugin().Configure(context);
        Assert.Empty(context.Supervisor.Components);
    }

    [Fact]
    public void Configure_MissingInterface_ThrowsPluginConfigException()
    {
        var context = new FakePluginContext(FakePluginContext.Settings(_dir.Path), new Dictionary<string, string> { ["iface"] = "wlan7" }, plugin: typeof(FlannelPlugin));
        var e = Assert.Throws<PluginConfigException>(() => Plugin().Configure(context));
        Assert.Equal("iface", e.Key);
        Assert.Equal("--flannel-iface \"wlan7\" does not exist on this host; interfaces: eth0", e.Message);
        Assert.Empty(context.Supervisor.Components);
    }

    public void Dispose() => _dir.Dispose();
}
