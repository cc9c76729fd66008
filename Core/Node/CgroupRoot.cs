namespace Coracle.Core.Node;

/// <summary>
/// The kubelet's cgroup root under the cgroupfs driver: <c>/coracle/NODE</c>, so several nodes (and nothing else)
/// share a host's hierarchy without managing each other's pods, and <c>coracle killall</c> knows what to remove.
/// The kubelet needs the folder to exist in every controller before it starts; on cgroup v1 a new cpuset folder
/// starts with empty <c>cpuset.cpus</c>/<c>cpuset.mems</c>, which are copied from the parent.
/// </summary>
internal static class CgroupRoot
{
    /// <summary>The cgroup root the kubelet is given: <c>/</c> under systemd (it names slices itself), else <c>/coracle/NODE</c>.</summary>
    public static string For(HostFacts facts, string nodeName) =>
        facts.CgroupDriver == "systemd" ? "/" : "/coracle/" + nodeName;

    /// <summary>Every folder (per mounted hierarchy) that <paramref name="cgroupRoot"/> maps to.</summary>
    public static IReadOnlyList<string> Folders(HostFacts facts, string cgroupRoot, string root = "/")
    {
        var relative = cgroupRoot.Trim('/');
        if (relative.Length == 0)
        {
            return [];
        }

        if (facts.CgroupV2Unified)
        {
            return [Path.Combine(root, "sys", "fs", "cgroup", relative)];
        }

        return facts.V1Controllers.Values.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)
            .Select(mount => Path.Combine(mount, relative)).ToList();
    }

    /// <summary>Creates the cgroup root in every hierarchy (cpuset filled from the parent on v1; controllers delegated on v2).</summary>
    public static IReadOnlyList<string> Ensure(HostFacts facts, string cgroupRoot, string root = "/")
    {
        var relative = cgroupRoot.Trim('/');
        if (relative.Length == 0)
        {
            return [];
        }

        var created = new List<string>();
        if (facts.CgroupV2Unified)
        {
            var mount = Path.Combine(root, "sys", "fs", "cgroup");
            var current = mount;
            foreach (var part in relative.Split('/'))
            {
                EnableControllers(current);
                current = Path.Combine(current, part);
                if (!Directory.Exists(current))
                {
                    Directory.CreateDirectory(current);
                    created.Add(current);
                }
            }

            EnableControllers(current);
            return created;
        }

        foreach (var mount in facts.V1Controllers.Values.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal))
        {
            var cpuset = facts.V1Controllers.TryGetValue("cpuset", out var cpusetMount) && cpusetMount == mount;
            var current = mount;
            foreach (var part in relative.Split('/'))
            {
                var parent = current;
                current = Path.Combine(current, part);
                if (!Directory.Exists(current))
                {
                    Directory.CreateDirectory(current);
                    created.Add(current);
                }

                if (cpuset)
                {
                    CopyIfEmpty(parent, current, "cpuset.cpus");
                    CopyIfEmpty(parent, current, "cpuset.mems");
                }
            }
        }

        return created;
    }

    /// <summary>Removes the cgroup root's folders, deepest first; folders still holding tasks are left and returned.</summary>
    public static IReadOnlyList<string> Remove(HostFacts facts, string cgroupRoot, string root = "/")
    {
        var left = new List<string>();
        foreach (var folder in Folders(facts, cgroupRoot, root))
        {
            if (!Directory.Exists(folder))
            {
                continue;
            }

            var all = Directory.GetDirectories(folder, "*", SearchOption.AllDirectories).OrderByDescending(d => d.Length).Append(folder);
            foreach (var dir in all)
            {
                try
                {
                    Directory.Delete(dir);
                }
                catch (IOException)
                {
                    left.Add(dir);
                }
            }

            // The shared /coracle parent goes too once no node uses it.
            var parent = Path.GetDirectoryName(folder);
            if (parent is not null && Path.GetFileName(parent) == "coracle" && Directory.Exists(parent) && Directory.GetDirectories(parent).Length == 0)
            {
                try
                {
                    Directory.Delete(parent);
                }
                catch (IOException)
                {
                    // Another node created something meanwhile.
                }
            }
        }

        return left;
    }

    private static void CopyIfEmpty(string parent, string child, string file)
    {
        var target = Path.Combine(child, file);
        var source = Path.Combine(parent, file);
        if (File.Exists(target) && File.Exists(source) && File.ReadAllText(target).Trim().Length == 0)
        {
            File.WriteAllText(target, File.ReadAllText(source).Trim());
        }
    }

    private static void EnableControllers(string folder)
    {
        var available = Path.Combine(folder, "cgroup.controllers");
        var subtree = Path.Combine(folder, "cgroup.subtree_control");
        if (!File.Exists(available) || !File.Exists(subtree))
        {
            return;
        }

        var enabled = File.ReadAllText(subtree).Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToHashSet(StringComparer.Ordinal);
        foreach (var controller in File.ReadAllText(available).Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (controller is "cpu" or "cpuset" or "memory" or "pids" or "io" or "hugetlb" && !enabled.Contains(controller))
            {
                try
                {
                    File.WriteAllText(subtree, "+" + controller);
                }
                catch (IOException)
                {
                    // Not delegable here (a process sits in this cgroup); the kubelet reports what it misses.
                }
            }
        }
    }
}
