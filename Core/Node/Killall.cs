using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using CliWrap;
using CliWrap.Buffered;
using Coracle.Core.Configuration;
using Coracle.Core.Status;
using Coracle.Core.Supervision;

namespace Coracle.Core.Node;

/// <summary>
/// <c>coracle killall</c>, K3s's <c>k3s-killall.sh</c> for one data dir: stops the node, runs the cleanup of the
/// installed container runtime plugins (which kill this node's containers and remove their pods' network namespaces),
/// kills what the node started and left behind (its recorded pids with their descendants, and its cgroup root's
/// processes; never a process merely because its arguments name the data dir: <see cref="NodeProcesses"/>), unmounts
/// what lies below the data dir and the kubelet's pod folders,
/// deletes the KUBE-/CNI- iptables rules, runs the cleanup of every other installed plugin that has one (the CNI's
/// devices, pod veths and chains, selected this run or not), restores the sysctls the node changed and removes the
/// kubelet's cgroup root. Core knows no plugin by name: what a plugin left is its own cleanup's business
/// (<see cref="Plugins.IPluginCleanup"/>). Run it in the node's network namespace. Safe to run twice.
/// </summary>
internal static partial class Killall
{
    public static async Task<int> RunAsync(CoracleConfig config, Action<string> say, CancellationToken cancellationToken)
    {
        var dataDir = Path.GetFullPath(config.DataDir);
        var state = NodeState.Load(config.RunDir);

        // 1. the node itself: an ordered stop first (containers keep running, as with K3s), then a kill. The status socket
        // names it; a node that no longer answers is found by its pid record (same pid and start time).
        var pidDir = PidRecords.DirFor(config.RunDir);
        var host = await StatusClient.ReadAsync(config.StatusSocket, cancellationToken) is { } running
            ? running.Pid
            : PidRecords.ReadAll(pidDir).FirstOrDefault(r => r.Name == Hosting.NodeSteps.HostPidName && PidRecords.IsAlive(r))?.Pid;
        if (host is { } hostPid && hostPid != Environment.ProcessId)
        {
            say($"stopping coracle (pid {hostPid})");
            Native.Kill(hostPid, Native.SigTerm);
            if (!await WaitGoneAsync([hostPid], TimeSpan.FromSeconds(60), cancellationToken))
            {
                Native.Kill(hostPid, Native.SigKill);
                await WaitGoneAsync([hostPid], TimeSpan.FromSeconds(10), cancellationToken);
            }
        }

        // 2. containers: the container runtime's cleanup, before any mount goes (a container may hold one).
        var cleanups = LoadCleanups(config, say);
        await RunCleanupsAsync(config, cleanups.Where(e => e.Point == Plugins.ExtensionPoints.ContainerRuntime), say, cancellationToken);

        // 3. what this node started and left behind: its recorded processes (same pid and start time) with their
        // descendants, and whatever runs in its cgroup root; never a process only because its arguments name the data dir,
        // never this process or its ancestors.
        await KillNodeProcessesAsync(pidDir, state?.CgroupRoot, say, cancellationToken);

        // 4. mounts: below the data dir and the kubelet's pod folders.
        var kubeletPods = Path.Combine(state?.KubeletRootDir ?? "/var/lib/kubelet", "pods");
        var mounts = MountPoints()
            .Where(m => m.StartsWith(dataDir + "/", StringComparison.Ordinal) || m == dataDir
                || m.StartsWith(kubeletPods + "/", StringComparison.Ordinal))
            .Distinct(StringComparer.Ordinal)
            .OrderByDescending(m => m.Length)
            .ToList();
        foreach (var mount in mounts)
        {
            if (Umount2(mount, MntDetach) != 0)
            {
                say($"could not unmount {mount} (errno {Marshal.GetLastPInvokeError()})");
            }
        }

        if (mounts.Count > 0)
        {
            say($"unmounted {mounts.Count} mounts");
        }

        // 5. the Kubernetes rules of this network namespace.
        foreach (var (tool, removed) in await RemoveIptablesRulesAsync(cancellationToken))
        {
            say($"removed {removed} KUBE-/CNI- rules and chains from {tool}");
        }

        // 6. every other installed plugin's own cleanup (devices, chains, files it made), selected this run or not.
        await RunCleanupsAsync(config, cleanups.Where(e => e.Point != Plugins.ExtensionPoints.ContainerRuntime), say, cancellationToken);

        // 7. sysctls and the kubelet's cgroup root.
        var restored = Sysctls.Restore(Sysctls.Load(config.RunDir));
        if (File.Exists(Sysctls.StateFile(config.RunDir)))
        {
            File.Delete(Sysctls.StateFile(config.RunDir));
        }
        if (restored.Count > 0)
        {
            say($"restored sysctls: {string.Join(", ", restored)}");
        }

        if (state is not null && state.CgroupRoot.Trim('/').Length > 0)
        {
            var facts = HostFacts.Detect("/");
            var left = CgroupRoot.Remove(facts, state.CgroupRoot);
            say(left.Count == 0 ? $"removed cgroup root {state.CgroupRoot}" : $"cgroup folders still in use: {string.Join(", ", left)}");
        }

        if (File.Exists(config.StatusSocket))
        {
            File.Delete(config.StatusSocket);
        }

        say("done");
        return ExitCodes.Ok;
    }

