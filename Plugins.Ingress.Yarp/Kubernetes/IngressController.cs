using System.Net;
using System.Text.Json;
using System.Threading.Channels;
using Coracle.Plugins.Ingress.Yarp.Proxy;
using Coracle.Plugins.Ingress.Yarp.Routing;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Microsoft.Extensions.Logging;

namespace Coracle.Plugins.Ingress.Yarp.Kubernetes;

/// <summary>What the controller needs besides the proxy.</summary>
/// <param name="Kubeconfig">The controller kubeconfig (user system:coracle-controller).</param>
/// <param name="NodeName">This node, for its addresses and as the Events' reporting instance.</param>
/// <param name="NodeIps">Addresses the operator gave (<c>--node-ip</c>); used when the Node object lists none.</param>
/// <param name="Class">The ingress class served.</param>
/// <param name="CreateClass">True on the node that creates the IngressClass and alone writes Ingress status and Events (the server).</param>
/// <param name="Report">Receives the one-line status detail.</param>
internal sealed record ControllerOptions(
    string Kubeconfig, string NodeName, IReadOnlyList<string> NodeIps, ClassSelection Class, bool CreateClass, Action<string> Report);

/// <summary>
/// Keeps the proxy's table in step with the cluster: caches Ingresses, Services, EndpointSlices and TLS Secrets by
/// list-and-watch, rebuilds the table (<see cref="RoutingTableBuilder"/>) at most every 100 ms after a change, publishes
/// the served Ingresses' <c>status.loadBalancer.ingress</c> and one Warning Event per new problem.
/// </summary>
internal sealed class IngressController
{
    /// <summary>The IngressClass controller name.</summary>
    public const string ControllerName = "coracle.dev/yarp";

    private readonly ControllerOptions _options;
    private readonly IngressProxy _proxy;
    private readonly ILogger _logger;
    private readonly Channel<bool> _changed = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private readonly HashSet<string> _reported = new(StringComparer.Ordinal);

    public IngressController(ControllerOptions options, IngressProxy proxy, ILogger logger)
    {
        _options = options;
        _proxy = proxy;
        _logger = logger;
    }

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        await FileWait.UntilExistsAsync(_options.Kubeconfig, f => Log.Waiting(_logger, $"the controller kubeconfig {f}"), cancellationToken);
        var config = KubernetesClientConfiguration.BuildConfigFromConfigFile(_options.Kubeconfig);
        using var client = new k8s.Kubernetes(config);

        var ingresses = new Reflector<V1Ingress>(
            "ingresses",
            async ct => { var l = await client.NetworkingV1.ListIngressForAllNamespacesAsync(cancellationToken: ct); return (l.Items, l.Metadata?.ResourceVersion ?? ""); },
            (rv, ct) => client.NetworkingV1.WatchListIngressForAllNamespacesAsync(resourceVersion: rv, allowWatchBookmarks: true, cancellationToken: ct),
            Signal, _logger);
        var services = new Reflector<V1Service>(
            "services",
            async ct => { var l = await client.CoreV1.ListServiceForAllNamespacesAsync(cancellationToken: ct); return (l.Items, l.Metadata?.ResourceVersion ?? ""); },
            (rv, ct) => client.CoreV1.WatchListServiceForAllNamespacesAsync(resourceVersion: rv, allowWatchBookmarks: true, cancellationToken: ct),
            Signal, _logger);
        var slices = new Reflector<V1EndpointSlice>(
            "endpointslices",
            async ct => { var l = await client.DiscoveryV1.ListEndpointSliceForAllNamespacesAsync(cancellationToken: ct); return (l.Items, l.Metadata?.ResourceVersion ?? ""); },
            (rv, ct) => client.DiscoveryV1.WatchListEndpointSliceForAllNamespacesAsync(resourceVersion: rv, allowWatchBookmarks: true, cancellationToken: ct),
            Signal, _logger);
        const string tlsOnly = "type=kubernetes.io/tls";
        var secrets = new Reflector<V1Secret>(
            "secrets",
            async ct => { var l = await client.CoreV1.ListSecretForAllNamespacesAsync(fieldSelector: tlsOnly, cancellationToken: ct); return (l.Items, l.Metadata?.ResourceVersion ?? ""); },
            (rv, ct) => client.CoreV1.WatchListSecretForAllNamespacesAsync(fieldSelector: tlsOnly, resourceVersion: rv, allowWatchBookmarks: true, cancellationToken: ct),
            Signal, _logger);

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var loops = new List<Task>
        {
            ingresses.RunAsync(stop.Token), services.RunAsync(stop.Token), slices.RunAsync(stop.Token), secrets.RunAsync(stop.Token),
        };
        if (_options.CreateClass)
        {
            loops.Add(EnsureClassAsync(client, stop.Token));
        }

