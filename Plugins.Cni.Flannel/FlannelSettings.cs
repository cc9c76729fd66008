using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Coracle.Plugins.Cni.Flannel;

/// <summary>
/// Flannel's configuration resolved from the node settings (<c>--cluster-cidr</c>, <c>--node-ip</c>) and the plugin's
/// own settings (<c>[plugins.flannel]</c>: <c>backend</c> is <c>--flannel-backend</c>, <c>iface</c> <c>--flannel-iface</c>). Immutable;
/// <see cref="Resolve"/> validates and never touches the kernel.
/// </summary>
public sealed record FlannelSettings
{
    /// <summary>The backends <c>--flannel-backend</c> accepts.</summary>
    public static IReadOnlyList<string> KnownBackends { get; } = ["vxlan", "host-gw", "none"];

    /// <summary>The option keys <c>[plugins.flannel]</c> accepts: the plugin's declared settings.</summary>
    public static IReadOnlyList<string> KnownOptions { get; } =
        PluginSettingAttribute.KeysOf(typeof(FlannelPlugin));

    /// <summary>The subnet length each node gets out of the cluster CIDR (flannel's SubnetLen).</summary>
    public const int SubnetLength = 24;

    /// <summary>The node's name (the Node object whose podCIDR is the lease).</summary>
    public required string NodeName { get; init; }

    /// <summary><c>vxlan</c>, <c>host-gw</c> or <c>none</c>.</summary>
    public required string Backend { get; init; }

    /// <summary>The cluster CIDR (<c>FLANNEL_NETWORK</c>).</summary>
    public required Ipv4Cidr Network { get; init; }

    /// <summary>The uplink interface; empty: the default route's.</summary>
    public string Interface { get; init; } = "";

    /// <summary>The address peers reach this node at (<c>--flannel-external-ip</c>); null: the node IP.</summary>
    public IPAddress? ExternalIp { get; init; }

    /// <summary>The first IPv4 <c>--node-ip</c>; null: the uplink's first address.</summary>
    public IPAddress? NodeIp { get; init; }

    /// <summary>The kubeconfig the Kubernetes lease source uses.</summary>
    public required string Kubeconfig { get; init; }

    /// <summary>A static peers file; when set it replaces Kubernetes as the lease source.</summary>
    public string? StaticPeersFile { get; init; }

    /// <summary>Where <c>subnet.env</c> is written.</summary>
    public string SubnetFile { get; init; } = "/run/flannel/subnet.env";

    /// <summary>The CNI configuration folder the conflist goes to.</summary>
    public required string ConfDir { get; init; }

    /// <summary>The CNI plugin binaries folder.</summary>
    public required string BinDir { get; init; }

    /// <summary>The VXLAN network identifier (device <c>flannel.VNI</c>).</summary>
    public int Vni { get; init; } = 1;

    /// <summary>The VXLAN UDP port (8472, the Linux default flannel uses).</summary>
    public int Port { get; init; } = 8472;

    /// <summary>Masquerade traffic leaving the cluster CIDR.</summary>
    public bool IpMasq { get; init; } = true;

    /// <summary>An explicit MTU for pods; 0 derives it from the uplink.</summary>
    public int Mtu { get; init; }

    /// <summary>Time between reconcile passes.</summary>
    public TimeSpan ReconcileInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>host-local's state folder in the conflist (<c>ipam-data-dir</c>); null keeps /var/lib/cni/networks.</summary>
    public string? IpamDataDir { get; init; }

    /// <summary>The VXLAN device's name.</summary>
    public string VxlanDevice => $"flannel.{Vni.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>The conflist's path.</summary>
    public string ConflistFile => Path.Combine(ConfDir, CniConflist.FileName);