    /// <summary>Step 3: kills <see cref="NodeProcesses.Find"/>'s processes and removes the pid records.</summary>
    internal static async Task<IReadOnlyList<int>> KillNodeProcessesAsync(string pidDir, string? cgroupRoot, Action<string> say, CancellationToken cancellationToken)
    {
        var processes = ProcessTable.Read();
        var spared = ProcessTable.Ancestors(processes, Environment.ProcessId).Append(Environment.ProcessId).ToHashSet();
        var ours = NodeProcesses.Find(processes, PidRecords.ReadAll(pidDir), cgroupRoot, spared);
        if (ours.Count > 0)
        {
            say($"killing {ours.Count} processes this node started: {string.Join(", ", ours.Select(p => $"{p} ({Name(processes[p])})"))}");
            foreach (var pid in ours)
            {
                Native.Kill(pid, Native.SigKill);
            }

            await WaitGoneAsync(ours, TimeSpan.FromSeconds(20), cancellationToken);
        }

        // Records of processes that are gone go too; one that survived the kill stays for the next run.
        foreach (var record in PidRecords.ReadAll(pidDir).Where(r => !PidRecords.IsAlive(r)))
        {
            PidRecords.Remove(pidDir, record.Name, record.Pid);
        }

        return ours;
    }

    private static string Name(ProcessInfo process) => process.Arguments.Count > 0 ? Path.GetFileName(process.Arguments[0]) : "?";

    private static async Task<bool> WaitGoneAsync(IReadOnlyList<int> pids, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (pids.Any(ProcessTable.Exists))
        {
            if (DateTime.UtcNow > deadline)
            {
                return false;
            }

            await Task.Delay(100, cancellationToken);
        }

        return true;
    }

    /// <summary>Mount points from /proc/self/mountinfo (octal escapes decoded).</summary>
    internal static IReadOnlyList<string> MountPoints(string mountinfo = "/proc/self/mountinfo") =>
        File.ReadLines(mountinfo).Select(l => l.Split(' ')).Where(f => f.Length > 4).Select(f => Unescape(f[4])).ToList();

