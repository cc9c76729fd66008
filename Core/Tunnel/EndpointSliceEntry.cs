using System.Net;
using System.Text.Json;

namespace Coracle.Core.Tunnel;

/// <summary>What the egress proxy knows of an EndpointSlice: its service, named TCP ports and endpoints (address, node, ready).</summary>
internal sealed record EndpointSliceEntry(string Namespace, string Name, string ServiceName, IReadOnlyList<ServiceEntry.Port> Ports, IReadOnlyList<EndpointSliceEntry.Endpoint> Endpoints)
{
    /// <summary><c>namespace/service</c>: the service this slice belongs to.</summary>
    public string ServiceKey => Namespace + "/" + ServiceName;

    /// <summary>Reads an EndpointSlice (discovery.k8s.io/v1); null unless it is an IP slice of a service.</summary>
    public static EndpointSliceEntry? FromJson(JsonElement slice)
    {
        var name = KubeJson.String(slice, "metadata", "name");
        var service = KubeJson.Element(slice, "metadata", "labels") is { ValueKind: JsonValueKind.Object } labels
            && labels.TryGetProperty("kubernetes.io/service-name", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString() : null;
        if (name is null || service is null || KubeJson.String(slice, "addressType") is not ("IPv4" or "IPv6"))
        {
            return null;
        }

        var ports = KubeJson.Array(slice, "ports")
            .Where(p => (KubeJson.String(p, "protocol") ?? "TCP") == "TCP" && KubeJson.Int(p, "port") is > 0)
            .Select(p => new ServiceEntry.Port(KubeJson.String(p, "name") ?? "", KubeJson.Int(p, "port")!.Value))
            .ToList();
        var endpoints = new List<Endpoint>();
        foreach (var endpoint in KubeJson.Array(slice, "endpoints"))
        {
            // Kubernetes: a missing "ready" condition means ready.
            var ready = KubeJson.Element(endpoint, "conditions", "ready") is not { ValueKind: JsonValueKind.False };
            var node = KubeJson.String(endpoint, "nodeName");
            foreach (var address in KubeJson.Array(endpoint, "addresses"))
            {
                if (address.ValueKind == JsonValueKind.String && IPAddress.TryParse(address.GetString(), out var ip))
                {
                    endpoints.Add(new Endpoint(ip, node, ready));
                }
            }
        }

        return new EndpointSliceEntry(KubeJson.String(slice, "metadata", "namespace") ?? "", name, service, ports, endpoints);
    }

    /// <summary>One endpoint address, the node that runs it (when known) and whether it is ready.</summary>
    internal sealed record Endpoint(IPAddress Address, string? NodeName, bool Ready);
}
