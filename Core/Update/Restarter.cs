using System.Diagnostics;
using Coracle.Core.Status;

namespace Coracle.Core.Update;

/// <summary>
/// Restarts Coracle on the new <c>R/current</c>: <c>systemctl restart</c> of the unit that runs it when systemd manages
/// this machine, else the running node (found over its status socket) is stopped with SIGTERM and started again from
/// <c>R/current/coracle</c> with the same arguments; with no node running, the next start runs the new slot.
/// </summary>
internal static class Restarter
{
    /// <param name="layout">The installation whose <c>current</c> slot is started.</param>
    /// <param name="running">The node running now (from its status socket); null when none runs.</param>
    /// <param name="stopTimeout">How long the running node may take to stop.</param>
    /// <param name="ct">Stops the wait.</param>
    /// <param name="systemdDir">The folder whose presence means systemd manages this machine (tests point it elsewhere).</param>
    public static async Task<string> RestartAsync(InstallLayout layout, NodeStatus? running, TimeSpan stopTimeout, CancellationToken ct, string systemdDir = "/run/systemd/system")
    {
        if (Directory.Exists(systemdDir))
        {
            foreach (var unit in new[] { "coracle", "coracle-agent" })
            {
                if (await RunAsync("systemctl", ["is-active", "--quiet", unit], ct) == 0 || (running is null && File.Exists($"/etc/systemd/system/{unit}.service")))
                {
                    var code = await RunAsync("systemctl", ["restart", "--no-block", unit], ct);
                    return code == 0
                        ? $"systemctl restart {unit}"
                        : throw new UpdateException("restart", $"systemctl restart {unit} exited with {code}", $"run 'systemctl restart {unit}' by hand; the new slot is current", ExitCodes.RuntimeFailure);
                }
            }
        }

        if (running is null)
        {
            return "no node runs here: the next start runs the new slot";
        }

        // Re-exec: the same arguments, the new executable.
        var args = File.ReadAllText($"/proc/{running.Pid}/cmdline").Split('\0', StringSplitOptions.RemoveEmptyEntries).Skip(1).ToList();
        if (args.Count > 0 && args[0].EndsWith("coracle.dll", StringComparison.Ordinal))
        {
            args.RemoveAt(0);
        }

        _ = Supervision.Native.Kill(running.Pid, Supervision.Native.SigTerm);
        var deadline = DateTime.UtcNow + stopTimeout + TimeSpan.FromSeconds(30);
        while (Supervision.Native.IsAlive(running.Pid) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(200, ct);
        }

        var start = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        foreach (var arg in new[] { "-c", "exec setsid \"$@\" </dev/null >/dev/null 2>&1 &", "sh", Path.Combine(layout.Current, "coracle") }.Concat(args))
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        await process.WaitForExitAsync(ct);
        return $"stopped pid {running.Pid} and started {Path.Combine(layout.Current, "coracle")} {string.Join(' ', args)}";
    }

    private static async Task<int> RunAsync(string file, string[] args, CancellationToken ct)
    {
        try
        {
            var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var arg in args)
            {
                start.ArgumentList.Add(arg);
            }

            using var process = Process.Start(start)!;
            await process.WaitForExitAsync(ct);
            return process.ExitCode;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return 127;
        }
    }
}
