using System.Globalization;
using System.Runtime.InteropServices;

namespace Coracle.Plugins.Runtime.Containerd;

/// <summary>What the host offers containerd beyond the node settings. Found by <see cref="HostProbe.Detect"/>.</summary>
/// <param name="SystemdCgroup">runc uses the systemd cgroup driver: the host's <see cref="NodeSettings.CgroupDriver"/> is systemd.</param>
/// <param name="HasCapSysResource">This process holds CAP_SYS_RESOURCE (effective set).</param>
/// <param name="KernelHasOverlay">The kernel lists <c>overlay</c> in /proc/filesystems.</param>
public sealed record RuntimeHostFacts(bool SystemdCgroup, bool HasCapSysResource, bool KernelHasOverlay);

/// <summary>
/// Host detection for the containerd configuration. Every check reads below a filesystem root so tests can
/// hand it a fake one; only <see cref="TryOverlayMount"/> touches the real kernel.
/// </summary>
public static partial class HostProbe
{
    /// <summary>The capability number of CAP_SYS_RESOURCE.</summary>
    public const int CapSysResource = 24;

    /// <summary>
    /// Reads the host facts below <paramref name="root"/> (<c>/</c> on a real node); the cgroup driver is the host's
    /// decision (<see cref="NodeSettings.CgroupDriver"/>), never detected twice.
    /// </summary>
    public static RuntimeHostFacts Detect(string root, string cgroupDriver) =>
        new(cgroupDriver == "systemd", HasCapability(root, CapSysResource), KernelListsOverlay(root));

    /// <summary>Whether bit <paramref name="capability"/> is set in <c>CapEff</c> of <c>/proc/self/status</c>.</summary>
    public static bool HasCapability(string root, int capability)
    {
        var status = Path.Combine(root, "proc", "self", "status");
        if (!File.Exists(status))
        {
            return false;
        }

        foreach (var line in File.ReadLines(status))
        {
            if (line.StartsWith("CapEff:", StringComparison.Ordinal)
                && ulong.TryParse(line["CapEff:".Length..].Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var mask))
            {
                return (mask & (1UL << capability)) != 0;
            }
        }

        return false;
    }

    /// <summary>Whether <c>/proc/filesystems</c> lists <c>overlay</c>.</summary>
    public static bool KernelListsOverlay(string root)
    {
        var filesystems = Path.Combine(root, "proc", "filesystems");
        return File.Exists(filesystems)
            && File.ReadLines(filesystems).Any(line => line.Split('\t', ' ').LastOrDefault()?.Trim() == "overlay");
    }

    /// <summary>
    /// The snapshotter to configure: an explicit choice wins; <c>auto</c> picks overlayfs when the kernel supports it
    /// below <paramref name="probeDir"/> (an actual overlay mount, which also catches an overlay-on-overlay data dir and
    /// loads the module), or — without a probe dir — when /proc/filesystems lists it; else native.
    /// </summary>
    public static string ChooseSnapshotter(string configured, RuntimeHostFacts facts, string? probeDir)
    {
        ArgumentNullException.ThrowIfNull(facts);
        if (configured != "auto")
        {
            return configured;
        }

        var overlay = probeDir is null ? facts.KernelHasOverlay : TryOverlayMount(probeDir);
        return overlay ? "overlayfs" : "native";
    }

    /// <summary>
    /// Mounts an overlay in a fresh temporary folder below <paramref name="probeDir"/>, unmounts it and removes the
    /// folder. True when the mount worked.
    /// </summary>
    public static bool TryOverlayMount(string probeDir)
    {
        Directory.CreateDirectory(probeDir);
        var dir = Path.Combine(probeDir, ".overlay-probe-" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
        try
        {
            foreach (var sub in new[] { "lower", "upper", "work", "merged" })
            {
                Directory.CreateDirectory(Path.Combine(dir, sub));
            }

            var data = $"lowerdir={dir}/lower,upperdir={dir}/upper,workdir={dir}/work";
            if (Mount("overlay", Path.Combine(dir, "merged"), "overlay", 0, data) != 0)
            {
                return false;
            }

            _ = Umount2(Path.Combine(dir, "merged"), MntDetach);
            return true;
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
        finally
        {
            try
            {
                if (Directory.Exists(dir))
                {
                    Directory.Delete(dir, recursive: true);
                }
            }
            catch (IOException)
            {
                // A leftover probe folder is harmless.
            }
        }
    }

    internal const int MntDetach = 2;

    [LibraryImport("libc", EntryPoint = "mount", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Mount(string source, string target, string fileSystemType, nuint flags, string data);

    [LibraryImport("libc", EntryPoint = "umount2", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Umount2(string target, int flags);
}
