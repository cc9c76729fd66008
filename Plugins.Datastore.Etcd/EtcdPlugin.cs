using Coracle.Plugins.Datastore.Etcd.Logging;
using Microsoft.Extensions.Logging;

namespace Coracle.Plugins.Datastore.Etcd;

/// <summary>
/// Embedded etcd (<c>--cluster-init</c>): a supervised etcd process, one member per server, with peer and client mutual
/// TLS from the cluster's etcd CAs; or an external etcd (<c>--datastore-endpoint https://…</c>), reached with the node's
/// datastore-client certificate or the given cafile/certfile/keyfile. Members are added (learner first, promoted when
/// caught up) and removed through etcd's Cluster API; snapshots are etcd's own.
/// </summary>
[CoraclePlugin("etcd", ExtensionPoints.Datastore, typeof(IDatastore), Description = "Embedded etcd (--cluster-init, supervised) or external etcd endpoints (--datastore-endpoint https://...)", EndpointSchemes = ["http", "https"])]
[PluginSetting("client-port", "Port of the embedded etcd's client URLs (loopback and the node IP, mutual TLS)", Type = PluginSettingType.Integer, Default = "2379", ServerOnly = true)]
[PluginSetting("peer-port", "Port of the embedded etcd's peer URL on the node IP (mutual TLS, etcd-peer-ca)", Type = PluginSettingType.Integer, Default = "2380", ServerOnly = true)]
[PluginSetting("metrics-port", "Port of the embedded etcd's /metrics and /health, plain HTTP on loopback", Type = PluginSettingType.Integer, Default = "2381", ServerOnly = true)]
[PluginSetting("cafile", "External etcd: CA file that signs its serving certificates (default: the cluster's etcd-server-ca)", Flag = "datastore-cafile", ServerOnly = true)]
[PluginSetting("certfile", "External etcd: client certificate file (default: the node's datastore-client certificate)", Flag = "datastore-certfile", ServerOnly = true)]
[PluginSetting("keyfile", "External etcd: client key file", Flag = "datastore-keyfile", ServerOnly = true)]
[PluginFolder("etcd", "server/db/etcd")]
public sealed class EtcdPlugin : IDatastore, IValidatesOptions, IDatastoreCluster, IDatastoreSnapshots, IDatastoreImport
{
    /// <summary>The supervised component (embedded etcd, or the readiness gate of an external one).</summary>
    public const string ComponentName = EtcdLayout.ComponentName;

    /// <inheritdoc/>
    public void ValidateOptions(NodeSettings node, IReadOnlyDictionary<string, string> options, string pluginDataDir) =>
        _ = EtcdLayout.Build(node, options);

    /// <inheritdoc/>
    public DatastoreEndpoint Configure(IPluginContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var layout = EtcdLayout.Build(context.Node, context.Options, context.Certificates);
        var logger = context.LoggerFactory.CreateLogger("etcd-plugin");
        var endpoint = new DatastoreEndpoint(layout.Servers, ComponentName) { Tls = layout.ClientTls };
        if (!layout.Embedded)
        {
            logger.External(string.Join(",", layout.Servers));
            context.Supervisor.Add(new InProcessComponent
            {
                Name = ComponentName,
                Run = ct => Task.Delay(Timeout.Infinite, ct),
                Readiness = new CustomProbe(ct => AnyHealthyAsync(layout, ct)) { Interval = TimeSpan.FromSeconds(1), Timeout = TimeSpan.FromSeconds(10) },
            });
            return endpoint;
        }

        if (!File.Exists(layout.Binary))
        {
            context.Supervisor.ReportUnavailable(ComponentName,
                $"no etcd binary: neither {Path.Combine(context.Node.ComponentsDir, "etcd")} nor {EtcdLayout.SystemEtcd} exists (install Debian's etcd-server or ship etcd in the components folder)");
            return endpoint;
        }

        var join = context.Node.DatastoreJoin;
        var force = File.Exists(layout.ForceNewClusterMarker);
        var joining = join.ContainsKey(JoinKeys.InitialCluster) && !Directory.Exists(Path.Combine(layout.DataDir, "member"));
        logger.Embedded(layout.Name, layout.NodeIp == "127.0.0.1" ? layout.LocalClientUrl : $"{layout.LocalClientUrl},{layout.ClientUrl}", layout.PeerUrl, layout.DataDir, layout.Binary);
        if (joining)
        {
            logger.Joining(join[JoinKeys.InitialCluster]);
        }

        if (force)
        {
            logger.ForceNewCluster();
        }

        var promoter = new Promoter(layout, join, logger);
        context.Supervisor.Add(new ProcessComponent
        {
            Name = ComponentName,
            FileName = layout.Binary,
            Arguments = layout.Arguments(join, force),
            WorkingDirectory = Path.GetDirectoryName(layout.DataDir),
            Readiness = new CustomProbe(promoter.ReadyAsync) { Interval = TimeSpan.FromMilliseconds(500), Timeout = TimeSpan.FromSeconds(10) },
            StopTimeout = TimeSpan.FromSeconds(20),
            RestartOnCertificateRenewal = true,
            BeforeStart = _ =>
            {
                PrivateDirectory(layout.DataDir);
                File.Delete(layout.ForceNewClusterMarker);
                return Task.CompletedTask;
            },
        });
        return endpoint;
    }

