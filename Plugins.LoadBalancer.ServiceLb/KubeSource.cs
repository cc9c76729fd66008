using System.Net;
using System.Text.Json;
using k8s;
using k8s.Autorest;
using k8s.Models;

namespace Coracle.Plugins.LoadBalancer.ServiceLb;

/// <summary>What one pass reads from Kubernetes.</summary>
internal sealed record ClusterView(
    IReadOnlyList<LbNode> Nodes,
    IReadOnlyList<LbService> Services,
    IReadOnlyDictionary<(string Service, string Port, string Protocol), IReadOnlyList<LbBackend>> Backends)
{
    /// <summary>The ready endpoints of one Service port.</summary>
    public IReadOnlyList<LbBackend> For(LbService service, LbPort port) =>
        Backends.TryGetValue((service.Key, port.Name, port.Protocol), out var list) ? list : [];
}

/// <summary>ServiceLB's access to kube-apiserver, as <c>system:coracle-controller</c>.</summary>
internal sealed class KubeSource : IDisposable
{
    private readonly Kubernetes _client;

    public KubeSource(string kubeconfig)
    {
        _client = new Kubernetes(KubernetesClientConfiguration.BuildConfigFromConfigFile(kubeconfig));
    }

    public async Task<ClusterView> ReadAsync(CancellationToken cancellationToken)
    {
        var nodes = await _client.CoreV1.ListNodeAsync(cancellationToken: cancellationToken);
        var services = await _client.CoreV1.ListServiceForAllNamespacesAsync(cancellationToken: cancellationToken);
        var slices = await _client.DiscoveryV1.ListEndpointSliceForAllNamespacesAsync(cancellationToken: cancellationToken);
        return new ClusterView(nodes.Items.Select(ToNode).ToList(), services.Items.Select(ToService).ToList(), Backends(slices.Items));
    }

