using System.Globalization;

namespace Coracle.Plugins.Datastore.Etcd;

/// <summary>
/// Everything the plugin derives from the node settings and its <c>[plugins.etcd]</c> options: embedded or external,
/// the etcd binary, folders, URLs and TLS files. Pure: reads no file but the binaries' presence, writes nothing.
/// </summary>
internal sealed record EtcdLayout
{
    /// <summary>The supervised component of the embedded etcd; also the component kube-apiserver waits for.</summary>
    public const string ComponentName = "etcd";

    /// <summary>Where Debian's etcd-server package puts the binary.</summary>
    public const string SystemEtcd = "/usr/bin/etcd";

    /// <summary>Where Debian's etcd-client package puts etcdctl.</summary>
    public const string SystemEtcdctl = "/usr/bin/etcdctl";

    /// <summary>True for the supervised etcd (<c>--cluster-init</c>); false for <c>--datastore-endpoint https://…</c>.</summary>
    public required bool Embedded { get; init; }

    /// <summary>The member's name: the node name.</summary>
    public required string Name { get; init; }

    /// <summary>The etcd data dir (<c>DATA/server/db/etcd</c>, K3s's).</summary>
    public required string DataDir { get; init; }

    /// <summary>The etcd executable: <c>etcd</c> in the components folder when present, else Debian's.</summary>
    public required string Binary { get; init; }

    /// <summary>etcdctl, for restore: beside <see cref="Binary"/> in the components folder when present, else Debian's.</summary>
    public required string Etcdctl { get; init; }

    /// <summary>The address peers and remote clients reach this member on (the first node IP, else loopback).</summary>
    public required string NodeIp { get; init; }

    /// <summary>Client port.</summary>
    public required int ClientPort { get; init; }

    /// <summary>Peer port.</summary>
    public required int PeerPort { get; init; }

    /// <summary>Metrics port (plain HTTP on loopback).</summary>
    public required int MetricsPort { get; init; }

    /// <summary>The endpoints clients use: the local one first for embedded etcd, the user's for external.</summary>
    public required IReadOnlyList<string> Servers { get; init; }

    /// <summary>Client TLS: the datastore-client certificate, or the external etcd's cafile/certfile/keyfile.</summary>
    public required TlsFiles ClientTls { get; init; }

    /// <summary>The member's serving certificate (signed by etcd-server-ca).</summary>
    public TlsFiles? ServerTls { get; init; }

    /// <summary>The member's peer certificate (signed by etcd-peer-ca).</summary>
    public TlsFiles? PeerTls { get; init; }

    /// <summary>This member's peer URL.</summary>
    public string PeerUrl => $"https://{HostPort(NodeIp, PeerPort)}";

    /// <summary>This member's advertised client URL.</summary>
    public string ClientUrl => $"https://{HostPort(NodeIp, ClientPort)}";

    /// <summary>The local client URL (loopback).</summary>
    public string LocalClientUrl => $"https://{HostPort("127.0.0.1", ClientPort)}";

    /// <summary>The file whose presence makes the next start pass <c>--force-new-cluster</c> (written by <c>--cluster-reset</c>).</summary>
    public string ForceNewClusterMarker => DataDir + ".force-new-cluster";

    /// <summary>The file that names the snapshot the data dir was restored from.</summary>
    public string RestoredMarker => DataDir + ".restored.json";

    /// <summary><c>host:port</c>, brackets around IPv6.</summary>
    public static string HostPort(string host, int port) =>
        (host.Contains(':', StringComparison.Ordinal) ? $"[{host}]" : host) + ":" + port.ToString(CultureInfo.InvariantCulture);

    /// <summary>The etcd data dir of a node: <c>DATA/server/db/etcd</c>.</summary>
    public static string EtcdDataDir(NodeSettings node) => PluginFolderAttribute.Resolve(typeof(EtcdPlugin), node.DataDir)["etcd"];

