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

/// <summary>
/// A server that joins another (<c>POST /v1/server-join</c>, server token only): its node name, the settings that must be
/// the same on every server of a cluster (checked by the serving server before anything changes), and its datastore's
/// peer URLs when the datastore is a cluster (embedded etcd).
/// </summary>
internal sealed record ServerJoinRequest
{
    [JsonPropertyName("nodeName")] public string? NodeName { get; init; }
    [JsonPropertyName("datastore")] public string? Datastore { get; init; }
    [JsonPropertyName("peerUrls")] public IReadOnlyList<string>? PeerUrls { get; init; }

    /// <summary>The joining server's value of each setting that must match, by flag (<c>cluster-cidr</c> → <c>10.42.0.0/16</c>).</summary>
    [JsonPropertyName("settings")] public Dictionary<string, string>? Settings { get; init; }
}

/// <summary>A CA certificate with its private key (PEM).</summary>
internal sealed record CaPair([property: JsonPropertyName("cert")] string Cert, [property: JsonPropertyName("key")] string Key);

/// <summary>
/// What a joining server receives: the cluster CAs with their keys, the service-account signing key, the secrets
/// encryption configuration (null when the cluster has none), the server token, the cluster's configuration (as agents
/// get it) and what the datastore plugin's <c>AddMemberAsync</c> returned (empty for a shared SQL database).
/// </summary>
internal sealed record ServerJoinResponse
{
    [JsonPropertyName("cas")] public required Dictionary<string, CaPair> Cas { get; init; }
    [JsonPropertyName("serviceAccountKey")] public required string ServiceAccountKey { get; init; }
    [JsonPropertyName("encryptionConfig")] public string? EncryptionConfig { get; init; }
    [JsonPropertyName("token")] public required string Token { get; init; }
    [JsonPropertyName("cluster")] public required ClusterConfigResponse Cluster { get; init; }
    [JsonPropertyName("datastore")] public required string Datastore { get; init; }
    [JsonPropertyName("datastoreJoin")] public Dictionary<string, string> DatastoreJoin { get; init; } = [];
}

/// <summary>One setting of a joining server that differs from the cluster's (<c>409</c>), by flag.</summary>
internal sealed record SettingMismatch([property: JsonPropertyName("flag")] string Flag, [property: JsonPropertyName("message")] string Message);

/// <summary>The <c>409</c> body of <c>/v1/server-join</c>: one line, and each setting that must change, by flag.</summary>
internal sealed record ServerJoinRefusal(
    [property: JsonPropertyName("error")] string Error,
    [property: JsonPropertyName("mismatches")] IReadOnlyList<SettingMismatch> Mismatches);
