using System.Net;
using System.Text.Json;

namespace Coracle.Core.Tunnel;

/// <summary>What the egress proxy knows of a Node: its name, InternalIP/ExternalIP addresses and podCIDRs.</summary>
internal sealed record NodeEntry(string Name, IReadOnlyList<IPAddress> Addresses, IReadOnlyList<IPNetwork> PodCidrs)
{
    /// <summary>Reads a Node object (<c>metadata.name</c>, <c>status.addresses</c>, <c>spec.podCIDR(s)</c>); null without a name.</summary>
    public static NodeEntry? FromJson(JsonElement node)
    {
        if (KubeJson.String(node, "metadata", "name") is not { Length: > 0 } name)
        {
            return null;
        }

        var addresses = new List<IPAddress>();
        foreach (var address in KubeJson.Array(node, "status", "addresses"))
        {
            var type = KubeJson.String(address, "type");
            if ((type is "InternalIP" or "ExternalIP") && IPAddress.TryParse(KubeJson.String(address, "address"), out var ip) && !addresses.Contains(ip))
            {
                addresses.Add(ip);
            }
        }

        var cidrs = new List<IPNetwork>();
        var texts = KubeJson.Array(node, "spec", "podCIDRs").Select(c => c.ValueKind == JsonValueKind.String ? c.GetString() : null)
            .Append(KubeJson.String(node, "spec", "podCIDR"));
        foreach (var text in texts)
        {
            if (IPNetwork.TryParse(text, out var cidr) && !cidrs.Contains(cidr))
            {
                cidrs.Add(cidr);
            }
        }

        return new NodeEntry(name, addresses, cidrs);
    }
}
