namespace Coracle.Plugins;

/// <summary>How the supervisor decides a component is ready. Probed every <see cref="Interval"/>.</summary>
public abstract record ReadinessProbe
{
    /// <summary>Time between probes.</summary>
    public TimeSpan Interval { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>Time for one probe attempt.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(2);
}

/// <summary>Ready when a unix socket at <paramref name="Path"/> accepts a connection.</summary>
public sealed record UnixSocketProbe(string Path) : ReadinessProbe;

/// <summary>Ready when a TCP port accepts a connection.</summary>
public sealed record TcpProbe(string Host, int Port) : ReadinessProbe;

/// <summary>
/// Ready when an HTTP(S) GET answers 2xx. For TLS, <see cref="CaFile"/> is trusted and the optional client
/// certificate is presented (kube-apiserver's /readyz).
/// </summary>
public sealed record HttpProbe(Uri Url) : ReadinessProbe
{
    /// <summary>PEM CA bundle to trust; null uses the system store.</summary>
    public string? CaFile { get; init; }

    /// <summary>PEM client certificate.</summary>
    public string? ClientCertFile { get; init; }

    /// <summary>PEM client key.</summary>
    public string? ClientKeyFile { get; init; }

    /// <summary>Unix socket to send the request over instead of TCP.</summary>
    public string? UnixSocket { get; init; }
}

/// <summary>Ready when the gRPC health service answers SERVING (grpc.health.v1.Health/Check).</summary>
/// <param name="Address">An <c>http://host:port</c> address or <c>unix:///path</c>.</param>
/// <param name="Service">The service name to check; empty for the server as a whole.</param>
public sealed record GrpcHealthProbe(string Address, string Service = "") : ReadinessProbe;

/// <summary>Ready when the plugin's own check returns true.</summary>
public sealed record CustomProbe(Func<CancellationToken, Task<bool>> Check) : ReadinessProbe;
