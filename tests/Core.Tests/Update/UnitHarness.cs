using System.ComponentModel;
using System.Diagnostics;
using System.Text;
using Coracle.Core.Status;
using Coracle.Core.Update;

namespace Coracle.Core.Tests.Update;

/// <summary>
/// Plays systemd for the update tests: each round runs the drop-in's ExecStartPre (packaging/update/coracle-update.conf,
/// the boot guard, with /usr/lib/coracle replaced by the test's install root), then ExecStart (R/current/coracle with
/// the node's arguments), and when that exits or cannot even be executed, starts the next round, as Restart=always
/// would. A boot succeeds when the node answers on its status socket from the good slot with no trial left.
/// </summary>
internal sealed class UnitHarness(string root, string dataDir, string[] nodeArgs) : IDisposable
{
    private readonly StringBuilder _log = new();
    private Process? _node;

    public string Log
    {
        get
        {
            lock (_log)
            {
                return _log.ToString();
            }
        }
    }

    private InstallLayout Layout { get; } = new(root);

    /// <summary>The ExecStartPre of the drop-in, for this install root.</summary>
    private string[] ExecStartPre()
    {
        var line = File.ReadAllLines(Path.Combine(Images.RepoRoot, "packaging", "update", "coracle-update.conf"))
            .Single(l => l.StartsWith("ExecStartPre=", StringComparison.Ordinal))["ExecStartPre=".Length..];
        return line.Replace(InstallLayout.DefaultRoot, root, StringComparison.Ordinal).Split(' ', StringSplitOptions.RemoveEmptyEntries);
    }

    /// <summary>Boots until the node is up from a good slot (returns the rounds it took) or <paramref name="maxRounds"/> pass (throws).</summary>
    public async Task<int> BootAsync(int maxRounds)
    {
        for (var round = 1; round <= maxRounds; round++)
        {
            var pre = ExecStartPre();
            var (code, output) = await RunAsync(pre[0], pre[1..]);
            Append($"round {round}: ExecStartPre exited {code}: {output.Trim()}");
            var exe = Path.Combine(Layout.Current, "coracle");
            try
            {
                _node = Start(exe, nodeArgs);
            }
            catch (Win32Exception ex)
            {
                // systemd: status=203/EXEC, and Restart=always starts the unit again.
                Append($"round {round}: ExecStart {exe} failed: {ex.Message}");
                continue;
            }

            var hangGuard = DateTime.UtcNow + TimeSpan.FromMinutes(2);
            while (true)
            {
                if (_node.HasExited)
                {
                    Append($"round {round}: ExecStart exited {_node.ExitCode}");
                    _node.Dispose();
                    _node = null;
                    break;
                }

                var state = UpdateState.Read(Layout.StateFile);
                if ((state is null || (state.Trial.Length == 0 && state.Good == Layout.ActiveSlot()))
                    && await StatusClient.ReadAsync(Path.Combine(dataDir, "run", "coracle.sock"), CancellationToken.None) is not null)
                {
                    Append($"round {round}: node up from good slot {Layout.ActiveSlot()}");
                    return round;
                }

                if (DateTime.UtcNow > hangGuard)
                {
                    throw new InvalidOperationException($"round {round}: the node neither exited nor came up from a good slot (hang guard)\n{Log}");
                }

                await Task.Delay(200);
            }
        }

        throw new InvalidOperationException($"no good boot in {maxRounds} rounds\n{Log}");
    }

    /// <summary>Stops the running node (SIGTERM, as systemctl stop) and waits for it.</summary>
    public async Task StopAsync()
    {
        if (_node is { HasExited: false } node)
        {
            Coracle.Core.Supervision.Native.Kill(node.Id, Coracle.Core.Supervision.Native.SigTerm);
            using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            try
            {
                await node.WaitForExitAsync(wait.Token);
            }
            catch (OperationCanceledException)
            {
                node.Kill(entireProcessTree: true);
            }
        }

        _node?.Dispose();
        _node = null;
    }

    private Process Start(string file, IEnumerable<string> args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["CORACLE_CONFIG_FILE"] = "";
        start.Environment["CORACLE_RUN_DIR"] = Path.Combine(dataDir, "..", "rundir");
        start.Environment.Remove("CORACLE_K8S_BIN");
        var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private static async Task<(int, string)> RunAsync(string file, string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, await stdout + stderr);
    }

    private void Append(string? line)
    {
        if (line is not null)
        {
            lock (_log)
            {
                _log.AppendLine(line);
            }
        }
    }

    public void Dispose()
    {
        if (_node is { HasExited: false } node)
        {
            node.Kill(entireProcessTree: true);
            node.WaitForExit();
        }

        _node?.Dispose();
    }
}
