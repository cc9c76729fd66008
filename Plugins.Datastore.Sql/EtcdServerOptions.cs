using Coracle.Plugins.Datastore.Sql.Storage;

namespace Coracle.Plugins.Datastore.Sql;

/// <summary>Certificate, key and CA (PEM files) of the TLS listener; clients must present a certificate the CA signed.</summary>
public sealed record TlsSettings(string CertFile, string KeyFile, string CaFile);

/// <summary>Everything the etcd server needs; independent of the plugin host.</summary>
public sealed record EtcdServerOptions
{
    /// <summary>etcd's default request size limit, 1.5 MiB.</summary>
    public const int DefaultMaxRequestBytes = 1536 * 1024;

    /// <summary>The SQL dialect (and with it, the database).</summary>
    public required SqlDialect Dialect { get; init; }

    /// <summary>Unix socket for plaintext HTTP/2 clients (mode 0600); null for none.</summary>
    public string? UnixSocket { get; init; }

    /// <summary>TCP <c>host:port</c> served with TLS and client-certificate authentication; null for none.</summary>
    public string? ListenAddress { get; init; }

    /// <summary>TLS material for <see cref="ListenAddress"/>.</summary>
    public TlsSettings? Tls { get; init; }

    /// <summary>Plaintext TCP <c>host:port</c>; only for tests and benchmarks on loopback.</summary>
    public string? InsecureListenAddress { get; init; }

    /// <summary>Where GET /metrics is served over HTTP/1.1: <c>unix:///path</c> or <c>host:port</c>; null for none.</summary>
    public string? MetricsAddress { get; init; }

    /// <summary>How often history is compacted (K3s: 5 minutes); zero disables.</summary>
    public TimeSpan CompactInterval { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>Revisions of history kept by the background compaction (K3s: 1000).</summary>
    public long CompactMinRetain { get; init; } = 1000;

    /// <summary>Largest request accepted (etcd's --max-request-bytes).</summary>
    public int MaxRequestBytes { get; init; } = DefaultMaxRequestBytes;

    /// <summary>Concurrent HTTP/2 streams per client connection.</summary>
    public int MaxConcurrentStreams { get; init; } = 1000;

    /// <summary>Unsent watch responses one stream may queue before it is closed as too slow (the client resumes it).</summary>
    public long MaxWatchStreamBufferBytes { get; init; } = 64L * 1024 * 1024;

    /// <summary>How often idle watchers that asked for it get a progress notification (etcd: 10 minutes).</summary>
    public TimeSpan ProgressNotifyInterval { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>The member name reported by MemberList (the node name).</summary>
    public string MemberName { get; init; } = "default";

    /// <summary>How long a graceful stop waits for in-flight requests.</summary>
    public TimeSpan ShutdownTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Shortest lease TTL in seconds (etcd's default minimum is 2).</summary>
    public long MinLeaseTtl { get; init; } = 2;

    /// <summary>How often expired leases are looked for.</summary>
    public TimeSpan LeaseCheckInterval { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Tuning of the revision log.</summary>
    public RevisionLogOptions Log { get; init; } = new();

    /// <summary>Clock for lease expiry.</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;
}
