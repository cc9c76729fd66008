using System.Net;

namespace Coracle.Core.Tunnel;

/// <summary>
/// The egress proxy's view of the cluster, rebuilt from the Node, Service and EndpointSlice watches on every change and
/// read without locks by each CONNECT: nodes by name and address, podCIDRs, service cluster IPs and their endpoints.
/// Immutable.
/// </summary>
internal sealed class EgressTable
{
    private readonly Dictionary<string, NodeEntry> _nodes;
    private readonly Dictionary<IPAddress, string> _nodeByAddress;
    private readonly List<(IPNetwork Cidr, string Node)> _podCidrs;
    private readonly Dictionary<IPAddress, ServiceEntry> _serviceByIp;
    private readonly Dictionary<string, List<EndpointSliceEntry>> _slicesByService;
    private readonly Dictionary<IPAddress, string> _endpointNode;

    private EgressTable(IEnumerable<NodeEntry> nodes, IEnumerable<ServiceEntry> services, IEnumerable<EndpointSliceEntry> slices, bool synced)
    {
        Synced = synced;
        _nodes = new Dictionary<string, NodeEntry>(StringComparer.OrdinalIgnoreCase);
        _nodeByAddress = [];
        _podCidrs = [];
        foreach (var node in nodes)
        {
            _nodes[node.Name] = node;
            foreach (var address in node.Addresses)
            {
                _nodeByAddress[address] = node.Name;
            }

            _podCidrs.AddRange(node.PodCidrs.Select(c => (c, node.Name)));
        }

        _serviceByIp = [];
        foreach (var service in services)
        {
            foreach (var ip in service.ClusterIps)
            {
                _serviceByIp[ip] = service;
            }
        }

        _slicesByService = new Dictionary<string, List<EndpointSliceEntry>>(StringComparer.Ordinal);
        _endpointNode = [];
        foreach (var slice in slices)
        {
            if (!_slicesByService.TryGetValue(slice.ServiceKey, out var list))
            {
                _slicesByService[slice.ServiceKey] = list = [];
            }

            list.Add(slice);
            foreach (var endpoint in slice.Endpoints.Where(e => e.NodeName is not null))
            {
                _endpointNode[endpoint.Address] = endpoint.NodeName!;
            }
        }

        // Longest prefix first, so a more specific podCIDR wins.
        _podCidrs.Sort((a, b) => b.Cidr.PrefixLength.CompareTo(a.Cidr.PrefixLength));
    }

    /// <summary>Nothing known yet (before the first list).</summary>
    public static EgressTable Empty { get; } = new([], [], [], synced: false);

    /// <summary>True once Nodes, Services and EndpointSlices have all been listed.</summary>
    public bool Synced { get; }

    public int NodeCount => _nodes.Count;

    public int ServiceCount => _serviceByIp.Values.Distinct().Count();

    public int EndpointSliceCount => _slicesByService.Values.Sum(l => l.Count);

    public static EgressTable Build(IEnumerable<NodeEntry> nodes, IEnumerable<ServiceEntry> services, IEnumerable<EndpointSliceEntry> slices, bool synced = true) =>
        new(nodes, services, slices, synced);

    /// <summary>True when <paramref name="name"/> is a Node's name.</summary>
    public bool IsNode(string name) => _nodes.ContainsKey(name);

    /// <summary>The node with address <paramref name="ip"/> (InternalIP or ExternalIP), or null.</summary>
    public string? NodeWithAddress(IPAddress ip) => _nodeByAddress.GetValueOrDefault(ip);

    /// <summary>The node whose podCIDR holds <paramref name="ip"/>, or null.</summary>
    public string? NodeWithPodCidr(IPAddress ip)
    {
        foreach (var (cidr, node) in _podCidrs)
        {
            if (cidr.Contains(ip))
            {
                return node;
            }
        }

        return null;
    }

    /// <summary>The node an EndpointSlice says runs the endpoint with address <paramref name="ip"/>, or null.</summary>
    public string? NodeOfEndpoint(IPAddress ip) => _endpointNode.GetValueOrDefault(ip);

    /// <summary>The service whose cluster IP is <paramref name="ip"/>, or null.</summary>
    public ServiceEntry? ServiceWithIp(IPAddress ip) => _serviceByIp.GetValueOrDefault(ip);

    /// <summary>
    /// The ready endpoints (address, target port, node) of <paramref name="service"/>'s port <paramref name="port"/>:
    /// the slices' port of the same name, as kube-proxy pairs them. Empty when the port is unknown or nothing is ready.
    /// </summary>
    public IReadOnlyList<(IPAddress Address, int Port, string? Node)> ReadyEndpoints(ServiceEntry service, int port)
    {
        if (service.Ports.FirstOrDefault(p => p.Number == port) is not { } servicePort || !_slicesByService.TryGetValue(service.Key, out var slices))
        {
            return [];
        }

        var result = new List<(IPAddress, int, string?)>();
        foreach (var slice in slices)
        {
            if (slice.Ports.FirstOrDefault(p => p.Name == servicePort.Name) is not { } target)
            {
                continue;
            }

            result.AddRange(slice.Endpoints.Where(e => e.Ready)
                .Select(e => (e.Address, target.Number, e.NodeName)));
        }

        return result.Distinct().ToList();
    }
}
