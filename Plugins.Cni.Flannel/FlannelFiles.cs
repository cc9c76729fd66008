using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Coracle.Plugins.Cni.Flannel;

/// <summary>flannel's <c>subnet.env</c>, read by CNI plugins and operators.</summary>
public static class SubnetEnv
{
    /// <summary>
    /// <c>FLANNEL_NETWORK</c> (the cluster CIDR), <c>FLANNEL_SUBNET</c> (the bridge gateway .1 with the subnet's
    /// prefix, as flanneld writes it), <c>FLANNEL_MTU</c> and <c>FLANNEL_IPMASQ</c>.
    /// </summary>
    public static string Render(Ipv4Cidr network, Ipv4Cidr subnet, int mtu, bool ipMasq) =>
        $"FLANNEL_NETWORK={network}\n" +
        $"FLANNEL_SUBNET={subnet.Gateway}/{subnet.Prefix.ToString(CultureInfo.InvariantCulture)}\n" +
        $"FLANNEL_MTU={mtu.ToString(CultureInfo.InvariantCulture)}\n" +
        $"FLANNEL_IPMASQ={(ipMasq ? "true" : "false")}\n";

    /// <summary>Parses the file back into its variables.</summary>
    public static IReadOnlyDictionary<string, string> Parse(string text) =>
        text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(line => line.Split('=', 2))
            .Where(parts => parts.Length == 2)
            .ToDictionary(parts => parts[0], parts => parts[1], StringComparer.Ordinal);
}

/// <summary>
/// The CNI conflist. K3s runs the flannel CNI plugin, which reads subnet.env and delegates to <c>bridge</c>;
/// Debian does not package the flannel CNI binary, so the delegated configuration is written directly: bridge
/// <c>cni0</c> with host-local IPAM over the node's subnet, hairpin mode, then portmap.
/// </summary>
public static class CniConflist
{
    /// <summary>The file name in the CNI conf dir.</summary>
    public const string FileName = "10-flannel.conflist";

    /// <summary>The network name (flannel's <c>cbr0</c>).</summary>
    public const string NetworkName = "cbr0";

    /// <summary>The bridge device.</summary>
    public const string Bridge = "cni0";

    /// <summary>Renders the conflist (CNI spec 1.0.0, which Debian's plugins speak).</summary>
    /// <param name="subnet">The node's pod subnet.</param>
    /// <param name="mtu">The pod MTU.</param>
    /// <param name="ipamDataDir">host-local's state folder; null keeps its default (/var/lib/cni/networks).</param>
    public static string Render(Ipv4Cidr subnet, int mtu, string? ipamDataDir = null)
    {
        var ipam = new JsonObject
        {
            ["type"] = "host-local",
            ["ranges"] = new JsonArray(new JsonArray(new JsonObject
            {
                ["subnet"] = subnet.ToString(),
                ["gateway"] = subnet.Gateway.ToString(),
            })),
        };
        if (ipamDataDir is not null)
        {
            ipam["dataDir"] = ipamDataDir;
        }

        var root = new JsonObject
        {
            ["cniVersion"] = "1.0.0",
            ["name"] = NetworkName,
            ["plugins"] = new JsonArray(
                new JsonObject
                {
                    ["type"] = "bridge",
                    ["bridge"] = Bridge,
                    ["isGateway"] = true,
                    ["isDefaultGateway"] = true,
                    ["ipMasq"] = false,
                    ["hairpinMode"] = true,
                    ["forceAddress"] = true,
                    ["mtu"] = mtu,
                    ["ipam"] = ipam,
                },
                new JsonObject
                {
                    ["type"] = "portmap",
                    ["capabilities"] = new JsonObject { ["portMappings"] = true },
                    ["snat"] = true,
                }),
        };
        return root.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";
    }
}

/// <summary>Writes a file atomically (temp + rename).</summary>
internal static class AtomicFile
{
    public static void Write(string path, string content)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temp = path + ".tmp";
        File.WriteAllText(temp, content);
        File.Move(temp, path, overwrite: true);
    }
}
