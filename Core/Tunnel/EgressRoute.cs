namespace Coracle.Core.Tunnel;

/// <summary>
/// The decision for one CONNECT: dial <see cref="Target"/> directly, open it through <see cref="Node"/>'s tunnel, or
/// refuse with <see cref="Status"/>. <see cref="Reason"/> says why, in words for the log and the HTTP answer.
/// </summary>
internal sealed record EgressRoute(EgressRouteKind Kind, string Target, string? Node, int Status, string Reason)
{
    public static EgressRoute Direct(string target, string reason) => new(EgressRouteKind.Direct, target, null, 200, reason);

    public static EgressRoute Tunnel(string node, string target, string reason) => new(EgressRouteKind.Tunnel, target, node, 200, reason);

    /// <summary>403: the address is not one the proxy may reach.</summary>
    public static EgressRoute Forbidden(string reason) => new(EgressRouteKind.Refuse, "", null, 403, reason);

    /// <summary>502: the address is unreachable for now (no tunnel).</summary>
    public static EgressRoute BadGateway(string reason) => new(EgressRouteKind.Refuse, "", null, 502, reason);

    /// <summary>503: the address may become reachable (a service without a ready endpoint).</summary>
    public static EgressRoute Unavailable(string reason) => new(EgressRouteKind.Refuse, "", null, 503, reason);
}
