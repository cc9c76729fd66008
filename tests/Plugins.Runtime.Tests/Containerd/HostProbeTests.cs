using Coracle.Plugins.Runtime.Containerd;
using Coracle.Plugins.Runtime.Tests.Support;
using Xunit;

namespace Coracle.Plugins.Runtime.Tests.Containerd;

public sealed class HostProbeTests : IDisposable
{
    private readonly TempDir _root = new("hp");

    public void Dispose() => _root.Dispose();

    [Theory]
    [InlineData("systemd", true)]
    [InlineData("cgroupfs", false)]
    public void Detect_HostsCgroupDriver_DecidesSystemdCgroup(string driver, bool systemdCgroup)
    {
        // The host decides the driver once (Core's HostFacts, tested in Node.Tests/HostTests); containerd follows it.
        _root.Write("sys/fs/cgroup/cgroup.controllers", "cpu memory pids\n");
        _root.Write("proc/1/comm", "systemd\n");

        Assert.Equal(systemdCgroup, HostProbe.Detect(_root.Path, driver).SystemdCgroup);
    }

    [Theory]
    [InlineData("000001fffeffffff", false)] // this VM: every capability but CAP_SYS_RESOURCE (bit 24)
    [InlineData("000001ffffffffff", true)]
    [InlineData("0000000001000000", true)]
    [InlineData("0000000000000000", false)]
    public void Detect_CapEff_ReadsBit24(string capEff, bool expected)
    {
        _root.Write("proc/self/status", $"Name:\tdotnet\nCapInh:\t0000000000000000\nCapPrm:\t{capEff}\nCapEff:\t{capEff}\n");

        Assert.Equal(expected, HostProbe.Detect(_root.Path, "cgroupfs").HasCapSysResource);
    }

    [Fact]
    public void Detect_NoProcStatus_NoCapability()
    {
        Assert.False(HostProbe.Detect(_root.Path, "cgroupfs").HasCapSysResource);
    }

    [Theory]
    [InlineData("nodev\tsysfs\nnodev\toverlay\n\text4\n", "overlayfs")]
    [InlineData("nodev\tsysfs\n\text4\n", "native")]
    public void ChooseSnapshotter_AutoWithoutProbeDir_FollowsProcFilesystems(string filesystems, string expected)
    {
        _root.Write("proc/filesystems", filesystems);

        Assert.Equal(expected, HostProbe.ChooseSnapshotter("auto", HostProbe.Detect(_root.Path, "cgroupfs"), probeDir: null));
    }

    [Fact]
    public void ChooseSnapshotter_Configured_WinsOverDetection()
    {
        _root.Write("proc/filesystems", "nodev\toverlay\n");

        Assert.Equal("native", HostProbe.ChooseSnapshotter("native", HostProbe.Detect(_root.Path, "cgroupfs"), probeDir: null));
    }

    [Fact]
    public void TryOverlayMount_RealKernelAsRoot_MountsAndCleansUp()
    {
        Assert.True(Environment.UserName == "root", "the overlay mount probe needs root");

        Assert.True(HostProbe.TryOverlayMount(_root.Combine("probe")));
        Assert.Empty(Directory.GetFileSystemEntries(_root.Combine("probe")));
    }
}
