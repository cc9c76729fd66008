using Coracle.Plugins;
using Coracle.Plugins.Runtime.Containerd;
using Coracle.Plugins.Runtime.Tests.Support;
using Xunit;

namespace Coracle.Plugins.Runtime.Tests.Containerd;

public sealed class ContainerdSettingsTests
{
    private static readonly NodeSettings Node = FakePluginContext.Settings("/var/lib/x") with
    {
        DataDir = "/var/lib/coracle",
        RunDir = "/run/coracle",
    };

    [Fact]
    public void FromOptions_Defaults_K3sLikeLayout()
    {
        var s = ContainerdSettings.FromOptions(Node, new Dictionary<string, string>(), "/var/lib/coracle/plugins/containerd");

        Assert.Equal("/run/coracle/containerd/containerd.sock", s.Socket);
        Assert.Equal("/run/coracle/containerd", s.StateDir);
        Assert.Equal("/var/lib/coracle/agent/containerd", s.RootDir);
        Assert.Equal("/var/lib/coracle/agent/etc/containerd/config.toml", s.ConfigFile);
        Assert.Equal("/var/lib/coracle/agent/etc/containerd/config.toml.tmpl", s.TemplateFile);
        Assert.Equal("/var/lib/coracle/agent/etc/containerd/certs.d", s.CertsDir);
        Assert.Equal("/var/lib/coracle/agent/images", s.ImagesDir);
        Assert.Equal("auto", s.Snapshotter);
        Assert.Equal("10010", s.StreamServerPort);
    }

    [Fact]
    public void FromOptions_SocketOption_Used()
    {
        var s = ContainerdSettings.FromOptions(Node, new Dictionary<string, string> { ["socket"] = "/run/x/c.sock" }, "/p");

        Assert.Equal("/run/x/c.sock", s.Socket);
    }

    [Fact]
    public void FromOptions_UnknownSnapshotter_ErrorNamesChoices()
    {
        var e = Assert.Throws<PluginConfigException>(() =>
            ContainerdSettings.FromOptions(Node, new Dictionary<string, string> { ["snapshotter"] = "aufs" }, "/p"));

        Assert.Equal("snapshotter", e.Key);
        Assert.Equal("unknown snapshotter \"aufs\"; use one of: auto, overlayfs, native, btrfs, zfs", e.Message);
    }

    [Fact]
    public void FromOptions_UnknownOption_ErrorListsKnownOptions()
    {
        var e = Assert.Throws<PluginConfigException>(() =>
            ContainerdSettings.FromOptions(Node, new Dictionary<string, string> { ["sockett"] = "/x" }, "/p"));

        Assert.Equal("sockett", e.Key);
        Assert.Equal(
            "unknown option \"sockett\" in [plugins.containerd]; known options: snapshotter, socket, containerd-path, ctr-path, registries-file, stream-server-port",
            e.Message);
    }

    [Fact]
    public void FromOptions_RelativeSocket_Error()
    {
        var e = Assert.Throws<PluginConfigException>(() =>
            ContainerdSettings.FromOptions(Node, new Dictionary<string, string> { ["socket"] = "c.sock" }, "/p"));

        Assert.Equal("socket \"c.sock\" must be an absolute path", e.Message);
    }

    [Fact]
    public void FromOptions_BadStreamPort_Error()
    {
        var e = Assert.Throws<PluginConfigException>(() =>
            ContainerdSettings.FromOptions(Node, new Dictionary<string, string> { ["stream-server-port"] = "70000" }, "/p"));

        Assert.Equal("stream-server-port", e.Key);
        Assert.Equal("stream-server-port \"70000\" is not a port number (0-65535)", e.Message);
    }
}