        try
        {
            string lastDetail = "";
            while (!cancellationToken.IsCancellationRequested)
            {
                await _changed.Reader.ReadAsync(cancellationToken);
                await Task.Delay(TimeSpan.FromMilliseconds(100), cancellationToken);
                if (!(ingresses.Synced && services.Synced && slices.Synced && secrets.Synced))
                {
                    continue;
                }

                var objects = new ClusterObjects(ingresses.Items, services.Items, slices.Items, secrets.Items);
                var table = RoutingTableBuilder.Build(objects, _options.Class);
                _proxy.Table = table;

                var detail = Detail(table);
                if (detail != lastDetail)
                {
                    Log.TableUpdated(_logger, detail);
                    _options.Report(detail);
                    lastDetail = detail;
                }

                if (_options.CreateClass)
                {
                    // The server alone writes status and Events (every node builds the same table). Every node that
                    // follows this server runs yarp too (agents run the ingress the server runs), so the served Ingresses
                    // list every Ready node; read again at each rebuild, so a node that joins or leaves shows.
                    var addresses = await NodeAddressesAsync(client, cancellationToken);
                    await PublishStatusAsync(client, objects.Ingresses, table, addresses, cancellationToken);
                    await ReportProblemsAsync(client, objects.Ingresses, table, cancellationToken);
                }
            }
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAll(loops).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    /// <summary>The status line: ingresses, hosts, routes, backends without ready endpoints, problems.</summary>
    public static string Detail(RoutingTable table)
    {
        var hosts = table.Served.SelectMany(s => s.Hosts).Distinct(StringComparer.Ordinal).Count();
        var down = table.Routes.Select(r => r.Backend).Append(table.DefaultBackend).OfType<Backend>()
            .Where(b => b.Destinations.Count == 0).Select(b => b.Key).Distinct(StringComparer.Ordinal).Count();
        var text = $"{table.Served.Count} ingresses, {hosts} hosts, {table.Routes.Count} routes, {table.CertificateHosts.Count} TLS hosts";
        if (down > 0)
        {
            text += $", {down} backends without ready endpoints";
        }

        if (table.Problems.Count > 0)
        {
            var first = table.Problems[0];
            text += $", {table.Problems.Count} errors (first: {first.Namespace}/{first.Name} {first.Reason})";
        }

        return text;
    }

    /// <summary>Asks for a rebuild; a rebuild already due absorbs it.</summary>
    private void Signal() => _changed.Writer.TryWrite(true);

    private void RetryLater(CancellationToken cancellationToken) =>
        _ = Task.Delay(TimeSpan.FromSeconds(5), cancellationToken).ContinueWith(_ => Signal(), CancellationToken.None, TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default);

    private async Task EnsureClassAsync(k8s.Kubernetes client, CancellationToken cancellationToken)
    {
        var annotations = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["ingressclass.kubernetes.io/is-default-class"] = _options.Class.IsDefault ? "true" : "false",
        };
        var body = new V1IngressClass
        {
            ApiVersion = "networking.k8s.io/v1",
            Kind = "IngressClass",
            Metadata = new V1ObjectMeta
            {
                Name = _options.Class.ClassName,
                Annotations = annotations,
                Labels = new Dictionary<string, string>(StringComparer.Ordinal) { ["app.kubernetes.io/managed-by"] = "coracle" },
            },
            Spec = new V1IngressClassSpec { Controller = ControllerName },
        };
        var delay = TimeSpan.FromSeconds(1);
        while (true)
        {
            try
            {
                try
                {
                    await client.NetworkingV1.CreateIngressClassAsync(body, cancellationToken: cancellationToken);
                }
                catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Conflict)
                {
                    var patch = JsonSerializer.Serialize(new { metadata = new { annotations } });
                    await client.NetworkingV1.PatchIngressClassAsync(new V1Patch(patch, V1Patch.PatchType.MergePatch), _options.Class.ClassName, cancellationToken: cancellationToken);
                }

                Log.ClassReady(_logger, _options.Class.ClassName, ControllerName, _options.Class.IsDefault);
                return;
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested)
            {
                Log.ApiFailed(_logger, $"creating IngressClass {_options.Class.ClassName}", Describe(e));
                await Task.Delay(delay, cancellationToken);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(30).Ticks));
            }
        }
    }

    /// <summary>
    /// The address of every Ready node, as ServiceLB publishes them (its ExternalIP, else its InternalIP), sorted; this
    /// node's <c>--node-ip</c> when the Nodes cannot be read or none lists an address.
    /// </summary>
    private async Task<IReadOnlyList<string>> NodeAddressesAsync(k8s.Kubernetes client, CancellationToken cancellationToken)
    {
        try
        {
            var nodes = await client.CoreV1.ListNodeAsync(cancellationToken: cancellationToken);
            var found = nodes.Items
                .Where(n => n.Status?.Conditions?.Any(c => c.Type == "Ready" && c.Status == "True") == true)
                .Select(n => (n.Status.Addresses ?? []).FirstOrDefault(a => a.Type == "ExternalIP")?.Address
                    ?? (n.Status.Addresses ?? []).FirstOrDefault(a => a.Type == "InternalIP")?.Address)
                .OfType<string>().Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
            if (found.Count > 0)
            {
                return found;
            }
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested)
        {
            Log.ApiFailed(_logger, "listing the nodes", Describe(e));
        }

        return _options.NodeIps;
    }

    /// <summary>One writer, the server: sets <c>status.loadBalancer.ingress</c> of every served Ingress to the nodes' addresses, when they differ.</summary>
    private async Task PublishStatusAsync(
        k8s.Kubernetes client, IReadOnlyList<V1Ingress> ingresses, RoutingTable table, IReadOnlyList<string> addresses, CancellationToken cancellationToken)
    {
        if (addresses.Count == 0)
        {
            return;
        }

        var served = table.Served.Select(s => (s.Namespace, s.Name)).ToHashSet();
        foreach (var ingress in ingresses)
        {
            var ns = ingress.Metadata.NamespaceProperty ?? "default";
            if (!served.Contains((ns, ingress.Metadata.Name)))
            {
                continue;
            }

            var current = (ingress.Status?.LoadBalancer?.Ingress ?? []).Select(i => i.Ip ?? i.Hostname ?? "").ToList();
            if (current.SequenceEqual(addresses, StringComparer.Ordinal))
            {
                continue;
            }

            var patch = JsonSerializer.Serialize(new
            {
                status = new { loadBalancer = new { ingress = addresses.Select(a => new { ip = a }).ToList() } },
            });
            try
            {
                await client.NetworkingV1.PatchNamespacedIngressStatusAsync(new V1Patch(patch, V1Patch.PatchType.MergePatch), ingress.Metadata.Name, ns, cancellationToken: cancellationToken);
                Log.StatusSet(_logger, ns, ingress.Metadata.Name, string.Join(",", addresses));
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested)
            {
                Log.ApiFailed(_logger, $"setting the status of ingress {ns}/{ingress.Metadata.Name}", Describe(e));
                RetryLater(cancellationToken);
            }
        }
    }

    /// <summary>One Warning Event per problem while it lasts; a problem that goes away and comes back is reported again.</summary>
    private async Task ReportProblemsAsync(k8s.Kubernetes client, IReadOnlyList<V1Ingress> ingresses, RoutingTable table, CancellationToken cancellationToken)
    {
        var byName = ingresses.ToDictionary(i => (i.Metadata.NamespaceProperty ?? "default", i.Metadata.Name));
        var current = new HashSet<string>(StringComparer.Ordinal);
        foreach (var p in table.Problems)
        {
            var uid = byName.TryGetValue((p.Namespace, p.Name), out var ing) ? ing.Metadata.Uid ?? "" : "";
            var key = $"{uid}\n{p.Reason}\n{p.Message}";
            current.Add(key);
            if (_reported.Contains(key))
            {
                continue;
            }

            Log.Problem(_logger, p.Namespace, p.Name, p.Reason, p.Message);
            var now = DateTime.UtcNow;
            var ev = new Corev1Event
            {
                Metadata = new V1ObjectMeta { GenerateName = p.Name + ".", NamespaceProperty = p.Namespace },
                InvolvedObject = new V1ObjectReference
                {
                    ApiVersion = "networking.k8s.io/v1", Kind = "Ingress", Name = p.Name, NamespaceProperty = p.Namespace, Uid = uid,
                },
                Reason = p.Reason,
                Message = p.Message,
                Type = "Warning",
                Source = new V1EventSource { Component = "yarp", Host = _options.NodeName },
                ReportingComponent = ControllerName,
                ReportingInstance = _options.NodeName,
                FirstTimestamp = now,
                LastTimestamp = now,
                Count = 1,
            };
            try
            {
                await client.CoreV1.CreateNamespacedEventAsync(ev, p.Namespace, cancellationToken: cancellationToken);
                _reported.Add(key);
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested)
            {
                Log.ApiFailed(_logger, $"recording an event on ingress {p.Namespace}/{p.Name}", Describe(e));
                RetryLater(cancellationToken);
            }
        }

        _reported.IntersectWith(current);
    }

    private static string Describe(Exception e) =>
        e is HttpOperationException h ? $"{(int)h.Response.StatusCode} {h.Response.Content}" : e.Message;
}
