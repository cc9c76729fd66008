using Coracle.Core.Hosting;
using Coracle.Core.Logging;
using Microsoft.Extensions.Logging;

namespace Coracle.Core.Tunnel;

/// <summary>
/// Keeps the server's <see cref="EgressTable"/> current: watches Nodes, Services and EndpointSlices on kube-apiserver
/// (with the given client credentials) and publishes a new immutable table after every change, so the egress proxy
/// never waits on the API server while a connection is being set up.
/// </summary>
internal sealed class EgressTableWatcher
{
    private readonly Uri _apiServer;
    private readonly string _caFile;
    private readonly string _certFile;
    private readonly string _keyFile;
    private readonly ILogger _log;
    private readonly object _lock = new();
    private IReadOnlyCollection<NodeEntry> _nodes = [];
    private IReadOnlyCollection<ServiceEntry> _services = [];
    private IReadOnlyCollection<EndpointSliceEntry> _slices = [];
    private bool _nodesSynced;
    private bool _servicesSynced;
    private bool _slicesSynced;
    private volatile EgressTable _current = EgressTable.Empty;

    public EgressTableWatcher(Uri apiServer, string caFile, string certFile, string keyFile, ILogger log)
    {
        _apiServer = apiServer;
        _caFile = caFile;
        _certFile = certFile;
        _keyFile = keyFile;
        _log = log;
    }

    /// <summary>The latest table; <see cref="EgressTable.Empty"/> until the first lists.</summary>
    public EgressTable Current => _current;

    public async Task RunAsync(CancellationToken ct)
    {
        // The credentials are read when the watch starts (they exist: the server prepared them before any component).
        using var handler = TlsClient.Configure(new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(5) }, _caFile, _certFile, _keyFile);
        using var client = new HttpClient(handler) { BaseAddress = _apiServer, Timeout = Timeout.InfiniteTimeSpan };
        var nodes = new ClusterWatch<NodeEntry>(client, "/api/v1/nodes", null, NodeEntry.FromJson, _log)
        {
            Changed = all => Publish(() => (_nodes, _nodesSynced) = (all, true)),
        };
        var services = new ClusterWatch<ServiceEntry>(client, "/api/v1/services", null, ServiceEntry.FromJson, _log)
        {
            Changed = all => Publish(() => (_services, _servicesSynced) = (all, true)),
        };
        var slices = new ClusterWatch<EndpointSliceEntry>(client, "/apis/discovery.k8s.io/v1/endpointslices", null, EndpointSliceEntry.FromJson, _log)
        {
            Changed = all => Publish(() => (_slices, _slicesSynced) = (all, true)),
        };
        await Task.WhenAll(nodes.RunAsync(ct), services.RunAsync(ct), slices.RunAsync(ct));
    }

    private void Publish(Action update)
    {
        lock (_lock)
        {
            var wasSynced = _current.Synced;
            update();
            _current = EgressTable.Build(_nodes, _services, _slices, _nodesSynced && _servicesSynced && _slicesSynced);
            if (!wasSynced && _current.Synced)
            {
                _log.EgressTableSynced(_current.NodeCount, _current.ServiceCount, _current.EndpointSliceCount);
            }
        }
    }
}
