using System.Text;
using Coracle.Core.Hosting;

namespace Coracle.Core.Kubernetes;

/// <summary>The host-dependent part of the kubelet's configuration.</summary>
/// <param name="CgroupDriver"><c>cgroupfs</c> or <c>systemd</c>, detected as the containerd plugin detects it.</param>
/// <param name="CgroupRoot">The kubelet's cgroup root (<c>/coracle/NODE</c> under cgroupfs).</param>
/// <param name="VolumePluginDir">FlexVolume plugins, under the data dir instead of /usr/libexec.</param>
/// <param name="FailSwapOn">Refuse to start with swap on; off (K3s's choice) so small devices with swap still run.</param>
internal sealed record KubeletHost(string CgroupDriver, string CgroupRoot, string VolumePluginDir, bool FailSwapOn = false)
{
    /// <summary>Taints the node registers with (<c>--node-taint</c>).</summary>
    public IReadOnlyList<NodeTaint> Taints { get; init; } = [];

    /// <summary>The kubelet refuses kernel tunables other than its defaults (<c>--protect-kernel-defaults</c>).</summary>
    public bool ProtectKernelDefaults { get; init; }

    /// <summary>Where the pods' log files go (<c>pod-logs-dir</c>).</summary>
    public string PodLogsDir { get; init; } = "/var/log/pods";
}

/// <summary>
/// What the kubelet serves and where it finds the cluster: settings that 1.32 accepts only in its configuration file
/// without a deprecation warning (the flags of the same names still work and win, as <c>--kubelet-arg</c>).
/// </summary>
internal sealed record KubeletServing(
    string Address, string ClientCaFile, string TlsCertFile, string TlsKeyFile, string ClusterDns, string ClusterDomain, string RuntimeEndpoint, string ResolvConf)
{
    /// <summary>The serving settings for a node whose certificates and runtime are in <paramref name="p"/>.</summary>
    public static KubeletServing For(KubernetesPaths p, string clusterDns, string clusterDomain, string resolvConf) => new(
        p.KubeletAddress, p.Node("client-ca.crt"), p.Node("serving-kubelet.crt"), p.Node("serving-kubelet.key"), clusterDns, clusterDomain, "unix://" + p.CriSocket, resolvConf);
}

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

    /// <summary>
    /// The resolv.conf pods inherit: <c>/etc/resolv.conf</c>, unless it names only loopback resolvers (systemd-resolved's
    /// 127.0.0.53, dnsmasq) that a pod cannot reach, and systemd-resolved's upstream file exists — K3s's rule.
    /// </summary>
    public static string ResolvConf(string root = "/")
    {
        var etc = Path.Combine(root, "etc/resolv.conf");
        var upstream = Path.Combine(root, "run/systemd/resolve/resolv.conf");
        try
        {
            var servers = File.ReadLines(etc)
                .Select(l => l.Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries))
                .Where(f => f.Length >= 2 && f[0] == "nameserver")
                .Select(f => f[1])
                .ToList();
            var loopbackOnly = servers.Count > 0 && servers.All(a => System.Net.IPAddress.TryParse(a, out var ip) && System.Net.IPAddress.IsLoopback(ip));
            return loopbackOnly && File.Exists(upstream) ? "/run/systemd/resolve/resolv.conf" : "/etc/resolv.conf";
        }
        catch (IOException)
        {
            return "/etc/resolv.conf";
        }
    }

    public static string Render(KubeletHost host, KubeletServing serving)
    {
        var yaml = new StringBuilder();
        yaml.Append("apiVersion: kubelet.config.k8s.io/v1beta1\n");
        yaml.Append("kind: KubeletConfiguration\n");
        yaml.Append($"address: \"{serving.Address}\"\n");
        yaml.Append("readOnlyPort: 0\n");
        yaml.Append($"tlsCertFile: \"{serving.TlsCertFile}\"\n");
        yaml.Append($"tlsPrivateKeyFile: \"{serving.TlsKeyFile}\"\n");
        yaml.Append("authentication:\n");
        yaml.Append("  anonymous:\n");
        yaml.Append("    enabled: false\n");
        yaml.Append("  webhook:\n");
        yaml.Append("    enabled: true\n");
        yaml.Append("  x509:\n");
        yaml.Append($"    clientCAFile: \"{serving.ClientCaFile}\"\n");
        yaml.Append("authorization:\n");
        yaml.Append("  mode: Webhook\n");
        yaml.Append($"clusterDNS: [\"{serving.ClusterDns}\"]\n");
        yaml.Append($"clusterDomain: \"{serving.ClusterDomain}\"\n");
        yaml.Append($"containerRuntimeEndpoint: \"{serving.RuntimeEndpoint}\"\n");
        yaml.Append($"resolvConf: \"{serving.ResolvConf}\"\n");
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
        yaml.Append($"podLogsDir: \"{host.PodLogsDir}\"\n");
        if (host.ProtectKernelDefaults)
        {
            yaml.Append("protectKernelDefaults: true\n");
        }

        if (host.Taints.Count > 0)
        {
            yaml.Append("registerWithTaints:\n");
            foreach (var taint in host.Taints)
            {
                yaml.Append($"- key: \"{taint.Key}\"\n");
                if (taint.Value.Length > 0)
                {
                    yaml.Append($"  value: \"{taint.Value}\"\n");
                }

                yaml.Append($"  effect: \"{taint.Effect}\"\n");
            }
        }

        return yaml.ToString();
    }

    public static string Write(string path, KubeletHost host, KubeletServing serving)
    {
        Directory.CreateDirectory(host.VolumePluginDir);
        FileUtil.WriteAtomic(path, Render(host, serving), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        return path;
    }
}
