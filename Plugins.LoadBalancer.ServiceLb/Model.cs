namespace Coracle.Plugins.LoadBalancer.ServiceLb;

/// <summary>One port of a Service: its name (may be empty), <c>TCP</c> or <c>UDP</c>, and the port number.</summary>
internal sealed record LbPort(string Name, string Protocol, int Port)
{
    /// <summary><c>8080/TCP</c>.</summary>
    public override string ToString() => $"{Port}/{Protocol}";
}

/// <summary>What ServiceLB reads of a Service.</summary>
internal sealed record LbService
{
    public required string Namespace { get; init; }

    public required string Name { get; init; }

    public string Uid { get; init; } = "";

    /// <summary><c>spec.type</c>.</summary>
    public string Type { get; init; } = "ClusterIP";

    /// <summary><c>spec.loadBalancerClass</c>; null or empty for the default class (ours).</summary>
    public string? LoadBalancerClass { get; init; }

    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();

    public IReadOnlyList<LbPort> Ports { get; init; } = [];

    /// <summary><c>spec.externalTrafficPolicy: Local</c>.</summary>
    public bool LocalTraffic { get; init; }

    public DateTimeOffset Created { get; init; }

    /// <summary>The addresses in <c>status.loadBalancer.ingress</c> now.</summary>
    public IReadOnlyList<string> Ingress { get; init; } = [];

    /// <summary><c>namespace/name</c>.</summary>
    public string Key => Namespace + "/" + Name;

    /// <summary>True when ServiceLB serves it: type LoadBalancer and no other load balancer class.</summary>
    public bool Ours => Type == "LoadBalancer" && string.IsNullOrEmpty(LoadBalancerClass);
}

/// <summary>What ServiceLB reads of a Node, and what that node's controller reported on it.</summary>
internal sealed record LbNode
{
    public required string Name { get; init; }

    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();

    public IReadOnlyList<string> InternalIps { get; init; } = [];

    public IReadOnlyList<string> ExternalIps { get; init; } = [];

    /// <summary>The Ready condition is True.</summary>
    public bool Ready { get; init; } = true;

    /// <summary>The node's own report (annotation <see cref="NodeReport.Annotation"/>); null when it never reported.</summary>
    public NodeReport? Report { get; init; }

    /// <summary>Every address the node's traffic is forwarded from: InternalIPs then ExternalIPs, without duplicates.</summary>
    public IReadOnlyList<string> Addresses => InternalIps.Concat(ExternalIps).Distinct(StringComparer.Ordinal).ToList();
}

/// <summary>One ready endpoint of a Service port: the pod's address and port, and its node.</summary>
internal sealed record LbBackend(string Ip, int Port, string? NodeName);
