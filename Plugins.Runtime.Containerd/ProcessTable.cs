using System.Globalization;

namespace Coracle.Plugins.Runtime.Containerd;

/// <summary>One process of a /proc snapshot: pid, parent and arguments.</summary>
internal sealed record ProcessInfo(int Pid, int ParentPid, IReadOnlyList<string> Arguments)
{
    public string CommandLine => string.Join(' ', Arguments);
}

/// <summary>Reads the process table from a /proc folder (a fake one in tests).</summary>
internal static class ProcessTable
{
    /// <summary>Every process <paramref name="procRoot"/> lists; ones that vanish or may not be read meanwhile are left out.</summary>
    public static Dictionary<int, ProcessInfo> Read(string procRoot)
    {
        var table = new Dictionary<int, ProcessInfo>();
        foreach (var dir in Directory.EnumerateDirectories(procRoot))
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

    /// <summary>True while the process exists and is not a zombie (a zombie is dead, only not yet reaped).</summary>
    public static bool Exists(string procRoot, int pid)
    {
        try
        {
            var stat = File.ReadAllText(Path.Combine(procRoot, pid.ToString(CultureInfo.InvariantCulture), "stat"));
            return stat[(stat.LastIndexOf(')') + 2)] != 'Z';
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>The children of <paramref name="pid"/>, their children and so on.</summary>
    public static IEnumerable<int> Descendants(IReadOnlyDictionary<int, ProcessInfo> table, int pid)
    {
        var seen = new HashSet<int> { pid };
        var frontier = new Queue<int>([pid]);
        while (frontier.TryDequeue(out var parent))
        {
            foreach (var child in table.Values.Where(p => p.ParentPid == parent && seen.Add(p.Pid)).Select(p => p.Pid).ToList())
            {
                frontier.Enqueue(child);
                yield return child;
            }
        }
    }

    /// <summary>
    /// The network namespace of <paramref name="pid"/> as <c>/proc/PID/ns/net</c> names it (<c>net:[INODE]</c>), or null
    /// when the process is gone or may not be read.
    /// </summary>
    public static string? NetworkNamespace(string procRoot, int pid)
    {
        try
        {
            return new FileInfo(Path.Combine(procRoot, pid.ToString(CultureInfo.InvariantCulture), "ns", "net")).LinkTarget;
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
}