    /// <summary>Sets (or, with null, removes) the report annotation on <paramref name="node"/>.</summary>
    public async Task PatchReportAsync(string node, string? json, CancellationToken cancellationToken)
    {
        var body = JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["metadata"] = new Dictionary<string, object> { ["annotations"] = new Dictionary<string, string?> { [NodeReport.Annotation] = json } },
        });
        await _client.CoreV1.PatchNodeAsync(new V1Patch(body, V1Patch.PatchType.MergePatch), node, cancellationToken: cancellationToken);
    }

    /// <summary>Replaces <c>status.loadBalancer.ingress</c> with <paramref name="addresses"/> (ipMode Proxy: ServiceLB's rules carry the traffic).</summary>
    public async Task PatchStatusAsync(LbService service, IReadOnlyList<string> addresses, CancellationToken cancellationToken)
    {
        var body = JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["status"] = new Dictionary<string, object>
            {
                ["loadBalancer"] = new Dictionary<string, object>
                {
                    ["ingress"] = addresses.Select(a => new Dictionary<string, string> { ["ip"] = a, ["ipMode"] = "Proxy" }).ToList(),
                },
            },
        });
        try
        {
            await _client.CoreV1.PatchNamespacedServiceStatusAsync(new V1Patch(body, V1Patch.PatchType.MergePatch), service.Name, service.Namespace, cancellationToken: cancellationToken);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            // Deleted since the pass read it.
        }
    }

    /// <summary>A Warning Event on the Service.</summary>
    public async Task EventAsync(LbService service, string node, string reason, string message, CancellationToken cancellationToken)
    {
        var now = DateTime.UtcNow;
        var ev = new Corev1Event
        {
            Metadata = new V1ObjectMeta { GenerateName = service.Name + ".", NamespaceProperty = service.Namespace },
            InvolvedObject = new V1ObjectReference { ApiVersion = "v1", Kind = "Service", Name = service.Name, NamespaceProperty = service.Namespace, Uid = service.Uid },
            Reason = reason,
            Message = message,
            Type = "Warning",
            Source = new V1EventSource { Component = "coracle-servicelb", Host = node },
            ReportingComponent = "coracle-servicelb",
            ReportingInstance = node,
            FirstTimestamp = now,
            LastTimestamp = now,
            Count = 1,
        };
        await _client.CoreV1.CreateNamespacedEventAsync(ev, service.Namespace, cancellationToken: cancellationToken);
    }

    public void Dispose() => _client.Dispose();

    private static LbNode ToNode(V1Node node)
    {
        var addresses = node.Status?.Addresses ?? [];
        return new LbNode
        {
            Name = node.Metadata?.Name ?? "",
            Labels = Copy(node.Metadata?.Labels),
            // IPv4 only: the rules are iptables (not ip6tables) rules.
            InternalIps = addresses.Where(a => a.Type == "InternalIP" && IsIpv4(a.Address)).Select(a => a.Address).ToList(),
            ExternalIps = addresses.Where(a => a.Type == "ExternalIP" && IsIpv4(a.Address)).Select(a => a.Address).ToList(),
            Ready = node.Status?.Conditions?.Any(c => c.Type == "Ready" && c.Status == "True") ?? false,
            Report = NodeReport.Parse(node.Metadata?.Annotations is { } a && a.TryGetValue(NodeReport.Annotation, out var json) ? json : null),
        };
    }

    private static LbService ToService(V1Service service) => new()
    {
        Namespace = service.Metadata?.NamespaceProperty ?? "",
        Name = service.Metadata?.Name ?? "",
        Uid = service.Metadata?.Uid ?? "",
        Type = service.Spec?.Type ?? "ClusterIP",
        LoadBalancerClass = service.Spec?.LoadBalancerClass,
        Labels = Copy(service.Metadata?.Labels),
        Ports = (service.Spec?.Ports ?? []).Select(p => new LbPort(p.Name ?? "", (p.Protocol ?? "TCP").ToUpperInvariant(), p.Port)).ToList(),
        LocalTraffic = service.Spec?.ExternalTrafficPolicy == "Local",
        Created = service.Metadata?.CreationTimestamp is { } t ? new DateTimeOffset(DateTime.SpecifyKind(t, DateTimeKind.Utc)) : DateTimeOffset.MinValue,
        Ingress = (service.Status?.LoadBalancer?.Ingress ?? []).Select(i => i.Ip ?? i.Hostname ?? "").Where(a => a.Length > 0).ToList(),
    };

    /// <summary>Ready endpoints by (service key, port name, protocol) from the slices labelled <c>kubernetes.io/service-name</c>.</summary>
    private static Dictionary<(string, string, string), IReadOnlyList<LbBackend>> Backends(IEnumerable<V1EndpointSlice> slices)
    {
        var map = new Dictionary<(string, string, string), List<LbBackend>>();
        foreach (var slice in slices)
        {
            if (slice.Metadata?.Labels is not { } labels || !labels.TryGetValue("kubernetes.io/service-name", out var service)
                || slice.AddressType != "IPv4")
            {
                continue;
            }

            var key = slice.Metadata.NamespaceProperty + "/" + service;
            foreach (var port in slice.Ports ?? [])
            {
                if (port.Port is not { } number)
                {
                    continue;
                }

                var entry = (key, port.Name ?? "", (port.Protocol ?? "TCP").ToUpperInvariant());
                if (!map.TryGetValue(entry, out var list))
                {
                    map[entry] = list = [];
                }

                foreach (var endpoint in slice.Endpoints ?? [])
                {
                    if (endpoint.Conditions?.Ready == false)
                    {
                        continue;
                    }

                    list.AddRange(endpoint.Addresses.Select(a => new LbBackend(a, number, endpoint.NodeName)));
                }
            }
        }

        return map.ToDictionary(kv => kv.Key, kv => (IReadOnlyList<LbBackend>)kv.Value.DistinctBy(b => (b.Ip, b.Port)).ToList());
    }

    private static bool IsIpv4(string address) =>
        IPAddress.TryParse(address, out var ip) && ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork;

    private static Dictionary<string, string> Copy(IDictionary<string, string>? labels) =>
        labels is null ? new Dictionary<string, string>(StringComparer.Ordinal) : new Dictionary<string, string>(labels, StringComparer.Ordinal);
}
