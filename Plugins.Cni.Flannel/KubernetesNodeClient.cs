using System.Net;
using System.Runtime.CompilerServices;
using System.Text.Json;
using k8s;
using k8s.Autorest;
using k8s.Models;

namespace Coracle.Plugins.Cni.Flannel;

/// <summary><see cref="INodeClient"/> over kube-apiserver, authenticated by a kubeconfig (the kubelet's by default).</summary>
internal sealed class KubernetesNodeClient : INodeClient, IDisposable
{
    private readonly Kubernetes _client;

    public KubernetesNodeClient(string kubeconfig)
    {
        var config = KubernetesClientConfiguration.BuildConfigFromConfigFile(kubeconfig);
        _client = new Kubernetes(config);
    }

    public async Task<NodeInfo?> GetNodeAsync(string name, CancellationToken cancellationToken)
    {
        try
        {
            var node = await _client.CoreV1.ReadNodeAsync(name, cancellationToken: cancellationToken);
            return ToInfo(node);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    public async Task PatchAnnotationsAsync(string name, IReadOnlyDictionary<string, string> annotations, CancellationToken cancellationToken)
    {
        var body = JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["metadata"] = new Dictionary<string, object> { ["annotations"] = annotations },
        });
        await _client.CoreV1.PatchNodeAsync(new V1Patch(body, V1Patch.PatchType.MergePatch), name, cancellationToken: cancellationToken);
    }

    public async Task<(IReadOnlyList<NodeInfo> Nodes, string ResourceVersion)> ListNodesAsync(CancellationToken cancellationToken)
    {
        var list = await _client.CoreV1.ListNodeAsync(cancellationToken: cancellationToken);
        return (list.Items.Select(ToInfo).ToList(), list.Metadata?.ResourceVersion ?? "");
    }

    public async IAsyncEnumerable<NodeChange> WatchNodesAsync(string resourceVersion, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var changes = _client.CoreV1.WatchListNodeAsync(resourceVersion: resourceVersion, cancellationToken: cancellationToken);
        await foreach (var (type, node) in changes.WithCancellation(cancellationToken))
        {
            switch (type)
            {
                case WatchEventType.Added or WatchEventType.Modified:
                    yield return new NodeChange(false, ToInfo(node));
                    break;
                case WatchEventType.Deleted:
                    yield return new NodeChange(true, ToInfo(node));
                    break;
                case WatchEventType.Error:
                    throw new InvalidOperationException("the node watch returned an error event (resource version expired?)");
                default:
                    break;
            }
        }
    }

    public void Dispose() => _client.Dispose();

    private static NodeInfo ToInfo(V1Node node) => new(
        node.Metadata?.Name ?? "",
        node.Spec?.PodCIDR,
        node.Metadata?.Annotations is { } annotations
            ? new Dictionary<string, string>(annotations, StringComparer.Ordinal)
            : new Dictionary<string, string>(StringComparer.Ordinal));
}