    private static string Unescape(string text)
    {
        if (!text.Contains('\\', StringComparison.Ordinal))
        {
            return text;
        }

        var result = new StringBuilder();
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] == '\\' && i + 3 < text.Length)
            {
                result.Append((char)Convert.ToInt32(text.Substring(i + 1, 3), 8));
                i += 3;
            }
            else
            {
                result.Append(text[i]);
            }
        }

        return result.ToString();
    }

    /// <summary>Like k3s-killall.sh: save, drop every line naming KUBE- or CNI-, restore; in each iptables variant.</summary>
    private static async Task<List<(string Tool, int Removed)>> RemoveIptablesRulesAsync(CancellationToken cancellationToken)
    {
        var results = new List<(string, int)>();
        foreach (var family in new[] { "iptables", "ip6tables" })
        {
            foreach (var variant in new[] { "-nft", "-legacy", "" })
            {
                var save = FindOnPath($"{family}{variant}-save");
                var restore = FindOnPath($"{family}{variant}-restore");
                if (save is null || restore is null)
                {
                    continue;
                }

                var saved = await CliWrap.Cli.Wrap(save).WithValidation(CommandResultValidation.None).ExecuteBufferedAsync(cancellationToken);
                if (saved.ExitCode != 0)
                {
                    continue;
                }

                var lines = saved.StandardOutput.Split('\n');
                var kept = lines.Where(l => !IsNodeRule(l)).ToList();
                var removed = lines.Length - kept.Count;
                if (removed == 0)
                {
                    continue;
                }

                var restored = await CliWrap.Cli.Wrap(restore).WithStandardInputPipe(PipeSource.FromString(string.Join('\n', kept)))
                    .WithValidation(CommandResultValidation.None).ExecuteBufferedAsync(cancellationToken);
                if (restored.ExitCode == 0)
                {
                    results.Add(($"{family}{variant}", removed));
                }
            }
        }

        return results;
    }

    internal static bool IsNodeRule(string line) =>
        line.Contains("KUBE-", StringComparison.Ordinal) || line.Contains("CNI-", StringComparison.Ordinal);

    /// <summary>
    /// The installed plugins that declare a cleanup (<see cref="Plugins.CoraclePluginAttribute.HasCleanup"/>); none when
    /// the plugin folders cannot be loaded, which is reported.
    /// </summary>
    internal static IReadOnlyList<Composition.PluginEntry> LoadCleanups(CoracleConfig config, Action<string> say)
    {
        try
        {
            return Hosting.PluginComposition.Load(config).Entries.Where(e => e.Metadata.HasCleanup).ToList();
        }
        catch (Composition.CompositionException ex)
        {
            say($"plugins could not be loaded, so no plugin cleanup ran: {ex.Message}");
            return [];
        }
    }

    /// <summary>
    /// Runs <see cref="Plugins.IPluginCleanup"/> of each plugin given, with a logger that says what it removed; a cleanup
    /// that fails is reported and the rest go on.
    /// </summary>
    internal static async Task RunCleanupsAsync(
        CoracleConfig config, IEnumerable<Composition.PluginEntry> entries, Action<string> say, CancellationToken cancellationToken)
    {
        var node = config.ToNodeSettings();
        foreach (var entry in entries)
        {
            try
            {
                if (entry.Create() is Plugins.IPluginCleanup cleanup)
                {
                    var options = config.PluginOptions.TryGetValue(entry.Name, out var o) ? o : new Dictionary<string, string>();
                    await cleanup.CleanupAsync(node, options, new SayLogger(entry.Name, say), cancellationToken);
                    say($"cleaned up after plugin {entry.Name}");
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                say($"cleanup of plugin {entry.Name} failed: {ex.Message}");
            }
        }
    }

    /// <summary>A plugin cleanup's logger: information and above, as killall lines prefixed with the plugin's name.</summary>
    private sealed class SayLogger(string plugin, Action<string> say) : Microsoft.Extensions.Logging.ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) => logLevel >= Microsoft.Extensions.Logging.LogLevel.Information;

        public void Log<TState>(
            Microsoft.Extensions.Logging.LogLevel logLevel, Microsoft.Extensions.Logging.EventId eventId, TState state, Exception? exception,
            Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel))
            {
                say(exception is null ? $"{plugin}: {formatter(state, exception)}" : $"{plugin}: {formatter(state, exception)}: {exception.Message}");
            }
        }
    }

    private static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin").Split(':')
            .Concat(["/usr/sbin", "/sbin"]).Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);

    private const int MntDetach = 2;

    [LibraryImport("libc", EntryPoint = "umount2", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Umount2(string target, int flags);
}

/// <summary>A snapshot of /proc: pid, parent, arguments.</summary>
internal sealed record ProcessInfo(int Pid, int ParentPid, IReadOnlyList<string> Arguments)
{
    public string CommandLine => string.Join(' ', Arguments);
}

internal static class ProcessTable
{
    public static Dictionary<int, ProcessInfo> Read()
    {
        var table = new Dictionary<int, ProcessInfo>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
            {
                continue;
            }

            try
            {
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                var afterName = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                var parent = int.Parse(afterName[1], CultureInfo.InvariantCulture);
                var args = File.ReadAllText(Path.Combine(dir, "cmdline")).Split('\0', StringSplitOptions.RemoveEmptyEntries);
                table[pid] = new ProcessInfo(pid, parent, args);
            }
            catch (Exception ex) when (ex is IOException or FormatException or ArgumentOutOfRangeException or IndexOutOfRangeException)
            {
                // Gone meanwhile (a process that exits while it is read can leave an empty or cut stat line).
            }
            catch (UnauthorizedAccessException)
            {
                // Not ours to read.
            }
        }

        return table;
    }

    public static bool Exists(int pid)
    {
        // A zombie still has a /proc entry; count it as gone.
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var state = stat.LastIndexOf(')') + 2;
            return state < stat.Length && stat[state] != 'Z';
        }
        catch (IOException)
        {
            return false;
        }
    }

    public static IEnumerable<int> Ancestors(Dictionary<int, ProcessInfo> table, int pid)
    {
        var seen = new HashSet<int>();
        while (table.TryGetValue(pid, out var info) && info.ParentPid > 0 && seen.Add(info.ParentPid))
        {
            pid = info.ParentPid;
            yield return pid;
        }
    }
}