    /// <inheritdoc/>
    public IReadOnlyList<string> PeerUrls(NodeSettings node, IReadOnlyDictionary<string, string> options) =>
        [EtcdLayout.Build(node, options).PeerUrl];

    /// <inheritdoc/>
    public Task<IReadOnlyDictionary<string, string>> AddMemberAsync(NodeSettings node, IReadOnlyDictionary<string, string> options,
        string name, IReadOnlyList<string> peerUrls, CancellationToken cancellationToken) =>
        EtcdMembers.AddAsync(EtcdLayout.Build(node, options), name, peerUrls, cancellationToken);

    /// <inheritdoc/>
    public Task<bool> RemoveMemberAsync(NodeSettings node, IReadOnlyDictionary<string, string> options, string name, CancellationToken cancellationToken) =>
        EtcdMembers.RemoveAsync(EtcdLayout.Build(node, options), name, cancellationToken);

    /// <inheritdoc/>
    public Task<DatastoreMembers> MembersAsync(NodeSettings node, IReadOnlyDictionary<string, string> options, CancellationToken cancellationToken) =>
        EtcdMembers.ListAsync(EtcdLayout.Build(node, options), cancellationToken);

    /// <inheritdoc/>
    public DatastoreEndpoint SnapshotEndpoint(NodeSettings node, IReadOnlyDictionary<string, string> options)
    {
        var layout = EtcdLayout.Build(node, options);
        return new DatastoreEndpoint(layout.Servers, ComponentName) { Tls = layout.ClientTls };
    }

    /// <inheritdoc/>
    public void VerifySnapshot(NodeSettings node, IReadOnlyDictionary<string, string> options, string file) =>
        _ = EtcdSnapshots.Verify(EtcdLayout.Build(node, options), file);

    /// <inheritdoc/>
    public DatastoreRestore Restore(NodeSettings node, IReadOnlyDictionary<string, string> options, string file, DateTimeOffset now) =>
        EtcdSnapshots.Restore(EtcdLayout.Build(node, options), file, now);

    /// <inheritdoc/>
    public string Reset(NodeSettings node, IReadOnlyDictionary<string, string> options) =>
        EtcdSnapshots.Reset(EtcdLayout.Build(node, options));

    /// <inheritdoc/>
    public bool CanImport(NodeSettings node, IReadOnlyDictionary<string, string> options) =>
        EtcdImport.CanImport(EtcdLayout.Build(node, options));

    /// <inheritdoc/>
    public Task<DatastoreImportResult> ImportAsync(NodeSettings node, IReadOnlyDictionary<string, string> options, IAsyncEnumerable<DatastoreKeyValue> keys, CancellationToken cancellationToken) =>
        EtcdImport.ImportAsync(EtcdLayout.Build(node, options), keys, cancellationToken);

    private static async Task<bool> AnyHealthyAsync(EtcdLayout layout, CancellationToken cancellationToken)
    {
        using var client = new EtcdClient(layout.Servers, layout.ClientTls) { CallTimeout = TimeSpan.FromSeconds(3) };
        foreach (var server in layout.Servers)
        {
            if (await client.HealthAsync(server, cancellationToken))
            {
                return true;
            }
        }

        return false;
    }

    internal static void PrivateDirectory(string path)
    {
        Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    /// <summary>
    /// The readiness of the embedded member: a member that joined as a learner first asks the cluster to promote it (etcd
    /// refuses until it has caught up, so this retries on every probe); then etcd's <c>/health</c> over mutual TLS.
    /// </summary>
    private sealed class Promoter(EtcdLayout layout, IReadOnlyDictionary<string, string> join, ILogger logger)
    {
        private bool _voting = !join.ContainsKey(JoinKeys.InitialCluster);

        public async Task<bool> ReadyAsync(CancellationToken cancellationToken)
        {
            if (!_voting)
            {
                var endpoints = (join.TryGetValue(JoinKeys.Endpoints, out var e) ? e.Split(',', StringSplitOptions.RemoveEmptyEntries) : [])
                    .Concat(layout.Servers).ToList();
                using var client = new EtcdClient(endpoints, layout.ClientTls) { CallTimeout = TimeSpan.FromSeconds(3) };
                try
                {
                    var members = await client.MemberListAsync(cancellationToken);
                    var me = members.Members.FirstOrDefault(m => m.Name == layout.Name || m.PeerURLs.Contains(layout.PeerUrl));
                    if (me is null)
                    {
                        logger.NotPromotedYet(layout.Name, "not a member of the cluster");
                        return false;
                    }

                    if (me.IsLearner)
                    {
                        await client.MemberPromoteAsync(me.ID, cancellationToken);
                        logger.Promoted(layout.Name);
                    }

                    _voting = true;
                }
                catch (Grpc.Core.RpcException ex) when (!cancellationToken.IsCancellationRequested)
                {
                    logger.NotPromotedYet(layout.Name, ex.Status.Detail);
                    return false;
                }
            }

            // The member's advertised URL (the node IP): the same listener peers' clients use.
            using var local = new EtcdClient([layout.ClientUrl], layout.ClientTls) { CallTimeout = TimeSpan.FromSeconds(3) };
            return await local.HealthAsync(layout.ClientUrl, cancellationToken);
        }
    }
}