    /// <summary>
    /// Builds the layout; throws <see cref="PluginConfigException"/> naming the first bad setting, with every problem in
    /// the message. <paramref name="certificates"/> null (option checks) takes the standard paths under <c>DATA/server/tls</c>.
    /// </summary>
    public static EtcdLayout Build(NodeSettings node, IReadOnlyDictionary<string, string> options, INodeCertificates? certificates = null)
    {
        ArgumentNullException.ThrowIfNull(node);
        ArgumentNullException.ThrowIfNull(options);
        var errors = new List<(string Key, string Message)>();
        var known = PluginSettingAttribute.KeysOf(typeof(EtcdPlugin));
        foreach (var key in options.Keys.Where(k => !known.Contains(k, StringComparer.Ordinal)))
        {
            errors.Add((key, $"unknown option '{key}' in [plugins.etcd]; known options: {string.Join(", ", known)}"));
        }

        int Port(string key, int fallback)
        {
            if (!options.TryGetValue(key, out var text) || text.Length == 0)
            {
                return fallback;
            }

            if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var port) && port is > 0 and < 65536)
            {
                return port;
            }

            errors.Add((key, $"{key} '{text}' is not a TCP port; give a number from 1 to 65535 (default {fallback.ToString(CultureInfo.InvariantCulture)})"));
            return fallback;
        }

        var clientPort = Port("client-port", 2379);
        var peerPort = Port("peer-port", 2380);
        var metricsPort = Port("metrics-port", 2381);
        if (errors.Count == 0 && new[] { clientPort, peerPort, metricsPort }.Distinct().Count() < 3)
        {
            errors.Add(("client-port", $"client-port {clientPort}, peer-port {peerPort} and metrics-port {metricsPort} must differ; give each its own port"));
        }

        string Option(string key) => options.TryGetValue(key, out var v) ? v : "";
        var tlsDir = certificates?.Directory ?? Path.Combine(node.DataDir, "server", "tls");
        TlsFiles Standard(string identity, string ca) => certificates?.Get(identity)
            ?? new TlsFiles(Path.Combine(tlsDir, identity + ".crt"), Path.Combine(tlsDir, identity + ".key"), Path.Combine(tlsDir, ca + ".crt"));

        var endpoint = node.DatastoreEndpoint.Trim();
        var embedded = endpoint.Length == 0;
        var servers = new List<string>();
        TlsFiles clientTls = Standard("datastore-client", "etcd-server-ca");
        if (!embedded)
        {
            foreach (var url in endpoint.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("https" or "http") || uri.Host.Length == 0
                    || uri.AbsolutePath is not ("" or "/") || uri.UserInfo.Length > 0)
                {
                    errors.Add(("datastore-endpoint", $"'{Redact(url)}' is not an etcd endpoint; give https://HOST:PORT[,https://HOST:PORT...] (comma-separated, no path)"));
                    continue;
                }

                servers.Add($"{uri.Scheme}://{HostPort(uri.Host.Trim('[', ']'), uri.IsDefaultPort ? 2379 : uri.Port)}");
            }

            var files = new[] { ("cafile", Option("cafile")), ("certfile", Option("certfile")), ("keyfile", Option("keyfile")) };
            var given = files.Count(f => f.Item2.Length > 0);
            if (given is 1 or 2)
            {
                errors.Add((files.First(f => f.Item2.Length == 0).Item1, "cafile, certfile and keyfile (--datastore-cafile, --datastore-certfile, --datastore-keyfile) go together; give all three or none (none: the node's datastore-client certificate)"));
            }
            else if (given == 3)
            {
                clientTls = new TlsFiles(Path.GetFullPath(Option("certfile")), Path.GetFullPath(Option("keyfile")), Path.GetFullPath(Option("cafile")));
            }
        }
        else
        {
            foreach (var key in new[] { "cafile", "certfile", "keyfile" }.Where(k => Option(k).Length > 0))
            {
                errors.Add((key, $"{key} is for an external etcd (--datastore-endpoint https://...); the embedded etcd (--cluster-init) uses the cluster's certificates; remove it"));
            }
        }

        if (errors.Count > 0)
        {
            throw new PluginConfigException(errors[0].Key, string.Join("; ", errors.Select(e => e.Message)));
        }

        var nodeIp = node.NodeIps.Count > 0 ? node.NodeIps[0] : "127.0.0.1";
        var componentsEtcd = Path.Combine(node.ComponentsDir, "etcd");
        var componentsEtcdctl = Path.Combine(node.ComponentsDir, "etcdctl");
        var layout = new EtcdLayout
        {
            Embedded = embedded,
            Name = node.NodeName,
            DataDir = EtcdDataDir(node),
            Binary = File.Exists(componentsEtcd) ? componentsEtcd : SystemEtcd,
            Etcdctl = File.Exists(componentsEtcdctl) ? componentsEtcdctl : SystemEtcdctl,
            NodeIp = nodeIp,
            ClientPort = clientPort,
            PeerPort = peerPort,
            MetricsPort = metricsPort,
            Servers = servers,
            ClientTls = clientTls,
            ServerTls = embedded ? Standard("datastore", "etcd-server-ca") : null,
            PeerTls = embedded ? Standard("etcd-peer", "etcd-peer-ca") : null,
        };
        // Embedded: loopback first (kube-apiserver on this server), then the node IP's URL of the same member.
        return embedded ? layout with { Servers = nodeIp == "127.0.0.1" ? [layout.LocalClientUrl] : [layout.LocalClientUrl, layout.ClientUrl] } : layout;
    }

    /// <summary>The etcd command line of the embedded member (<paramref name="join"/>: <see cref="NodeSettings.DatastoreJoin"/>).</summary>
    public IReadOnlyList<string> Arguments(IReadOnlyDictionary<string, string> join, bool forceNewCluster)
    {
        ArgumentNullException.ThrowIfNull(join);
        var server = ServerTls ?? throw new InvalidOperationException("an external etcd has no command line");
        var peer = PeerTls!;
        var clientUrls = NodeIp == "127.0.0.1" ? LocalClientUrl : $"{LocalClientUrl},{ClientUrl}";
        var joining = join.TryGetValue(JoinKeys.InitialCluster, out var initialCluster) && initialCluster.Length > 0;
        var args = new List<string>
        {
            "--name=" + Name,
            "--data-dir=" + DataDir,
            "--listen-client-urls=" + clientUrls,
            "--advertise-client-urls=" + ClientUrl,
            "--listen-peer-urls=" + PeerUrl,
            "--initial-advertise-peer-urls=" + PeerUrl,
            "--listen-metrics-urls=http://" + HostPort("127.0.0.1", MetricsPort),
            "--initial-cluster=" + (joining ? initialCluster : $"{Name}={PeerUrl}"),
            "--initial-cluster-state=" + (joining ? "existing" : "new"),
            "--client-cert-auth=true",
            "--trusted-ca-file=" + server.CaFile,
            "--cert-file=" + server.CertFile,
            "--key-file=" + server.KeyFile,
            "--peer-client-cert-auth=true",
            "--peer-trusted-ca-file=" + peer.CaFile,
            "--peer-cert-file=" + peer.CertFile,
            "--peer-key-file=" + peer.KeyFile,
            "--logger=zap",
            "--log-outputs=stderr",
        };
        if (forceNewCluster)
        {
            args.Add("--force-new-cluster");
        }

        return args;
    }

    private static string Redact(string url) => url.Contains('@', StringComparison.Ordinal) ? "***@" + url[(url.LastIndexOf('@') + 1)..] : url;
}

/// <summary>The keys of <see cref="NodeSettings.DatastoreJoin"/> this plugin returns from <see cref="IDatastoreCluster.AddMemberAsync"/>.</summary>
internal static class JoinKeys
{
    /// <summary>etcd's <c>--initial-cluster</c> for the joining member: every member's NAME=PEERURL, the new one included.</summary>
    public const string InitialCluster = "initial-cluster";

    /// <summary>etcd's <c>--initial-cluster-state</c>: <c>existing</c>.</summary>
    public const string InitialClusterState = "initial-cluster-state";

    /// <summary>The client URLs of the voting members, comma-separated: where the joining member asks to be promoted.</summary>
    public const string Endpoints = "endpoints";

    /// <summary>The new member's id (hex), as etcd assigned it.</summary>
    public const string MemberId = "member-id";
}
