using System.Net;
using System.Text.Json;

namespace Coracle.Core.Tunnel;

/// <summary>What the egress proxy knows of a Service: its cluster IPs and TCP ports (service port → port name).</summary>
internal sealed record ServiceEntry(string Namespace, string Name, IReadOnlyList<IPAddress> ClusterIps, IReadOnlyList<ServiceEntry.Port> Ports)
{
    /// <summary><c>namespace/name</c>, the key EndpointSlices refer to.</summary>
    public string Key => Namespace + "/" + Name;

    /// <summary>Reads a Service object; null for a headless or ExternalName service (nothing to route).</summary>
    public static ServiceEntry? FromJson(JsonElement service)
    {
        if (KubeJson.String(service, "metadata", "name") is not { Length: > 0 } name)
        {
            return null;
        }

        var ips = KubeJson.Array(service, "spec", "clusterIPs").Select(c => c.ValueKind == JsonValueKind.String ? c.GetString() : null)
            .Append(KubeJson.String(service, "spec", "clusterIP"))
            .Select(t => IPAddress.TryParse(t, out var ip) ? ip : null)
            .OfType<IPAddress>()
            .Distinct()
            .ToList();
        if (ips.Count == 0)
        {
            return null;
        }

        var ports = KubeJson.Array(service, "spec", "ports")
            .Where(p => (KubeJson.String(p, "protocol") ?? "TCP") == "TCP" && KubeJson.Int(p, "port") is > 0)
            .Select(p => new Port(KubeJson.String(p, "name") ?? "", KubeJson.Int(p, "port")!.Value))
            .ToList();
        return new ServiceEntry(KubeJson.String(service, "metadata", "namespace") ?? "", name, ips, ports);
    }

    /// <summary>A TCP service port and its name (which the EndpointSlices' ports carry).</summary>
    internal sealed record Port(string Name, int Number);
}
