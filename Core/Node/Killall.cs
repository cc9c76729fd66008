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
/// <c>coracle killall</c>, K3s's <c>k3s-killall.sh</c> for one data dir: stops the node, kills its containers (the
/// containerd shims of this node's socket and everything below them) and any process still naming the data dir,
/// unmounts what lies below the data dir, the kubelet's pod folders and the pods' network namespaces, deletes the pod
/// veths and the KUBE-/CNI- iptables rules, runs the cleanup of every installed plugin that has one (the CNI's devices
/// and chains, selected this run or not), restores the sysctls the node changed and removes the kubelet's cgroup root.
/// Run it in the node's network namespace. Safe to run twice.
/// </summary>
internal static partial class Killall
{
    public static async Task<int> RunAsync(CoracleConfig config, Action<string> say, CancellationToken cancellationToken)
    {
        var dataDir = Path.GetFullPath(config.DataDir);
        var state = NodeState.Load(config.RunDir);

        // 1. the node itself: an ordered stop first (containers keep running, as with K3s), then a kill.
        if (await StatusClient.ReadAsync(config.StatusSocket, cancellationToken) is { } running && running.Pid != Environment.ProcessId)
        {
            say($"stopping coracle (pid {running.Pid})");
            Native.Kill(running.Pid, Native.SigTerm);
            if (!await WaitGoneAsync([running.Pid], TimeSpan.FromSeconds(60), cancellationToken))
            {
                Native.Kill(running.Pid, Native.SigKill);
                await WaitGoneAsync([running.Pid], TimeSpan.FromSeconds(10), cancellationToken);
            }
        }

        // 2. containers: this node's shims (their -address is this node's socket) and everything below them.
        var socket = state?.CriSocket ?? Path.Combine(config.RunDir, "containerd", "containerd.sock");
        var processes = ProcessTable.Read();
        var shims = processes.Values.Where(p => p.CommandLine.Contains("containerd-shim", StringComparison.Ordinal)
            && ArgumentAfter(p.Arguments, "-address") == socket).Select(p => p.Pid).ToList();
        var podNetns = new HashSet<string>(StringComparer.Ordinal);
        var containerPids = shims.SelectMany(s => ProcessTable.Descendants(processes, s)).Distinct().ToList();
        foreach (var pid in containerPids)
        {
            if (NetnsOf(pid) is { } ns)
            {
                podNetns.Add(ns);
            }
        }

        var victims = containerPids.Concat(shims).ToList();
        if (victims.Count > 0)
        {
            say($"killing {shims.Count} containerd shims and {containerPids.Count} container processes");
        }

        // 3. components left behind (and anything else naming the data dir), never this process or its ancestors.
        var spared = ProcessTable.Ancestors(processes, Environment.ProcessId).Append(Environment.ProcessId).ToHashSet();
        var named = processes.Values.Where(p => !spared.Contains(p.Pid) && !victims.Contains(p.Pid)
            && p.Arguments.Any(a => a == dataDir || a.StartsWith(dataDir + "/", StringComparison.Ordinal) || a.Contains("=" + dataDir + "/", StringComparison.Ordinal)
                || a.EndsWith("=" + dataDir, StringComparison.Ordinal)))
            .Select(p => p.Pid).ToList();
        if (named.Count > 0)
        {
            say($"killing {named.Count} processes using {dataDir}");
        }

        victims.AddRange(named);
        foreach (var pid in victims)
        {
            Native.Kill(pid, Native.SigKill);
        }

        await WaitGoneAsync(victims, TimeSpan.FromSeconds(20), cancellationToken);

        // 4. mounts: below the data dir, the kubelet's pod folders, and the pods' network namespaces.
        var kubeletPods = Path.Combine(state?.KubeletRootDir ?? "/var/lib/kubelet", "pods");
        var mounts = MountPoints()
            .Where(m => m.StartsWith(dataDir + "/", StringComparison.Ordinal) || m == dataDir
                || m.StartsWith(kubeletPods + "/", StringComparison.Ordinal)
                || (m.StartsWith("/run/netns/cni-", StringComparison.Ordinal) && podNetns.Contains(Inode(m)))
                || (m.StartsWith("/var/run/netns/cni-", StringComparison.Ordinal) && podNetns.Contains(Inode(m))))
            .Distinct(StringComparer.Ordinal)
            .OrderByDescending(m => m.Length)
            .ToList();
        foreach (var mount in mounts)
        {
            if (Umount2(mount, MntDetach) != 0)
            {
                say($"could not unmount {mount} (errno {Marshal.GetLastPInvokeError()})");
            }
            else if (mount.Contains("/netns/cni-", StringComparison.Ordinal))
            {
                File.Delete(mount);
            }
        }

        if (mounts.Count > 0)
        {
            say($"unmounted {mounts.Count} mounts");
        }

        // 5. network state of this namespace.
        var links = await RemoveLinksAsync(cancellationToken);
        if (links.Count > 0)
        {
            say($"deleted links: {string.Join(", ", links)}");
        }

        foreach (var (tool, removed) in await RemoveIptablesRulesAsync(cancellationToken))
        {
            say($"removed {removed} KUBE-/CNI- rules and chains from {tool}");
        }

        // 6. every installed plugin's own cleanup (devices, chains, files it made), selected this run or not.
        await PluginCleanupAsync(config, say, cancellationToken);

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

    internal static string? ArgumentAfter(IReadOnlyList<string> args, string flag)
    {
        for (var i = 0; i < args.Count - 1; i++)
        {
            if (args[i] == flag || args[i] == "-" + flag)
            {
                return args[i + 1];
            }
        }

        return null;
    }

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

    private static string? NetnsOf(int pid)
    {
        try
        {
            // The link reads "net:[INODE]".
            var link = new FileInfo($"/proc/{pid}/ns/net").LinkTarget;
            return link is null ? null : link.Replace("net:[", "", StringComparison.Ordinal).TrimEnd(']');
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static string Inode(string path)
    {
        try
        {
            return StatInode(path, out var inode) == 0 ? inode.ToString(CultureInfo.InvariantCulture) : "";
        }
        catch (IOException)
        {
            return "";
        }
    }

    private static int StatInode(string path, out ulong inode)
    {
        // stat(1) keeps this free of struct layouts: %i is the inode.
        var result = CliWrap.Cli.Wrap("stat").WithArguments(["-L", "-c", "%i", path]).WithValidation(CommandResultValidation.None)
            .ExecuteBufferedAsync().GetAwaiter().GetResult();
        inode = 0;
        return result.ExitCode == 0 && ulong.TryParse(result.StandardOutput.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out inode) ? 0 : -1;
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

    /// <summary>Pod veths on the cni0 bridge (the bridge itself and overlay devices are the CNI plugin's cleanup).</summary>
    private static async Task<List<string>> RemoveLinksAsync(CancellationToken cancellationToken)
    {
        var deleted = new List<string>();
        var shown = await CliWrap.Cli.Wrap("ip").WithArguments(["-o", "link", "show"]).WithValidation(CommandResultValidation.None).ExecuteBufferedAsync(cancellationToken);
        foreach (var line in shown.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            // "5: vethX@if2: <...> mtu 1450 qdisc noqueue master cni0 state UP ..."
            var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length < 2)
            {
                continue;
            }

            var name = parts[1].TrimEnd(':').Split('@')[0];
            if (line.Contains(" master cni0 ", StringComparison.Ordinal))
            {
                deleted.Add(name);
            }
        }

        foreach (var name in deleted)
        {
            await CliWrap.Cli.Wrap("ip").WithArguments(["link", "delete", name]).WithValidation(CommandResultValidation.None).ExecuteBufferedAsync(cancellationToken);
        }

        return deleted;
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
    /// Runs <see cref="IPluginCleanup"/> of every installed plugin that declares one; a plugin folder that cannot be
    /// loaded, or a cleanup that fails, is reported and the rest go on.
    /// </summary>
    internal static async Task PluginCleanupAsync(CoracleConfig config, Action<string> say, CancellationToken cancellationToken)
    {
        Composition.PluginCatalog catalog;
        try
        {
            catalog = Hosting.PluginComposition.Load(config);
        }
        catch (Composition.CompositionException ex)
        {
            say($"plugins could not be loaded, so no plugin cleanup ran: {ex.Message}");
            return;
        }

        var node = config.ToNodeSettings();
        foreach (var entry in catalog.Entries.Where(e => e.Metadata.HasCleanup))
        {
            try
            {
                if (entry.Create() is Plugins.IPluginCleanup cleanup)
                {
                    var options = config.PluginOptions.TryGetValue(entry.Name, out var o) ? o : new Dictionary<string, string>();
                    await cleanup.CleanupAsync(node, options, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, cancellationToken);
                    say($"cleaned up after plugin {entry.Name}");
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                say($"cleanup of plugin {entry.Name} failed: {ex.Message}");
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
            catch (IOException)
            {
                // Gone meanwhile.
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
            return stat[(stat.LastIndexOf(')') + 2)] != 'Z';
        }
        catch (IOException)
        {
            return false;
        }
    }

    public static IEnumerable<int> Descendants(Dictionary<int, ProcessInfo> table, int pid)
    {
        var children = table.Values.Where(p => p.ParentPid == pid).Select(p => p.Pid).ToList();
        return children.Concat(children.SelectMany(c => Descendants(table, c)));
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
