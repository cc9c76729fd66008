using System.Text.Json;
using Coracle.Core.Logging;
using Microsoft.Extensions.Logging;

namespace Coracle.Core.Kubernetes;

/// <summary>
/// The cluster roles a server puts in place as soon as kube-apiserver answers, by server-side apply with the admin
/// credentials (field manager <c>coracle</c>), with the <c>ApplianceUpdate</c> CustomResourceDefinition of fleet rollouts. Today one role: <c>system:coracle-controller</c>, the user every node's
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
        // The ApplianceUpdate resource of fleet rollouts (docs/updates.md), before the role that names it.
        ("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", "CustomResourceDefinition", Update.Fleet.ApplianceUpdateResource.CrdName, Update.Fleet.ApplianceUpdateResource.Crd()),
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

                // The service load balancer publishes status.loadBalancer; the in-process ingress reads its Ingresses, their
                // TLS Secrets and IngressClasses, creates its own class and publishes Ingress status.
                new Dictionary<string, object> { ["apiGroups"] = new[] { "" }, ["resources"] = new[] { "services/status" }, ["verbs"] = new[] { "patch", "update" } },
                new Dictionary<string, object> { ["apiGroups"] = new[] { "" }, ["resources"] = new[] { "secrets" }, ["verbs"] = new[] { "get", "list", "watch" } },
                new Dictionary<string, object> { ["apiGroups"] = new[] { "networking.k8s.io" }, ["resources"] = new[] { "ingresses", "ingressclasses" }, ["verbs"] = new[] { "get", "list", "watch" } },
                new Dictionary<string, object> { ["apiGroups"] = new[] { "networking.k8s.io" }, ["resources"] = new[] { "ingresses/status" }, ["verbs"] = new[] { "patch", "update" } },
                new Dictionary<string, object> { ["apiGroups"] = new[] { "networking.k8s.io" }, ["resources"] = new[] { "ingressclasses" }, ["verbs"] = new[] { "create", "patch", "update" } },

                // Fleet rollouts: each node reads the ApplianceUpdates, writes its own line of their status, and drains
                // itself through the Eviction API (node cordon: the nodes patch above).
                new Dictionary<string, object> { ["apiGroups"] = new[] { Update.Fleet.ApplianceUpdateResource.Group }, ["resources"] = new[] { Update.Fleet.ApplianceUpdateResource.Plural }, ["verbs"] = new[] { "get", "list", "watch" } },
                new Dictionary<string, object> { ["apiGroups"] = new[] { Update.Fleet.ApplianceUpdateResource.Group }, ["resources"] = new[] { Update.Fleet.ApplianceUpdateResource.Plural + "/status" }, ["verbs"] = new[] { "get", "update" } },
                new Dictionary<string, object> { ["apiGroups"] = new[] { "" }, ["resources"] = new[] { "pods/eviction" }, ["verbs"] = new[] { "create" } },
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
        using var api = new KubeApi(apiServer, caFile, certFile, keyFile, TimeSpan.FromSeconds(15));
        foreach (var (path, kind, name, body) in Objects)
        {
            var delay = 1;
            while (true)
            {
                var reason = await ApplyOneAsync(api, $"{path}/{Uri.EscapeDataString(name)}", body, cancellationToken);
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

    /// <summary>Server-side apply (field manager <c>coracle</c>); null when accepted, else why not.</summary>
    private static async Task<string?> ApplyOneAsync(KubeApi api, string path, object body, CancellationToken cancellationToken)
    {
        try
        {
            var response = await api.ApplyAsync(path, JsonSerializer.SerializeToNode(body)!, "coracle", cancellationToken);
            return response.IsSuccess ? null : response.Describe();
        }
        catch (KubeApiUnavailableException ex)
        {
            return ex.Message;
        }
    }
}
