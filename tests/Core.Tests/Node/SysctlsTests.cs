using Coracle.Core.Node;

namespace Coracle.Core.Tests.Node;

/// <summary>
/// Kernel settings a node changes and puts back, against a fake <c>/proc/sys</c> tree and a temp run dir (the
/// <c>procSys</c> parameter of <see cref="Sysctls.Apply"/> and <see cref="Sysctls.Restore"/>).
/// </summary>
public sealed class SysctlsTests : IDisposable
{
    private const string IpForward = "net/ipv4/ip_forward";
    private readonly TempDir _temp = new("crt-sysctl");

    public void Dispose() => _temp.Dispose();

    private string ProcSys => _temp.Combine("proc", "sys");

    private string RunDir => _temp.Combine("run");

    private string IpForwardFile => Path.Combine(ProcSys, IpForward);

    private void SetIpForward(string value) => _temp.Write(Path.Combine("proc", "sys", IpForward), value);

    private string IpForwardValue => File.ReadAllText(IpForwardFile).Trim();

    private static Dictionary<string, string> Nothing() => new(StringComparer.Ordinal);

    [Fact]
    public void Wanted_IpForward_IsOne()
    {
        Assert.Equal("1", Sysctls.Wanted[IpForward]);
    }

    [Fact]
    public void Apply_ValueDiffers_WritesTheWantedValueAndReturnsTheOriginal()
    {
        SetIpForward("0\n");

        var originals = Sysctls.Apply(Nothing(), ProcSys);

        Assert.Equal("1", IpForwardValue);
        Assert.Equal(new Dictionary<string, string> { [IpForward] = "0" }, originals);
    }

    [Fact]
    public void Apply_ValueAlreadyWanted_LeavesTheFileAndRecordsIt()
    {
        SetIpForward("1\n");

        var originals = Sysctls.Apply(Nothing(), ProcSys);

        Assert.Equal("1\n", File.ReadAllText(IpForwardFile));
        Assert.Equal("1", originals[IpForward]);
    }

    [Fact]
    public void Apply_SecondStartWithRecordedOriginal_KeepsTheFirstValue()
    {
        SetIpForward("0\n");
        Sysctls.Save(RunDir, Sysctls.Apply(Sysctls.Load(RunDir), ProcSys));

        // The node crashed without restoring: the kernel now holds our own value.
        var second = Sysctls.Apply(Sysctls.Load(RunDir), ProcSys);

        Assert.Equal("0", second[IpForward]);
        Assert.Equal("1", IpForwardValue);
    }

    [Fact]
    public void Apply_RecordedKeysNotWantedAnyMore_AreKeptForRestore()
    {
        SetIpForward("0\n");
        var recorded = new Dictionary<string, string> { ["net/ipv6/conf/all/forwarding"] = "0" };

        var originals = Sysctls.Apply(recorded, ProcSys);

        Assert.Equal("0", originals["net/ipv6/conf/all/forwarding"]);
        Assert.Equal("0", originals[IpForward]);
    }

    [Fact]
    public void Apply_SettingMissingFromProcSys_IsSkippedAndNotCreated()
    {
        Directory.CreateDirectory(ProcSys);

        var originals = Sysctls.Apply(Nothing(), ProcSys);

        Assert.Empty(originals);
        Assert.False(File.Exists(IpForwardFile));
    }

    [Fact]
    public void Restore_ValueChanged_WritesTheOriginalBackAndReportsIt()
    {
        SetIpForward("0\n");
        var originals = Sysctls.Apply(Nothing(), ProcSys);

        var restored = Sysctls.Restore(originals, ProcSys);

        Assert.Equal(["net.ipv4.ip_forward=0"], restored);
        Assert.Equal("0", IpForwardValue);
    }

    [Fact]
    public void Restore_ValueAlreadyOriginal_WritesNothingAndReportsNothing()
    {
        SetIpForward("1\n");

        var restored = Sysctls.Restore(new Dictionary<string, string> { [IpForward] = "1" }, ProcSys);

        Assert.Empty(restored);
        Assert.Equal("1\n", File.ReadAllText(IpForwardFile));
    }

    [Fact]
    public void Restore_SettingMissingFromProcSys_IsSkippedAndNotCreated()
    {
        Directory.CreateDirectory(ProcSys);

        var restored = Sysctls.Restore(new Dictionary<string, string> { [IpForward] = "0" }, ProcSys);

        Assert.Empty(restored);
        Assert.False(File.Exists(IpForwardFile));
    }

    [Fact]
    public void Restore_AfterACrashAndASecondStart_PutsBackTheValueFromBeforeTheFirstStart()
    {
        SetIpForward("0\n");
        Sysctls.Save(RunDir, Sysctls.Apply(Sysctls.Load(RunDir), ProcSys));
        Sysctls.Save(RunDir, Sysctls.Apply(Sysctls.Load(RunDir), ProcSys));

        var restored = Sysctls.Restore(Sysctls.Load(RunDir), ProcSys);

        Assert.Equal(["net.ipv4.ip_forward=0"], restored);
        Assert.Equal("0", IpForwardValue);
    }

    [Fact]
    public void Load_NoStateFile_ReturnsEmpty()
    {
        Assert.Empty(Sysctls.Load(RunDir));
        Assert.Empty(Sysctls.Load(_temp.Combine("does", "not", "exist")));
    }

    [Fact]
    public void Load_CorruptStateFile_ReturnsEmpty()
    {
        _temp.Write(Path.Combine("run", "sysctl-originals.json"), "{ not json");

        Assert.Empty(Sysctls.Load(RunDir));
    }

    [Fact]
    public void Save_ThenLoad_RoundTripsInAPrivateFile()
    {
        var originals = new Dictionary<string, string> { [IpForward] = "0", ["net/ipv6/conf/all/forwarding"] = "1" };

        Sysctls.Save(RunDir, originals);

        Assert.Equal(Path.Combine(RunDir, "sysctl-originals.json"), Sysctls.StateFile(RunDir));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Sysctls.StateFile(RunDir)));
        Assert.Equal(originals, Sysctls.Load(RunDir));
    }
}
