using System.Diagnostics;
using Coracle.Core.Status;
using Coracle.Core.Update;
using Xunit;

namespace Coracle.Core.Tests.Update;

/// <summary>
/// The restart after an update on a machine without systemd (re-exec): the running node gets SIGTERM and the new slot's
/// <c>coracle</c> starts with the same arguments. Real processes; the "node" is a <c>sleep</c> whose argv[0] is
/// <c>/old/coracle</c>, the new slot's coracle a script that writes its arguments down.
/// </summary>
public sealed class RestarterTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("coracle-restart-").FullName;

    [Fact]
    public async Task Restart_NoSystemd_RunningNodeStoppedWithSigtermAndTheNewSlotStartedWithItsArguments()
    {
        var layout = new InstallLayout(Path.Combine(_root, "lib"));
        var slot = Directory.CreateDirectory(Path.Combine(layout.Root, "slots", "b")).FullName;
        var started = Path.Combine(_root, "started");
        File.WriteAllText(Path.Combine(slot, "coracle"), $"#!/bin/sh\necho \"$@\" > {started}.tmp && mv {started}.tmp {started}\n");
        File.SetUnixFileMode(Path.Combine(slot, "coracle"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        File.CreateSymbolicLink(layout.Current, slot);

        using var node = Process.Start(new ProcessStartInfo("bash") { ArgumentList = { "-c", "exec -a /old/coracle sleep 1000" } })!;
        await Until(() => File.ReadAllText($"/proc/{node.Id}/cmdline").StartsWith("/old/coracle\0", StringComparison.Ordinal));
        var running = new NodeStatus("server", "n1", "1.0.0", node.Id, DateTimeOffset.UtcNow, [], []);

        var how = await Restarter.RestartAsync(layout, running, TimeSpan.FromSeconds(5), CancellationToken.None, systemdDir: Path.Combine(_root, "no-systemd"));

        Assert.Equal($"stopped pid {node.Id} and started {Path.Combine(layout.Current, "coracle")} 1000", how);
        Assert.True(node.WaitForExit(TimeSpan.FromSeconds(30)));
        await Until(() => File.Exists(started));
        Assert.Equal("1000", File.ReadAllText(started).Trim());
    }

    [Fact]
    public async Task Restart_NoSystemdAndNoNodeRunning_NothingStartedTheNextStartRunsTheNewSlot()
    {
        var layout = new InstallLayout(Path.Combine(_root, "lib"));
        Assert.Equal("no node runs here: the next start runs the new slot",
            await Restarter.RestartAsync(layout, null, TimeSpan.FromSeconds(5), CancellationToken.None, systemdDir: Path.Combine(_root, "no-systemd")));
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private static async Task Until(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out");
            await Task.Delay(50);
        }
    }
}
