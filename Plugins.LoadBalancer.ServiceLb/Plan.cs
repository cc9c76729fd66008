using System.Net;

namespace Coracle.Plugins.LoadBalancer.ServiceLb;

/// <summary>One forwarding this node installs: traffic to <see cref="NodeIp"/>:<see cref="Port"/> goes to the backends.</summary>
internal sealed record Forward(string Service, string PortName, string Protocol, string NodeIp, int Port, IReadOnlyList<LbBackend> Backends, bool Masquerade);

/// <summary>A node's wanted state: its forwards, what it serves, what it refuses.</summary>
internal sealed record NodePlan(IReadOnlyList<Forward> Forwards, NodeReport Report)
{
    /// <summary><c>3 services, 5 ports; 1 conflict</c> for <c>coracle status</c>.</summary>
    public string Describe()
    {
        var ports = Forwards.Select(f => (f.Service, f.Protocol, f.Port)).Distinct().Count();
        var text = $"{Report.Serving.Count} service{(Report.Serving.Count == 1 ? "" : "s")}, {ports} port{(ports == 1 ? "" : "s")}";
        return Report.Conflicts.Count == 0 ? text : $"{text}; {Report.Conflicts.Count} conflict{(Report.Conflicts.Count == 1 ? "" : "s")}";
    }
}

/// <summary>
/// ServiceLB's decisions, K3s's servicelb semantics without its per-service pods. Pure: the controller feeds it what it
/// read from Kubernetes and /proc.
/// </summary>
internal static class Planner
{
    /// <summary>On a node: only nodes labelled <c>=true</c> serve once any node carries it (K3s).</summary>
    public const string EnableLabel = "svccontroller.k3s.cattle.io/enablelb";

    /// <summary>On a Service: served only by nodes with the same label and value (K3s's pools); on a node: its pool.</summary>
    public const string PoolLabel = "svccontroller.k3s.cattle.io/lbpool";

    /// <summary>The Event reason of a port that something on the node (or an older Service) holds.</summary>
    public const string PortConflictReason = "PortConflict";

    /// <summary>The Event reason of a port whose protocol ServiceLB cannot forward (SCTP).</summary>
    public const string UnsupportedProtocol = "UnsupportedProtocol";

    /// <summary>The Event reason of a port outside the ones ServiceLB may take (<see cref="PortRanges"/>).</summary>
    public const string PortNotAllowed = "PortNotAllowed";

    /// <summary>
    /// True when <paramref name="node"/> may serve <paramref name="service"/> before ports are looked at: the Service is
    /// ours (type LoadBalancer, no other loadBalancerClass); the node is Ready; it is labelled enablelb=true when any node
    /// is; it is in the Service's pool when the Service names one; and, with <c>externalTrafficPolicy: Local</c>, it has
    /// a ready endpoint of the Service.
    /// </summary>
    public static bool Eligible(LbService service, LbNode node, IReadOnlyList<LbNode> nodes, IReadOnlyList<LbBackend> backends)
    {
        if (!service.Ours || !node.Ready || node.Addresses.Count == 0)
        {
            return false;
        }

        if (nodes.Any(n => IsTrue(n.Labels, EnableLabel)) && !IsTrue(node.Labels, EnableLabel))
        {
            return false;
        }

        if (service.Labels.TryGetValue(PoolLabel, out var pool) && (!node.Labels.TryGetValue(PoolLabel, out var nodePool) || nodePool != pool))
        {
            return false;
        }

        return !service.LocalTraffic || backends.Any(b => b.NodeName == node.Name);
    }

