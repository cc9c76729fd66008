using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Extensions.Logging;

namespace Coracle.Plugins.Runtime.Containerd;

/// <summary>
/// What containerd leaves behind when the node stops: its shims keep the containers running (as with K3s), and each
/// pod's network namespace stays mounted at <c>/run/netns/cni-*</c>. Kills this node's shims (their <c>-address</c> is
/// this node's socket) and every process below them, waits until they are gone, then unmounts and deletes the network
/// namespaces of those pods only: several nodes may share one machine (in network namespaces), and another node's
/// pods are never touched.
/// </summary>
internal sealed partial class ContainerdCleanup
{
    /// <summary>How long the killed processes get to disappear before the namespaces are unmounted anyway.</summary>
    public static readonly TimeSpan KillTimeout = TimeSpan.FromSeconds(20);

    private const int SigKill = 9;

    private readonly string _procRoot;

    /// <summary>Reads processes and mounts from <paramref name="procRoot"/> (<c>/proc</c>, or a fake one in tests).</summary>
    public ContainerdCleanup(string procRoot)
    {
        _procRoot = procRoot;
    }

    /// <summary>The shims of one socket, the processes below them and the network namespaces those processes live in.</summary>
    internal sealed record Targets(IReadOnlyList<int> Shims, IReadOnlyList<int> Containers, IReadOnlySet<string> PodNetworkNamespaces);

    /// <summary>Finds the shims whose <c>-address</c> is <paramref name="socket"/>, their descendants and their namespaces.</summary>
    public Targets Find(string socket)
    {
        var processes = ProcessTable.Read(_procRoot);
        var shims = processes.Values
            .Where(p => p.CommandLine.Contains("containerd-shim", StringComparison.Ordinal) && ArgumentAfter(p.Arguments, "-address") == socket)
            .Select(p => p.Pid).Order().ToList();
        var containers = shims.SelectMany(s => ProcessTable.Descendants(processes, s)).Distinct().Where(p => !shims.Contains(p)).ToList();
        var namespaces = containers.Select(p => ProcessTable.NetworkNamespace(_procRoot, p)).OfType<string>().ToHashSet(StringComparer.Ordinal);
        return new Targets(shims, containers, namespaces);
    }

    /// <summary>Kills the containers and shims of <paramref name="socket"/>, then removes their pods' network namespaces.</summary>
    public async Task RunAsync(string socket, ILogger logger, CancellationToken cancellationToken)
    {
        var targets = Find(socket);
        var victims = targets.Containers.Concat(targets.Shims).ToList();
        if (victims.Count > 0)
        {
            Log.KillingShims(logger, targets.Shims.Count, socket, targets.Containers.Count);
            foreach (var pid in victims)
            {
                _ = Kill(pid, SigKill);
            }

            var deadline = DateTime.UtcNow + KillTimeout;
            while (victims.Any(p => ProcessTable.Exists(_procRoot, p)) && DateTime.UtcNow < deadline)
            {
                await Task.Delay(100, cancellationToken);
            }

            var left = victims.Count(p => ProcessTable.Exists(_procRoot, p));
            if (left > 0)
            {
                Log.StillRunning(logger, left, (int)KillTimeout.TotalSeconds);
            }
        }

        if (targets.PodNetworkNamespaces.Count == 0)
        {
            return;
        }

        var removed = new List<string>();
        foreach (var mount in NetworkNamespaceMounts(File.ReadLines(Path.Combine(_procRoot, "self", "mountinfo")), targets.PodNetworkNamespaces))
        {
            if (HostProbe.Umount2(mount, HostProbe.MntDetach) != 0)
            {
                Log.UnmountFailed(logger, mount, Marshal.GetLastPInvokeError());
                continue;
            }

            try
            {
                File.Delete(mount);
                removed.Add(mount);
            }
            catch (IOException e)
            {
                Log.RemoveFailed(logger, mount, e.Message);
            }
        }

        if (removed.Count > 0)
        {
            Log.NamespacesRemoved(logger, removed.Count, string.Join(", ", removed));
        }
    }

    /// <summary>
    /// The mount points in <paramref name="mountinfo"/> (lines of <c>/proc/self/mountinfo</c>) of pod network namespaces
    /// (<c>/run/netns/cni-*</c>, <c>/var/run/netns/cni-*</c>) whose namespace is one of <paramref name="namespaces"/>
    /// (<c>net:[INODE]</c>; an nsfs mount's root field names its namespace that way).
    /// </summary>
    internal static IReadOnlyList<string> NetworkNamespaceMounts(IEnumerable<string> mountinfo, IReadOnlySet<string> namespaces) =>
        mountinfo.Select(l => l.Split(' ')).Where(f => f.Length > 4)
            .Select(f => (Root: Unescape(f[3]), Point: Unescape(f[4])))
            .Where(m => (m.Point.StartsWith("/run/netns/cni-", StringComparison.Ordinal) || m.Point.StartsWith("/var/run/netns/cni-", StringComparison.Ordinal))
                && namespaces.Contains(m.Root))
            .Select(m => m.Point)
            .Distinct(StringComparer.Ordinal)
            .ToList();

    /// <summary>The argument after <paramref name="flag"/> (<c>-address</c>, or <c>--address</c>), or null.</summary>
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

    /// <summary>Decodes mountinfo's octal escapes (<c>\040</c> for a space).</summary>
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

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
