using System.Text.Json.Serialization;

namespace Coracle.Core.Join;

/// <summary>What the server tells a joining agent (<c>GET /v1/config</c>).</summary>
internal sealed record ClusterConfigResponse
{
    [JsonPropertyName("clusterCidr")] public required string ClusterCidr { get; init; }
    [JsonPropertyName("serviceCidr")] public required string ServiceCidr { get; init; }
    [JsonPropertyName("clusterDns")] public required string ClusterDns { get; init; }
    [JsonPropertyName("clusterDomain")] public required string ClusterDomain { get; init; }
    /// <summary>The server's values of the plugin settings declared cluster-wide, by plugin then key (K3s's <c>--flannel-backend</c>).</summary>
    [JsonPropertyName("pluginSettings")] public Dictionary<string, Dictionary<string, string>> PluginSettings { get; init; } = [];
    [JsonPropertyName("serverUrl")] public required string ServerUrl { get; init; }
    [JsonPropertyName("serverNodeName")] public required string ServerNodeName { get; init; }
    [JsonPropertyName("podCidr")] public string? PodCidr { get; init; }

    /// <summary>The server runs no cloud-node controller (<c>--disable-cloud-controller</c>): kubelets run without <c>--cloud-provider=external</c>.</summary>
    [JsonPropertyName("disableCloudController")] public bool DisableCloudController { get; init; }

    /// <summary>The service load balancer plugin the server runs (its agents run the same one); empty for none.</summary>
    [JsonPropertyName("loadBalancer")] public string LoadBalancer { get; init; } = "";

    /// <summary>The ingress plugin the server runs (its agents run the same one: an in-process ingress serves on every node); empty for none.</summary>
    [JsonPropertyName("ingress")] public string Ingress { get; init; } = "";
}

/// <summary>An agent's CSRs (<c>POST /v1/certificates</c>); its private keys stay on the agent.</summary>
internal sealed record CertificatesRequest
{
    /// <summary>The role the node joins with: <c>agent</c> (also when absent) is the only one granted.</summary>
    [JsonPropertyName("role")] public string? Role { get; init; }
    [JsonPropertyName("nodeName")] public string? NodeName { get; init; }
    /// <summary>The agent's node password (<c>DATA/agent/node-password</c>); the server keeps its hash per node name.</summary>
    [JsonPropertyName("nodePassword")] public string? NodePassword { get; init; }
    [JsonPropertyName("nodeIps")] public IReadOnlyList<string>? NodeIps { get; init; }
    [JsonPropertyName("kubeletServingCsr")] public string? KubeletServingCsr { get; init; }
    [JsonPropertyName("kubeletClientCsr")] public string? KubeletClientCsr { get; init; }
    [JsonPropertyName("kubeProxyClientCsr")] public string? KubeProxyClientCsr { get; init; }
    [JsonPropertyName("controllerClientCsr")] public string? ControllerClientCsr { get; init; }
}

/// <summary>The signed certificates and the CAs an agent needs.</summary>
internal sealed record CertificatesResponse
{
    [JsonPropertyName("kubeletServing")] public required string KubeletServing { get; init; }
    [JsonPropertyName("kubeletClient")] public required string KubeletClient { get; init; }
    [JsonPropertyName("kubeProxyClient")] public required string KubeProxyClient { get; init; }
    [JsonPropertyName("controllerClient")] public required string ControllerClient { get; init; }
    [JsonPropertyName("serverCa")] public required string ServerCa { get; init; }
    [JsonPropertyName("clientCa")] public required string ClientCa { get; init; }
}

/// <summary>Every 4xx/5xx body of the join API.</summary>
internal sealed record ErrorResponse([property: JsonPropertyName("error")] string Error);
