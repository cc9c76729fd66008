using System.Globalization;

namespace Coracle.Plugins.Cni.Calico;

/// <summary>Calico's configuration from the node settings and <c>[plugins.calico]</c>. <see cref="Resolve"/> validates.</summary>
public sealed record CalicoSettings
{
    /// <summary>The option keys <c>[plugins.calico]</c> accepts.</summary>
    public static IReadOnlyList<string> KnownOptions { get; } =
        PluginSettingAttribute.KeysOf(typeof(CalicoPlugin));

    /// <summary>The IP pool encapsulations Calico offers.</summary>
    public static IReadOnlyList<string> KnownEncapsulations { get; } = ["VXLAN", "IPIP", "None"];

    /// <summary>The tigera operator image (Calico v3.29).</summary>
    public const string DefaultOperatorImage = "quay.io/tigera/operator:v1.36.5";

    /// <summary>The cluster CIDR (the IP pool).</summary>
    public required string ClusterCidr { get; init; }

    /// <summary><c>VXLAN</c> (default), <c>IPIP</c> or <c>None</c>.</summary>
    public string Encapsulation { get; init; } = "VXLAN";

    /// <summary>The pod MTU.</summary>
    public int Mtu { get; init; }

    /// <summary>The IP pool's block size.</summary>
    public int BlockSize { get; init; } = 26;

    /// <summary>Calico's CNI binaries (installed there by calico-node).</summary>
    public string BinDir { get; init; } = "/opt/cni/bin";

    /// <summary>Calico's CNI configuration (written there by calico-node).</summary>
    public string ConfDir { get; init; } = "/etc/cni/net.d";

    /// <summary>The operator image.</summary>
    public string OperatorImage { get; init; } = DefaultOperatorImage;

    /// <summary>The first node IP (<c>--node-ip</c>), empty when not given.</summary>
    public string NodeIp { get; init; } = "";

    /// <summary>The interface (<c>[plugins.calico] iface</c>, <c>--calico-iface</c>), empty when not given.</summary>
    public string Interface { get; init; } = "";

    /// <summary>Resolves and validates; all problems in one exception named after the first key.</summary>
    /// <exception cref="PluginConfigException">An option is wrong.</exception>
    public static CalicoSettings Resolve(NodeSettings node, IReadOnlyDictionary<string, string> options)
    {
        ArgumentNullException.ThrowIfNull(node);
        ArgumentNullException.ThrowIfNull(options);
        var errors = new List<(string Key, string Message)>();
        foreach (var key in options.Keys.Where(k => !KnownOptions.Contains(k, StringComparer.OrdinalIgnoreCase)))
        {
            errors.Add((key, $"unknown option \"{key}\" in [plugins.calico]; known options: {string.Join(", ", KnownOptions)}"));
        }

        string? Get(string key) =>
            options.FirstOrDefault(kv => string.Equals(kv.Key, key, StringComparison.OrdinalIgnoreCase)) is { Value: { Length: > 0 } value }
                ? value.Trim()
                : null;

        var encapsulation = KnownEncapsulations.FirstOrDefault(e => string.Equals(e, Get("encapsulation") ?? "VXLAN", StringComparison.OrdinalIgnoreCase));
        if (encapsulation is null)
        {
            errors.Add(("encapsulation", $"encapsulation \"{Get("encapsulation")}\" is not supported; use one of: {string.Join(", ", KnownEncapsulations)}"));
            encapsulation = "VXLAN";
        }

        var defaultMtu = encapsulation switch { "VXLAN" => 1450, "IPIP" => 1480, _ => 1500 };
        var mtu = defaultMtu;
        if (Get("mtu") is { } mtuText
            && (!int.TryParse(mtuText, NumberStyles.None, CultureInfo.InvariantCulture, out mtu) || mtu < 576 || mtu > 9000))
        {
            errors.Add(("mtu", $"mtu \"{mtuText}\" must be a whole number from 576 to 9000"));
        }

        var blockSize = 26;
        if (Get("block-size") is { } blockText
            && (!int.TryParse(blockText, NumberStyles.None, CultureInfo.InvariantCulture, out blockSize) || blockSize < 20 || blockSize > 32))
        {
            errors.Add(("block-size", $"block-size \"{blockText}\" must be a whole number from 20 to 32"));
        }

        var cidr = (node.ClusterCidr ?? "").Trim();
        var slash = cidr.IndexOf('/', StringComparison.Ordinal);
        if (slash <= 0 || !System.Net.IPAddress.TryParse(cidr.AsSpan(0, slash), out _)
            || !int.TryParse(cidr.AsSpan(slash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var prefix) || prefix > 32)
        {
            errors.Add(("cluster-cidr", $"--cluster-cidr \"{node.ClusterCidr}\" is not a network in CIDR form (for example 10.42.0.0/16)"));
        }
        else if (prefix > blockSize)
        {
            errors.Add(("cluster-cidr", $"--cluster-cidr \"{cidr}\" is smaller than one /{blockSize} Calico block; use a prefix of /{blockSize} or shorter"));
        }

        string Dir(string key, string fallback)
        {
            var value = Get(key) ?? fallback;
            if (!Path.IsPathRooted(value))
            {
                errors.Add((key, $"{key} \"{value}\" must be an absolute path"));
            }

            return value;
        }

        var binDir = Dir("bin-dir", "/opt/cni/bin");
        var confDir = Dir("conf-dir", "/etc/cni/net.d");
        if (errors.Count > 0)
        {
            throw new PluginConfigException(errors[0].Key, string.Join("; ", errors.Select(e => e.Message)));
        }

        return new CalicoSettings
        {
            ClusterCidr = cidr,
            Encapsulation = encapsulation,
            Mtu = mtu,
            BlockSize = blockSize,
            BinDir = binDir,
            ConfDir = confDir,
            OperatorImage = Get("operator-image") ?? DefaultOperatorImage,
            NodeIp = node.NodeIps.Count > 0 ? node.NodeIps[0] : "",
            Interface = Get("iface") ?? "",
        };
    }
}