    /// <summary>
    /// Resolves and validates every setting; all problems are reported together, the first one's key names the
    /// exception. <paramref name="sysClassNet"/> is where interfaces are looked up (<c>/sys/class/net</c>; tests
    /// pass a fake folder) and <paramref name="cniBinCandidates"/> the folders searched for the <c>bridge</c> plugin.
    /// </summary>
    /// <exception cref="PluginConfigException">A flag or option is wrong.</exception>
    public static FlannelSettings Resolve(
        NodeSettings node,
        IReadOnlyDictionary<string, string> options,
        string sysClassNet = "/sys/class/net",
        IReadOnlyList<string>? cniBinCandidates = null,
        IReadOnlyDictionary<string, string>? folders = null)
    {
        folders ??= PluginFolderAttribute.Resolve(typeof(FlannelPlugin), node?.DataDir ?? "/");
        ArgumentNullException.ThrowIfNull(node);
        ArgumentNullException.ThrowIfNull(options);
        var errors = new List<(string Key, string Message)>();

        foreach (var key in options.Keys)
        {
            if (!KnownOptions.Contains(key, StringComparer.OrdinalIgnoreCase))
            {
                errors.Add((key, $"unknown option \"{key}\" in [plugins.flannel]; known options: {string.Join(", ", KnownOptions)}"));
            }
        }

        string? Get(string key) =>
            options.FirstOrDefault(kv => string.Equals(kv.Key, key, StringComparison.OrdinalIgnoreCase)) is { Value: { Length: > 0 } value }
                ? value.Trim()
                : null;

        var backend = (Get("backend") ?? "").ToLowerInvariant();
        if (backend.Length == 0)
        {
            backend = "vxlan";
        }

        if (!KnownBackends.Contains(backend))
        {
            errors.Add(("backend",
                $"--flannel-backend \"{backend}\" is not supported; use one of: {string.Join(", ", KnownBackends)}"));
        }

        if (!Ipv4Cidr.TryParse(node.ClusterCidr?.Trim(), out var network))
        {
            errors.Add(("cluster-cidr",
                $"--cluster-cidr \"{node.ClusterCidr}\" is not an IPv4 network in CIDR form (for example 10.42.0.0/16)"));
        }
        else if (network.Prefix > SubnetLength)
        {
            errors.Add(("cluster-cidr",
                $"--cluster-cidr \"{node.ClusterCidr}\" cannot hold a /{SubnetLength} subnet per node; use a prefix of /{SubnetLength} or shorter (for example 10.42.0.0/16)"));
        }

        var iface = Get("iface") ?? "";
        if (iface.Length > 0 && !Directory.Exists(Path.Combine(sysClassNet, iface)))
        {
            var existing = Directory.Exists(sysClassNet)
                ? string.Join(", ", Directory.GetFileSystemEntries(sysClassNet).Select(Path.GetFileName).Order(StringComparer.Ordinal))
                : "none found";
            errors.Add(("iface", $"--flannel-iface \"{iface}\" does not exist on this host; interfaces: {existing}"));
        }

        IPAddress? externalIp = null;
        if (Get("flannel-external-ip") is { } external
            && (!IPAddress.TryParse(external, out externalIp) || externalIp.AddressFamily != AddressFamily.InterNetwork))
        {
            errors.Add(("flannel-external-ip", $"flannel-external-ip \"{external}\" is not an IPv4 address"));
            externalIp = null;
        }

        IPAddress? nodeIp = null;
        foreach (var candidate in node.NodeIps)
        {
            if (IPAddress.TryParse(candidate, out var parsed) && parsed.AddressFamily == AddressFamily.InterNetwork)
            {
                nodeIp = parsed;
                break;
            }
        }

        int Number(string key, int fallback, int min, int max)
        {
            var text = Get(key);
            if (text is null)
            {
                return fallback;
            }

            if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) || value < min || value > max)
            {
                errors.Add((key, $"{key} \"{text}\" must be a whole number from {min} to {max}"));
                return fallback;
            }

            return value;
        }

        var vni = Number("vni", 1, 1, 16_777_215);
        var port = Number("port", 8472, 1, 65535);
        var mtu = Number("mtu", 0, 0, 65535);
        if (mtu is > 0 and < 576)
        {
            errors.Add(("mtu", $"mtu \"{mtu}\" is below 576; use 0 to derive it from the interface"));
        }

        var reconcile = Number("reconcile-seconds", 5, 1, 3600);

        var ipMasq = true;
        if (Get("ip-masq") is { } masq && !bool.TryParse(masq, out ipMasq))
        {
            errors.Add(("ip-masq", $"ip-masq \"{masq}\" must be true or false"));
            ipMasq = true;
        }

        string Absolute(string key, string fallback)
        {
            var value = Get(key) ?? fallback;
            if (!Path.IsPathRooted(value))
            {
                errors.Add((key, $"{key} \"{value}\" must be an absolute path"));
            }

            return value;
        }

        // The node controllers' credentials the host provides (a kubelet's own may not list Nodes since 1.32).
        var kubeconfig = Get("kubeconfig") ?? node.ControllerKubeconfig;
        if (kubeconfig.Length == 0 && Get("static-peers-file") is null)
        {
            errors.Add(("kubeconfig", "the host provides no controller kubeconfig; set kubeconfig to one allowed to list, watch and patch Nodes"));
        }
        else if (kubeconfig.Length > 0)
        {
            kubeconfig = Absolute("kubeconfig", kubeconfig);
        }
        var subnetFile = Absolute("subnet-file", "/run/flannel/subnet.env");
        var confDir = Absolute("conf-dir", folders["cni-conf"]);
        var ipamDataDir = Get("ipam-data-dir") is null ? null : Absolute("ipam-data-dir", "");
        var staticPeers = Get("static-peers-file");
        if (staticPeers is not null && !File.Exists(staticPeers))
        {
            errors.Add(("static-peers-file", $"static-peers-file \"{staticPeers}\" does not exist"));
        }

        var binDir = Get("bin-dir");
        if (binDir is null)
        {
            var candidates = cniBinCandidates ?? ["/usr/lib/cni", "/opt/cni/bin"];
            binDir = candidates.FirstOrDefault(d => File.Exists(Path.Combine(d, "bridge"))) ?? candidates[^1];
        }
        else if (!Path.IsPathRooted(binDir))
        {
            errors.Add(("bin-dir", $"bin-dir \"{binDir}\" must be an absolute path"));
        }

        if (errors.Count > 0)
        {
            throw new PluginConfigException(errors[0].Key, string.Join("; ", errors.Select(e => e.Message)));
        }

        return new FlannelSettings
        {
            NodeName = node.NodeName,
            Backend = backend,
            Network = network,
            Interface = iface,
            ExternalIp = externalIp,
            NodeIp = nodeIp,
            Kubeconfig = kubeconfig,
            StaticPeersFile = staticPeers,
            SubnetFile = subnetFile,
            ConfDir = confDir,
            BinDir = binDir,
            Vni = vni,
            Port = port,
            IpMasq = ipMasq,
            Mtu = mtu,
            ReconcileInterval = TimeSpan.FromSeconds(reconcile),
            IpamDataDir = ipamDataDir,
        };
    }
}
