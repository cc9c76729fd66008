using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Coracle.Core.Hosting;
using Coracle.Core.Logging;
using Microsoft.Extensions.Logging;

namespace Coracle.Core.Kubernetes;

/// <summary>
/// The cluster roles a server puts in place as soon as kube-apiserver answers, by server-side apply with the admin
/// credentials (field manager <c>coracle</c>). Today one: <c>system:coracle-controller</c>, the user every node's
/// in-process controllers (the CNI's subnet leases, the service load balancer) act as. Kubernetes 1.32's node
/// authorizer lets a kubelet's own credentials read only its own Node, so these controllers need a role of their own,
/// as K3s gives its agents' <c>system:k3s-controller</c>.
/// </summary>
internal static class ClusterRbac
{
    /// <summary>The user (certificate common name) of the node controllers' credentials.</summary>
    public const string ControllerUser = "system:coracle-controller";

    /// <summary>The objects applied: API path (without the name) and the object.</summary>
    public static IReadOnlyList<(string Path, string Kind, string Name, object Body)> Objects { get; } =
    [
        ("/apis/rbac.authorization.k8s.io/v1/clusterroles", "ClusterRole", ControllerUser, new Dictionary<string, object>
        {
            ["apiVersion"] = "rbac.authorization.k8s.io/v1",
            ["kind"] = "ClusterRole",
            ["metadata"] = new Dictionary<string, object> { ["name"] = ControllerUser, ["labels"] = new Dictionary<string, string> { ["app.kubernetes.io/managed-by"] = "coracle" } },
            ["rules"] = new object[]
            {
                new Dictionary<string, object> { ["apiGroups"] = new[] { "" }, ["resources"] = new[] { "nodes" }, ["verbs"] = new[] { "get", "list", "watch", "patch", "update" } },
                new Dictionary<string, object> { ["apiGroups"] = new[] { "" }, ["resources"] = new[] { "nodes/status" }, ["verbs"] = new[] { "patch", "update" } },
                new Dictionary<string, object> { ["apiGroups"] = new[] { "" }, ["resources"] = new[] { "services", "endpoints", "pods" }, ["verbs"] = new[] { "get", "list", "watch" } },
                new Dictionary<string, object> { ["apiGroups"] = new[] { "discovery.k8s.io" }, ["resources"] = new[] { "endpointslices" }, ["verbs"] = new[] { "get", "list", "watch" } },
                new Dictionary<string, object> { ["apiGroups"] = new[] { "" }, ["resources"] = new[] { "events" }, ["verbs"] = new[] { "create", "patch" } },
            },
        }),
        ("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", "ClusterRoleBinding", ControllerUser, new Dictionary<string, object>
        {
            ["apiVersion"] = "rbac.authorization.k8s.io/v1",
            ["kind"] = "ClusterRoleBinding",
            ["metadata"] = new Dictionary<string, object> { ["name"] = ControllerUser, ["labels"] = new Dictionary<string, string> { ["app.kubernetes.io/managed-by"] = "coracle" } },
            ["roleRef"] = new Dictionary<string, string> { ["apiGroup"] = "rbac.authorization.k8s.io", ["kind"] = "ClusterRole", ["name"] = ControllerUser },
            ["subjects"] = new object[] { new Dictionary<string, string> { ["apiGroup"] = "rbac.authorization.k8s.io", ["kind"] = "User", ["name"] = ControllerUser } },
        }),
    ];

    /// <summary>Applies every object, retrying each until kube-apiserver accepts it; then returns.</summary>
    public static async Task ApplyAsync(Uri apiServer, string caFile, string certFile, string keyFile, ILogger log, TimeProvider time, CancellationToken cancellationToken)
    {
        using var handler = TlsClient.Configure(new SocketsHttpHandler(), caFile, certFile, keyFile);
        using var client = new HttpClient(handler) { BaseAddress = apiServer, Timeout = TimeSpan.FromSeconds(15) };
        foreach (var (path, kind, name, body) in Objects)
        {
            var delay = 1;
            while (true)
            {
                var reason = await ApplyOneAsync(client, path, name, body, cancellationToken);
                if (reason is null)
                {
                    log.RbacApplied(kind, name);
                    break;
                }

                log.RbacRetry(kind, name, reason, delay);
                await Task.Delay(TimeSpan.FromSeconds(delay), time, cancellationToken);
                delay = Math.Min(delay * 2, 30);
            }
        }
    }

    private static async Task<string?> ApplyOneAsync(HttpClient client, string path, string name, object body, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Patch, string.Create(CultureInfo.InvariantCulture, $"{path}/{Uri.EscapeDataString(name)}?fieldManager=coracle&force=true"))
        {
            Content = new StringContent(JsonSerializer.Serialize(body), Encoding.UTF8),
        };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/apply-patch+yaml");
        try
        {
            using var response = await client.SendAsync(request, cancellationToken);
            if (response.IsSuccessStatusCode)
            {
                return null;
            }

            var text = await response.Content.ReadAsStringAsync(cancellationToken);
            return $"HTTP {(int)response.StatusCode}: {(text.Length > 300 ? text[..300] : text)}";
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
        {
            return ex.Message;
        }
    }
}
