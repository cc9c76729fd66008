using System.Globalization;
using Coracle.Core.Supervision;

namespace Coracle.Core.Node;

/// <summary>
/// Which processes belong to a node, for <c>coracle killall</c>: the processes it recorded (<see cref="PidRecords"/>, only
/// while the pid still has the recorded start time), their descendants, and every process in the node's own cgroup root
/// (<c>/coracle/NODE</c> under the cgroupfs driver, where the kubelet puts its pods). A process is never chosen for what its
/// command line says: a stranger whose arguments name the data dir is not this node's.
/// </summary>
internal static class NodeProcesses
{
    public static IReadOnlyList<int> Find(
        IReadOnlyDictionary<int, ProcessInfo> table, IReadOnlyList<PidRecord> records, string? cgroupRoot, IReadOnlySet<int> spared,
        string procRoot = "/proc")
    {
        var ours = new HashSet<int>(records.Where(r => table.ContainsKey(r.Pid) && PidRecords.IsAlive(r, procRoot)).Select(r => r.Pid));

        var children = table.Values.ToLookup(p => p.ParentPid);
        var queue = new Queue<int>(ours);
        while (queue.TryDequeue(out var pid))
        {
            foreach (var child in children[pid])
            {
                if (ours.Add(child.Pid))
                {
                    queue.Enqueue(child.Pid);
                }
            }
        }

        var root = cgroupRoot?.Trim('/') ?? "";
        if (root.Length > 0)
        {
            ours.UnionWith(table.Keys.Where(pid => InCgroup(procRoot, pid, "/" + root)));
        }

        ours.ExceptWith(spared);
        return ours.Order().ToList();
    }

    /// <summary>True when one of the process's cgroups (any hierarchy, v1 or v2) is <paramref name="root"/> or below it.</summary>
    internal static bool InCgroup(string procRoot, int pid, string root)
    {
        try
        {
            foreach (var line in File.ReadLines(Path.Combine(procRoot, pid.ToString(CultureInfo.InvariantCulture), "cgroup")))
            {
                // hierarchy-ID:controllers:path
                var parts = line.Split(':', 3);
                if (parts.Length == 3 && (parts[2] == root || parts[2].StartsWith(root + "/", StringComparison.Ordinal)))
                {
                    return true;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Gone meanwhile.
        }

        return false;
    }
}
