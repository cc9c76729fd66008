using Coracle.Core.Supervision;
using Coracle.Core.Tests.Support;
using Coracle.Core.Update;

namespace Coracle.Core.Tests.Update;

/// <summary>The boot guard script (packaging/update/boot-guard) run by the real sh on a state file, and the health gate's rule.</summary>
public sealed class BootGuardTests : IDisposable
{
    private readonly TempDir _temp = new("crt-ota");

    public void Dispose() => _temp.Dispose();

    private InstallLayout Layout(string current)
    {
        var root = Images.Install(_temp.Combine("root"), Images.Scripted("1.0.0", "#!/bin/sh\n"));
        Directory.CreateDirectory(_temp.Combine("root", "slots", "b"));
        var layout = new InstallLayout(root);
        layout.Switch(current);
        return layout;
    }

    private static (int Code, string Stderr) Guard(InstallLayout layout)
    {
        var (code, _, stderr) = Run.Tool("sh", Path.Combine(layout.UpdateDir, "boot-guard"), layout.Root);
        return (code, stderr);
    }

    [Fact]
    public void Guard_NoStateFile_NothingChanges()
    {
        var layout = Layout("a");

        Assert.Equal(0, Guard(layout).Code);

        Assert.False(File.Exists(layout.StateFile));
        Assert.Equal("a", layout.ActiveSlot());
    }

    [Fact]
    public void Guard_TrialStarts_CountedThenRolledBackAtTheLimit()
    {
        var layout = Layout("b");
        new UpdateState { Good = "a", Trial = "b", MaxAttempts = 2, DeadlineSeconds = 9 }.Write(layout.StateFile);

        Assert.Contains("slot b on trial: start 1 of 2", Guard(layout).Stderr, StringComparison.Ordinal);
        Assert.Contains("slot b on trial: start 2 of 2", Guard(layout).Stderr, StringComparison.Ordinal);
        Assert.Equal(("b", 2, "b"), (UpdateState.Read(layout.StateFile)!.Trial, UpdateState.Read(layout.StateFile)!.Attempts, layout.ActiveSlot()));
        var (code, stderr) = Guard(layout);

        Assert.Equal(0, code);
        Assert.Contains("rolled back to slot a", stderr, StringComparison.Ordinal);
        var state = UpdateState.Read(layout.StateFile)!;
        Assert.Equal(("a", "", "a", 0, "rolled-back"), (layout.ActiveSlot(), state.Trial, state.Good, state.Attempts, state.Result));
        Assert.Equal("slot b did not become healthy in 2 trial starts (each within 9 s); rolled back to slot a", state.Reason);
        Assert.Equal("slots/a", new FileInfo(layout.Current).LinkTarget);
    }

    [Fact]
    public void Guard_TrialNotCurrent_TrialDroppedAsInterrupted()
    {
        var layout = Layout("a");
        new UpdateState { Good = "a", Trial = "b" }.Write(layout.StateFile);

        Guard(layout);

        var state = UpdateState.Read(layout.StateFile)!;
        Assert.Equal(("a", "", "interrupted"), (layout.ActiveSlot(), state.Trial, state.Result));
        Assert.Equal("apply stopped before current pointed at the new slot; slot a kept", state.Reason);
    }

    [Fact]
    public void Guard_GarbledCounters_TreatedAsDefaults()
    {
        var layout = Layout("b");
        File.WriteAllText(layout.StateFile, "good=a\ntrial=b\nattempts=x1\nmax_attempts=\nunknown=1\n");

        Guard(layout);

        var state = UpdateState.Read(layout.StateFile)!;
        Assert.Equal(("b", 1, 3), (state.Trial, state.Attempts, state.MaxAttempts));
    }

    [Fact]
    public void Why_ComponentsReadyOrUnavailable_Healthy()
    {
        static ComponentStatus C(string name, ComponentState state) => new(name, "process", state, null, 0, DateTimeOffset.UnixEpoch, "");

        Assert.Null(UpdateGate.Why([C("datastore", ComponentState.Ready), C("kubelet", ComponentState.Unavailable)]));
        Assert.Equal("no component is running yet", UpdateGate.Why([]));
        Assert.Equal("kubelet backoff, containerd starting", UpdateGate.Why(
            [C("datastore", ComponentState.Ready), C("kubelet", ComponentState.Backoff), C("containerd", ComponentState.Starting)]));
    }
}
