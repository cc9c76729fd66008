using Coracle.Core.Configuration;

namespace Coracle.Core.Tunnel;

/// <summary>The <c>egress-selector-mode</c> setting's values.</summary>
internal static class EgressModes
{
    /// <summary>The mode named by <paramref name="text"/> (agent, pod, cluster, disabled; any case).</summary>
    public static EgressMode Parse(string text) => text.ToLowerInvariant() switch
    {
        "agent" => EgressMode.Agent,
        "pod" => EgressMode.Pod,
        "cluster" => EgressMode.Cluster,
        "disabled" => EgressMode.Disabled,
        _ => throw new ArgumentException($"'{text}' is not an egress selector mode; use agent, pod, cluster or disabled", nameof(text)),
    };

    /// <summary>The configured mode (K3s's default, agent, when the configuration does not say).</summary>
    public static EgressMode From(CoracleConfig config) =>
        config.Sources.TryGetValue(Settings.EgressSelectorMode, out var value) && value.Value is string text ? Parse(text) : EgressMode.Agent;

    /// <summary>The setting's spelling of <paramref name="mode"/>.</summary>
    public static string Name(EgressMode mode) => mode.ToString().ToLowerInvariant();

    /// <summary>One line saying what the mode sends where, for the log.</summary>
    public static string Describe(EgressMode mode) => mode switch
    {
        EgressMode.Agent => "kubelets of other nodes through their tunnels; pods and services dialled from this server",
        EgressMode.Pod => "kubelets and pods of other nodes through their tunnels (pods by podCIDR); services dialled from this server",
        EgressMode.Cluster => "kubelets, pods and Service IPs (resolved to a ready endpoint) through the tunnel of the node that runs them",
        _ => "no egress selector: kube-apiserver dials directly",
    };
}