    /// <summary>
    /// What <paramref name="self"/> installs. Services are taken oldest first (then by name): a port that a listening socket
    /// on the node's addresses or an older Service already holds is refused for the whole Service on this node, with the
    /// holder named; so is a port outside <paramref name="allowed"/> (every port when null). <paramref name="backends"/> gives a Service port's ready endpoints by <c>(service key, port name, protocol)</c>.
    /// </summary>
    public static NodePlan For(
        LbNode self,
        IReadOnlyList<LbNode> nodes,
        IReadOnlyList<LbService> services,
        Func<LbService, LbPort, IReadOnlyList<LbBackend>> backends,
        IReadOnlyList<Listener> listeners,
        Func<Listener, Listener>? owner = null,
        PortRanges? allowed = null)
    {
        allowed ??= PortRanges.All;
        ArgumentNullException.ThrowIfNull(self);
        var forwards = new List<Forward>();
        var serving = new List<string>();
        var conflicts = new List<PortConflict>();
        var held = new Dictionary<(string Protocol, int Port), string>();
        foreach (var service in services.Where(s => s.Ours).OrderBy(s => s.Created).ThenBy(s => s.Key, StringComparer.Ordinal))
        {
            var all = service.Ports.SelectMany(p => backends(service, p)).ToList();
            if (!Eligible(service, self, nodes, all))
            {
                continue;
            }

            var refused = new List<PortConflict>();
            foreach (var port in service.Ports.Distinct())
            {
                if (port.Protocol is not ("TCP" or "UDP"))
                {
                    refused.Add(new PortConflict(service.Key, port.ToString(), "", UnsupportedProtocol));
                }
                else if (!allowed.Contains(port.Port))
                {
                    refused.Add(new PortConflict(service.Key, port.ToString(), allowed.ToString(), PortNotAllowed));
                }
                else if (held.TryGetValue((port.Protocol, port.Port), out var other))
                {
                    refused.Add(new PortConflict(service.Key, port.ToString(), $"service {other}"));
                }
                else if (PortProbe.Holder(listeners, port.Protocol, port.Port, self.Addresses) is { } listener)
                {
                    refused.Add(new PortConflict(service.Key, port.ToString(), (owner?.Invoke(listener) ?? listener).Describe()));
                }
            }

            if (refused.Count > 0)
            {
                conflicts.AddRange(refused);
                continue;
            }

            serving.Add(service.Key);
            foreach (var port in service.Ports.Distinct())
            {
                held[(port.Protocol, port.Port)] = service.Key;
                var targets = backends(service, port).Where(b => !service.LocalTraffic || b.NodeName == self.Name).ToList();
                foreach (var ip in self.Addresses)
                {
                    forwards.Add(new Forward(service.Key, port.Name, port.Protocol, ip, port.Port, targets, Masquerade: !service.LocalTraffic));
                }
            }
        }

        serving.Sort(StringComparer.Ordinal);
        return new NodePlan(forwards, new NodeReport(serving, conflicts));
    }

    /// <summary>
    /// <c>status.loadBalancer.ingress</c> of <paramref name="service"/>: for every node that reports serving it, its first
    /// ExternalIP, else its first InternalIP; sorted by address. Empty for a Service that is not ours.
    /// </summary>
    public static IReadOnlyList<string> StatusAddresses(LbService service, IReadOnlyList<LbNode> nodes)
    {
        ArgumentNullException.ThrowIfNull(service);
        if (!service.Ours)
        {
            return [];
        }

        return nodes
            .Where(n => n.Ready && n.Report is { } r && r.Serving.Contains(service.Key, StringComparer.Ordinal))
            .Select(n => n.ExternalIps.Count > 0 ? n.ExternalIps[0] : n.InternalIps.Count > 0 ? n.InternalIps[0] : null)
            .OfType<string>()
            .Distinct(StringComparer.Ordinal)
            .OrderBy(a => IPAddress.TryParse(a, out var ip) ? ip.GetAddressBytes() : [], ByteOrder.Instance)
            .ThenBy(a => a, StringComparer.Ordinal)
            .ToList();
    }

    private static bool IsTrue(IReadOnlyDictionary<string, string> labels, string key) =>
        labels.TryGetValue(key, out var value) && string.Equals(value, "true", StringComparison.OrdinalIgnoreCase);

    private sealed class ByteOrder : IComparer<byte[]>
    {
        public static ByteOrder Instance { get; } = new();

        public int Compare(byte[]? x, byte[]? y)
        {
            x ??= [];
            y ??= [];
            if (x.Length != y.Length)
            {
                return x.Length.CompareTo(y.Length);
            }

            for (var i = 0; i < x.Length; i++)
            {
                if (x[i] != y[i])
                {
                    return x[i].CompareTo(y[i]);
                }
            }

            return 0;
        }
    }
}
