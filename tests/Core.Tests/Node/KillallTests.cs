using System.Diagnostics;
using Coracle.Core.Node;
using Coracle.Core.Supervision;

namespace Coracle.Core.Tests.Node;

/// <summary>
/// <c>coracle killall</c>'s process step with real processes: it kills what the node recorded (same pid and start time) with
/// their descendants, and what runs in the node's cgroup root; a stranger whose command line names the data dir, and a
/// process that merely got a recorded pid, survive.
/// </summary>
public sealed class KillallTests : IDisposable
{
    private readonly TempDir _temp = new("crt-kill");
    private readonly List<Process> _started = [];

    public void Dispose()
    {
        foreach (var process in _started)
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit(5000);
            }

            process.Dispose();
        }

        _temp.Dispose();
    }

    private string DataDir => _temp.Combine("data");

    private string PidDir => PidRecords.DirFor(Path.Combine(DataDir, "run"));

    private Process Start(string file, params string[] args)
    {
        var start = new ProcessStartInfo(file);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        var process = Process.Start(start)!;
        _started.Add(process);
        return process;
    }

    /// <summary>Waits (without a time assertion) until <paramref name="condition"/> holds; the bound only keeps a broken test from hanging.</summary>
    private static async Task UntilAsync(Func<bool> condition, string what)
    {
        for (var i = 0; i < 600 && !condition(); i++)
        {
            await Task.Delay(50);
        }

        Assert.True(condition(), what);
    }

    [Fact]
    public async Task KillNodeProcesses_RecordedAndStrangers_KillsRecordedWithDescendantsOnly()
    {
        Directory.CreateDirectory(DataDir);
        var component = Start("sleep", "1000");
        var parent = Start("sh", "-c", "sleep 1001 & wait");
        // A stranger whose command line names the data dir (argv[0] is DATA/server/stranger): the old rule killed it.
        var stranger = Start("bash", "-c", "exec -a \"$0\" sleep 1002", Path.Combine(DataDir, "server", "stranger"));
        // A process that happens to hold a recorded pid, from another boot or a reused pid: its start time differs.
        var reused = Start("sleep", "1003");
        await UntilAsync(
            () => ProcessTable.Read().Values.Any(p => p.ParentPid == parent.Id)
                && ProcessTable.Read().TryGetValue(stranger.Id, out var s) && s.Arguments[0].StartsWith(DataDir + "/", StringComparison.Ordinal),
            "the child of the recorded shell and the stranger's exec");
        var child = ProcessTable.Read().Values.Single(p => p.ParentPid == parent.Id).Pid;
        Assert.True(PidRecords.Record(PidDir, "kube-apiserver", component.Id));
        Assert.True(PidRecords.Record(PidDir, "containerd", parent.Id));
        File.WriteAllText(Path.Combine(PidDir, "kubelet.pid"), $"{reused.Id} {PidRecords.StartTime(reused.Id)! + 1}\n");

        var lines = new List<string>();
        var killed = await Killall.KillNodeProcessesAsync(PidDir, null, lines.Add, CancellationToken.None);

        var said = string.Join(" | ", lines);
        Assert.True(new[] { component.Id, parent.Id, child }.Order().SequenceEqual(killed),
            $"killed {string.Join(",", killed)}, expected {component.Id},{parent.Id},{child}; killall said: {said}");
        Assert.False(ProcessTable.Exists(component.Id), $"the recorded component survived; killall said: {said}");
        Assert.False(ProcessTable.Exists(parent.Id), $"the recorded shell survived; killall said: {said}");
        Assert.False(ProcessTable.Exists(child), $"the recorded shell's child survived; killall said: {said}");
        Assert.True(ProcessTable.Exists(stranger.Id), "the stranger naming the data dir was killed");
        Assert.True(ProcessTable.Exists(reused.Id), "the process holding a stale recorded pid was killed");
        Assert.Contains(lines, l => l.StartsWith("killing 3 processes this node started: ", StringComparison.Ordinal));
        Assert.Empty(PidRecords.ReadAll(PidDir)); // records of gone (or never ours) processes are removed
    }

    [Fact]
    public async Task KillNodeProcesses_ProcessInNodeCgroup_KilledAndOneOutsideSurvives()
    {
        Assert.True(Environment.UserName == "root", "moving a process into a cgroup needs root");
        var facts = HostFacts.Detect("/");
        var cgroupRoot = "/coracle/killall-test-" + Guid.NewGuid().ToString("N")[..8];
        CgroupRoot.Ensure(facts, cgroupRoot);
        try
        {
            var inside = Start("sleep", "1004");
            var outside = Start("bash", "-c", "exec -a \"$0\" sleep 1005", Path.Combine(DataDir, "agent", "stranger"));
            File.WriteAllText(Path.Combine(CgroupRoot.Folders(facts, cgroupRoot)[0], "cgroup.procs"), inside.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
            Assert.True(NodeProcesses.InCgroup("/proc", inside.Id, cgroupRoot));

            var killed = await Killall.KillNodeProcessesAsync(PidDir, cgroupRoot, _ => { }, CancellationToken.None);

            Assert.Equal([inside.Id], killed);
            Assert.False(ProcessTable.Exists(inside.Id));
            Assert.True(ProcessTable.Exists(outside.Id));
        }
        finally
        {
            await UntilAsync(() => CgroupRoot.Remove(facts, cgroupRoot).Count == 0, "the test cgroup removed");
        }
    }

    [Fact]
    public void PidRecords_RecordReadRemove_OnlyWhileTheSameProcessRuns()
    {
        Assert.True(PidRecords.Record(PidDir, "kubelet", Environment.ProcessId));

        var record = Assert.Single(PidRecords.ReadAll(PidDir));
        Assert.Equal(("kubelet", Environment.ProcessId), (record.Name, record.Pid));
        Assert.True(PidRecords.IsAlive(record));
        Assert.False(PidRecords.IsAlive(record with { StartTime = record.StartTime + 1 }));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(PidDir, "kubelet.pid")));

        PidRecords.Remove(PidDir, "kubelet", Environment.ProcessId + 1); // another pid: kept
        Assert.Single(PidRecords.ReadAll(PidDir));
        PidRecords.Remove(PidDir, "kubelet", Environment.ProcessId);
        Assert.Empty(PidRecords.ReadAll(PidDir));
    }
}
