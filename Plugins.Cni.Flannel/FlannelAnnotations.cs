using System.Net;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Coracle.Plugins.Cni.Flannel;

/// <summary>
/// The Node annotations flannel's kube subnet manager reads and writes, spelled as flannel spells them so
/// <c>kubectl describe node</c> looks the way K3s operators expect.
/// </summary>
public static class FlannelAnnotations
{
    /// <summary>The annotation prefix.</summary>
    public const string Prefix = "flannel.alpha.coreos.com/";

    /// <summary><c>vxlan</c> or <c>host-gw</c>.</summary>
    public const string BackendType = Prefix + "backend-type";

    /// <summary>The backend's JSON: <c>{"VNI":1,"VtepMAC":"..."}</c> for vxlan, <c>null</c> for host-gw.</summary>
    public const string BackendData = Prefix + "backend-data";

    /// <summary>The node's public IP.</summary>
    public const string PublicIp = Prefix + "public-ip";

    /// <summary>Always <c>true</c>: the lease came from the Kubernetes subnet manager.</summary>
    public const string KubeSubnetManager = Prefix + "kube-subnet-manager";

    /// <summary>The annotations this node publishes.</summary>
    public static IReadOnlyDictionary<string, string> For(LocalAttributes local)
    {
        ArgumentNullException.ThrowIfNull(local);
        return new Dictionary<string, string>(StringComparer.Ordinal)
        {
            [BackendType] = local.BackendType,
            [BackendData] = RenderBackendData(local),
            [KubeSubnetManager] = "true",
            [PublicIp] = local.PublicIp.ToString(),
        };
    }

    /// <summary>flannel's backend-data JSON.</summary>
    public static string RenderBackendData(LocalAttributes local)
    {
        ArgumentNullException.ThrowIfNull(local);
        return local.BackendType == "vxlan"
            ? JsonSerializer.Serialize(new VxlanData { Vni = local.Vni, VtepMac = local.VtepMac })
            : "null";
    }

    /// <summary>
    /// A peer's lease from its name, podCIDR and annotations; null (with the reason) when the node has not published
    /// flannel's annotations or its podCIDR yet.
    /// </summary>
    public static PeerLease? ParsePeer(string name, string? podCidr, IReadOnlyDictionary<string, string>? annotations, out string reason)
    {
        reason = "";
        if (!Ipv4Cidr.TryParse(podCidr, out var subnet))
        {
            reason = "no podCIDR yet";
            return null;
        }

        if (annotations is null
            || !annotations.TryGetValue(PublicIp, out var ipText)
            || !annotations.TryGetValue(BackendType, out var backend))
        {
            reason = "flannel annotations not published yet";
            return null;
        }

        if (!IPAddress.TryParse(ipText, out var ip) || ip.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork)
        {
            reason = $"{PublicIp} \"{ipText}\" is not an IPv4 address";
            return null;
        }

        string? mac = null;
        if (backend == "vxlan")
        {
            annotations.TryGetValue(BackendData, out var data);
            try
            {
                mac = data is null ? null : JsonSerializer.Deserialize<VxlanData>(data)?.VtepMac;
            }
            catch (JsonException)
            {
                mac = null;
            }

            if (mac is null || !VtepMac.IsValid(mac))
            {
                reason = $"{BackendData} \"{data}\" has no valid VtepMAC";
                return null;
            }
        }

        return new PeerLease(name, ip, subnet, mac?.ToLowerInvariant(), backend);
    }

    private sealed class VxlanData
    {
        [JsonPropertyName("VNI")]
        public int Vni { get; set; }

        [JsonPropertyName("VtepMAC")]
        public string? VtepMac { get; set; }
    }
}
