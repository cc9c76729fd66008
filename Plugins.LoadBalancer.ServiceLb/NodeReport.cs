using System.Text.Json;
using System.Text.Json.Serialization;

namespace Coracle.Plugins.LoadBalancer.ServiceLb;

/// <summary>
/// A port this node refuses for a Service: what holds it (reason <see cref="Planner.PortConflictReason"/>), a protocol
/// ServiceLB cannot forward (<see cref="Planner.UnsupportedProtocol"/>, no holder), or a port outside the allowed ones
/// (<see cref="Planner.PortNotAllowed"/>; the holder field carries those ports).
/// </summary>
internal sealed record PortConflict(
    [property: JsonPropertyName("service")] string Service,
    [property: JsonPropertyName("port")] string Port,
    [property: JsonPropertyName("holder")] string Holder,
    [property: JsonPropertyName("reason")] string Reason = Planner.PortConflictReason)
{
    /// <summary>The Event message, naming the node, the port and the holder (or the protocol), and the fix.</summary>
    public string Message(string node) => Reason switch
    {
        Planner.UnsupportedProtocol => $"node {node} does not serve this Service: port {Port}: ServiceLB forwards TCP and UDP only; use TCP or UDP, or set spec.loadBalancerClass for another load balancer",
        Planner.PortNotAllowed => $"node {node} does not serve this Service: port {Port} is outside the ports ServiceLB may take ({Holder}, [plugins.servicelb] ports); use a port in them, or widen that setting",
        _ => $"node {node} does not serve this Service: port {Port} is held by {Holder}; free the port there, or keep the Service off the node (label svccontroller.k3s.cattle.io/lbpool)",
    };
}

/// <summary>
/// What a node's controller serves and refuses, kept on its own Node as the annotation <see cref="Annotation"/>: the
/// server's controller, the only writer of Service status, lists a node's address for a Service only when the node
/// reports that it serves it.
/// </summary>
internal sealed record NodeReport(
    [property: JsonPropertyName("serving")] IReadOnlyList<string> Serving,
    [property: JsonPropertyName("conflicts")] IReadOnlyList<PortConflict> Conflicts)
{
    /// <summary>The Node annotation holding the report as JSON.</summary>
    public const string Annotation = "servicelb.coracle.io/report";

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = false };

    public static NodeReport Empty { get; } = new([], []);

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>The report in <paramref name="json"/>; null when it is missing or not a report.</summary>
    public static NodeReport? Parse(string? json)
    {
        if (string.IsNullOrWhiteSpace(json))
        {
            return null;
        }

        try
        {
            var report = JsonSerializer.Deserialize<NodeReport>(json, Json);
            return report is null ? null : report with { Serving = report.Serving ?? [], Conflicts = report.Conflicts ?? [] };
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
