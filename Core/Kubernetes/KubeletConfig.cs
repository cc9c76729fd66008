using System.Text;
using Coracle.Core.Hosting;

namespace Coracle.Core.Kubernetes;

/// <summary>The host-dependent part of the kubelet's configuration.</summary>
/// <param name="CgroupDriver"><c>cgroupfs</c> or <c>systemd</c>, detected as the containerd plugin detects it.</param>
/// <param name="CgroupRoot">The kubelet's cgroup root (<c>/coracle/NODE</c> under cgroupfs).</param>
/// <param name="VolumePluginDir">FlexVolume plugins, under the data dir instead of /usr/libexec.</param>
/// <param name="FailSwapOn">Refuse to start with swap on; off (K3s's choice) so small devices with swap still run.</param>
internal sealed record KubeletHost(string CgroupDriver, string CgroupRoot, string VolumePluginDir, bool FailSwapOn = false);

/// <summary>
/// The kubelet's <c>KubeletConfiguration</c> file (<c>DATA/agent/etc/kubelet.conf.yaml</c>). Flags given with
/// <c>--kubelet-arg</c> still win over it, as the kubelet lets flags override the file.
/// </summary>
internal static class KubeletConfig
{
    /// <summary>Eviction thresholds lowered for small SD cards and disks (the kubelet's defaults are 10-15%).</summary>
    public static IReadOnlyDictionary<string, string> EvictionHard { get; } = new SortedDictionary<string, string>(StringComparer.Ordinal)
    {
        ["imagefs.available"] = "5%",
        ["memory.available"] = "50Mi",
        ["nodefs.available"] = "5%",
        ["nodefs.inodesFree"] = "5%",
    };

    public static string Render(KubeletHost host)
    {
        var yaml = new StringBuilder();
        yaml.Append("apiVersion: kubelet.config.k8s.io/v1beta1\n");
        yaml.Append("kind: KubeletConfiguration\n");
        yaml.Append($"cgroupDriver: {host.CgroupDriver}\n");
        yaml.Append($"cgroupRoot: \"{host.CgroupRoot}\"\n");
        yaml.Append($"failSwapOn: {(host.FailSwapOn ? "true" : "false")}\n");
        yaml.Append("evictionHard:\n");
        foreach (var (signal, value) in EvictionHard)
        {
            yaml.Append($"  {signal}: \"{value}\"\n");
        }

        yaml.Append("evictionMinimumReclaim:\n");
        yaml.Append("  imagefs.available: \"10%\"\n");
        yaml.Append("  nodefs.available: \"10%\"\n");
        yaml.Append("imageGCHighThresholdPercent: 90\n");
        yaml.Append("imageGCLowThresholdPercent: 80\n");
        yaml.Append($"volumePluginDir: \"{host.VolumePluginDir}\"\n");
        yaml.Append("healthzBindAddress: 127.0.0.1\n");
        yaml.Append("healthzPort: 10248\n");
        yaml.Append("serializeImagePulls: false\n");
        return yaml.ToString();
    }

    public static string Write(string path, KubeletHost host)
    {
        Directory.CreateDirectory(host.VolumePluginDir);
        FileUtil.WriteAtomic(path, Render(host), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        return path;
    }
}
