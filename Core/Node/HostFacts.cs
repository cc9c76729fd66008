namespace Coracle.Core.Node;

/// <summary>What the host offers the kubelet, read below a filesystem root so tests can hand it a fake one.</summary>
/// <param name="CgroupV2Unified">Only the cgroup v2 hierarchy is mounted (<c>/sys/fs/cgroup/cgroup.controllers</c> exists).</param>
/// <param name="SystemdIsPid1">systemd runs as PID 1.</param>
/// <param name="V1Controllers">cgroup v1 controller name → the folder it is mounted on (empty on a v2 host).</param>
/// <param name="SwapOn">Some swap is active (<c>/proc/swaps</c> lists a device).</param>
internal sealed record HostFacts(bool CgroupV2Unified, bool SystemdIsPid1, IReadOnlyDictionary<string, string> V1Controllers, bool SwapOn)
{
    /// <summary>The kubelet's and containerd's cgroup driver: systemd only on a unified v2 host run by systemd (as the containerd plugin decides).</summary>
    public string CgroupDriver => CgroupV2Unified && SystemdIsPid1 ? "systemd" : "cgroupfs";

    /// <summary>Reads the facts below <paramref name="root"/> (<c>/</c> on a real node).</summary>
    public static HostFacts Detect(string root)
    {
        var cgroup = Path.Combine(root, "sys", "fs", "cgroup");
        var v2 = File.Exists(Path.Combine(cgroup, "cgroup.controllers"));
        var comm = Path.Combine(root, "proc", "1", "comm");
        var systemd = File.Exists(comm) && File.ReadAllText(comm).Trim() == "systemd";
        var controllers = new Dictionary<string, string>(StringComparer.Ordinal);
        if (!v2)
        {
            var mounts = Path.Combine(root, "proc", "self", "mountinfo");
            if (File.Exists(mounts))
            {
                foreach (var line in File.ReadLines(mounts))
                {
                    // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS ... - FSTYPE SOURCE SUPEROPTIONS
                    var dash = line.IndexOf(" - ", StringComparison.Ordinal);
                    if (dash < 0)
                    {
                        continue;
                    }

                    var head = line[..dash].Split(' ');
                    var tail = line[(dash + 3)..].Split(' ');
                    if (head.Length < 5 || tail.Length < 3 || tail[0] != "cgroup")
                    {
                        continue;
                    }

                    var mountPoint = Path.Combine(root, head[4].TrimStart('/'));
                    foreach (var option in tail[2].Split(','))
                    {
                        if (option is "cpu" or "cpuacct" or "cpuset" or "memory" or "pids" or "hugetlb" or "devices" or "freezer"
                            or "blkio" or "net_cls" or "net_prio" or "perf_event" or "rdma" or "misc" or "name=systemd")
                        {
                            controllers.TryAdd(option, mountPoint);
                        }
                    }
                }
            }
        }

        var swaps = Path.Combine(root, "proc", "swaps");
        var swapOn = File.Exists(swaps) && File.ReadLines(swaps).Skip(1).Any(l => l.Trim().Length > 0);
        return new HostFacts(v2, systemd, controllers, swapOn);
    }
}
