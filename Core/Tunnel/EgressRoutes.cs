using System.Globalization;
using System.Net;

namespace Coracle.Core.Tunnel;

/// <summary>
/// The egress proxy's routing rule: for a CONNECT <c>host:port</c> and the current <see cref="EgressTable"/>, where the
/// connection goes in this server's <see cref="EgressMode"/>. Pure (no I/O), so every CONNECT decides in memory.
/// <list type="number">
/// <item>loopback, and this server's own node names and addresses: dialled directly;</item>
/// <item>another node's name or address (its kubelet): that node's tunnel (the agent connects its own loopback);</item>
/// <item>a pod address (in a node's podCIDR, or an EndpointSlice endpoint): dialled from this server in <c>agent</c>
/// mode, else through the tunnel of the node that runs it (directly when that is this server's node);</item>
/// <item>a Service cluster IP with that port: dialled from this server (kube-proxy) in <c>agent</c> and <c>pod</c> modes;
/// in <c>cluster</c> mode resolved to one ready endpoint, routed like a pod;</item>
/// <item>anything else: refused (403), so the proxy never opens a way into other networks; before the first lists of
/// the watches, an address that is not a node with a tunnel is answered 502 (no tunnel).</item>
/// </list>
/// </summary>
internal sealed class EgressRoutes
{
    private readonly HashSet<string> _localNames;
    private int _next;

    /// <param name="mode">The egress selector mode.</param>
    /// <param name="localNode">This server's node name.</param>
    /// <param name="localNames">This server's names and addresses (node name, node IPs).</param>
    public EgressRoutes(EgressMode mode, string localNode, IEnumerable<string> localNames)
    {
        Mode = mode;
        LocalNode = localNode;
        _localNames = new HashSet<string>(localNames.Append(localNode), StringComparer.OrdinalIgnoreCase);
    }

    public EgressMode Mode { get; }

    public string LocalNode { get; }

    /// <summary>The route of <c>CONNECT host:port</c>.</summary>
    /// <param name="table">What the watches know of the cluster.</param>
    /// <param name="host">The CONNECT host: a name or an IP (IPv6 with or without brackets).</param>
    /// <param name="port">The CONNECT port.</param>
    /// <param name="tunnelNode">The node with an open tunnel whose name or address is the host, or null.</param>
    public EgressRoute Decide(EgressTable table, string host, int port, Func<string, string?> tunnelNode)
    {
        host = host.Trim('[', ']');
        var target = Join(host, port);
        var isIp = IPAddress.TryParse(host, out var ip);
        if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase) || (isIp && IPAddress.IsLoopback(ip!)))
        {
            return EgressRoute.Direct(target, "loopback");
        }

        if (_localNames.Contains(host))
        {
            return EgressRoute.Direct(target, $"this server's node {LocalNode}");
        }

        var node = isIp ? table.NodeWithAddress(ip!) ?? tunnelNode(host) : table.IsNode(host) ? host : tunnelNode(host);
        if (node is not null)
        {
            return IsLocal(node)
                ? EgressRoute.Direct(target, $"this server's node {LocalNode}")
                : EgressRoute.Tunnel(node, target, $"node {node} (its kubelet or a host port; the agent connects it on its loopback)");
        }

        if (!table.Synced)
        {
            // Before the first lists only nodes with a tunnel are known; the address may be one that has not connected.
            return EgressRoute.BadGateway($"no tunnel to {host}: the node is not connected");
        }

        if (!isIp)
        {
            return EgressRoute.Forbidden($"{host} is not a node of this cluster; the egress proxy reaches nodes, pods and services only");
        }

        var podNode = table.NodeWithPodCidr(ip!);
        var endpointNode = table.NodeOfEndpoint(ip!);
        if (podNode is not null || endpointNode is not null)
        {
            return PodRoute(ip!, port, podNode, endpointNode, $"pod {host}");
        }

        if (table.ServiceWithIp(ip!) is { } service)
        {
            return ServiceRoute(table, service, target, port);
        }

        return EgressRoute.Forbidden($"{host} is neither a node, a pod (no node's podCIDR holds it) nor a service cluster IP of this cluster");
    }

    private EgressRoute ServiceRoute(EgressTable table, ServiceEntry service, string target, int port)
    {
        if (service.Ports.All(p => p.Number != port))
        {
            return EgressRoute.Forbidden($"service {service.Key} has no TCP port {port}");
        }

        if (Mode != EgressMode.Cluster)
        {
            return EgressRoute.Direct(target, $"service {service.Key}, dialled from this server (kube-proxy; egress-selector-mode {EgressModes.Name(Mode)})");
        }

        var endpoints = table.ReadyEndpoints(service, port);
        if (endpoints.Count == 0)
        {
            return EgressRoute.Unavailable($"service {service.Key} port {port} has no ready endpoint");
        }

        var (address, targetPort, node) = endpoints[(int)((uint)Interlocked.Increment(ref _next) % (uint)endpoints.Count)];
        return PodRoute(address, targetPort, table.NodeWithPodCidr(address), node, $"service {service.Key} endpoint {Join(address.ToString(), targetPort)}");
    }

    private EgressRoute PodRoute(IPAddress ip, int port, string? podCidrNode, string? endpointNode, string what)
    {
        var target = Join(ip.ToString(), port);
        var node = Mode switch
        {
            EgressMode.Pod => podCidrNode,
            EgressMode.Cluster => podCidrNode ?? endpointNode,
            _ => null,
        };
        if (Mode is not (EgressMode.Pod or EgressMode.Cluster))
        {
            return EgressRoute.Direct(target, $"{what}, dialled from this server (egress-selector-mode {EgressModes.Name(Mode)})");
        }

        if (node is null)
        {
            return EgressRoute.Direct(target, $"{what} outside every podCIDR, dialled from this server");
        }

        return IsLocal(node)
            ? EgressRoute.Direct(target, $"{what} on this server's node {LocalNode}")
            : EgressRoute.Tunnel(node, target, $"{what} on node {node}");
    }

    private bool IsLocal(string node) => node.Equals(LocalNode, StringComparison.OrdinalIgnoreCase);

    private static string Join(string host, int port) =>
        string.Create(CultureInfo.InvariantCulture, $"{(host.Contains(':', StringComparison.Ordinal) ? "[" + host + "]" : host)}:{port}");
}
