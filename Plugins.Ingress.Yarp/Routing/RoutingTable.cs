using System.Net.Security;

namespace Coracle.Plugins.Ingress.Yarp.Routing;

/// <summary>How a rule's path matches (Kubernetes' path types; ImplementationSpecific is served as Prefix).</summary>
internal enum PathKind
{
    /// <summary>The request path equals the rule's path, case-sensitively.</summary>
    Exact,

    /// <summary>The rule's path is an element-wise prefix of the request path (<c>/foo</c> matches <c>/foo/bar</c>, not <c>/foobar</c>).</summary>
    Prefix,
}

/// <summary>
/// A Service port an Ingress names, resolved to its ready endpoints. <see cref="Problem"/> is set when the Service or
/// port is missing (the proxy answers 503 with it); <see cref="Destinations"/> is then empty.
/// </summary>
internal sealed record Backend(string Namespace, string Service, string Port, IReadOnlyList<string> Destinations, string? Problem)
{
    /// <summary>The backend's name in answers, logs and round-robin state: <c>NAMESPACE/SERVICE:PORT</c>.</summary>
    public string Key => $"{Namespace}/{Service}:{Port}";
}

/// <summary>One rule path of an Ingress. <see cref="Host"/> is empty for a rule without host, <c>*.example.com</c> for a wildcard.</summary>
internal sealed record Route(string Ingress, string Host, string Path, PathKind Kind, Backend Backend)
{
    /// <summary>True when <paramref name="path"/> (the request path) matches this route.</summary>
    public bool Matches(string path) => Kind switch
    {
        PathKind.Exact => string.Equals(path, Path, StringComparison.Ordinal),
        _ => PrefixMatches(Path, path),
    };

    /// <summary>Kubernetes' Prefix: element-wise on <c>/</c>; a trailing slash is ignored on either side.</summary>
    public static bool PrefixMatches(string prefix, string path)
    {
        var p = prefix.TrimEnd('/');
        if (p.Length == 0)
        {
            return true;
        }

        return path.StartsWith(p, StringComparison.Ordinal) && (path.Length == p.Length || path[p.Length] == '/');
    }
}

/// <summary>Something wrong with an Ingress: reported as a Warning Event on it; its other rules keep working.</summary>
internal sealed record IngressProblem(string Namespace, string Name, string Reason, string Message);

/// <summary>An Ingress the table serves, with its hosts (<c>*</c> for rules without host or a default backend).</summary>
internal sealed record ServedIngress(string Namespace, string Name, IReadOnlyList<string> Hosts);

/// <summary>What a request matched: the route (null for the default backend) and its backend.</summary>
internal sealed record RouteMatch(Route? Route, Backend Backend);

/// <summary>
/// The routes, backends and certificates built from the cluster's objects by <see cref="RoutingTableBuilder.Build"/>.
/// Immutable: the proxy swaps the whole table on a change, so a request in flight keeps the table it started with.
/// </summary>
internal sealed class RoutingTable
{
    private readonly IReadOnlyDictionary<string, IReadOnlyList<Route>> _exactHosts;
    private readonly IReadOnlyDictionary<string, IReadOnlyList<Route>> _wildcardHosts;
    private readonly IReadOnlyList<Route> _anyHost;
    private readonly IReadOnlyDictionary<string, SslStreamCertificateContext> _certificates;

    public RoutingTable(
        IReadOnlyList<Route> routes,
        Backend? defaultBackend,
        IReadOnlyDictionary<string, SslStreamCertificateContext> certificates,
        IReadOnlyList<IngressProblem> problems,
        IReadOnlyList<ServedIngress> served)
    {
        Routes = routes;
        DefaultBackend = defaultBackend;
        Problems = problems;
        Served = served;
        _certificates = certificates;

        // Within a host: the longest path first, Exact before Prefix for the same length (Kubernetes' precedence);
        // the builder already dropped later duplicates, so the order is total.
        static IReadOnlyList<Route> Ordered(IEnumerable<Route> rs) =>
            rs.OrderByDescending(r => r.Path.Length).ThenBy(r => r.Kind).ThenBy(r => r.Path, StringComparer.Ordinal).ToList();

        _exactHosts = routes.Where(r => r.Host.Length > 0 && !r.Host.StartsWith("*.", StringComparison.Ordinal))
            .GroupBy(r => r.Host, StringComparer.OrdinalIgnoreCase)
            .ToDictionary(g => g.Key, g => Ordered(g), StringComparer.OrdinalIgnoreCase);
        _wildcardHosts = routes.Where(r => r.Host.StartsWith("*.", StringComparison.Ordinal))
            .GroupBy(r => r.Host[1..], StringComparer.OrdinalIgnoreCase)
            .ToDictionary(g => g.Key, g => Ordered(g), StringComparer.OrdinalIgnoreCase);
        _anyHost = Ordered(routes.Where(r => r.Host.Length == 0));
    }

    /// <summary>An empty table: every request gets 404.</summary>
    public static RoutingTable Empty { get; } = new([], null, new Dictionary<string, SslStreamCertificateContext>(), [], []);

    /// <summary>Every route, in the order the Ingresses were read.</summary>
    public IReadOnlyList<Route> Routes { get; }

    /// <summary>The default backend (of the oldest Ingress that names one), or null.</summary>
    public Backend? DefaultBackend { get; }

    /// <summary>Problems found while building, one per Ingress and cause.</summary>
    public IReadOnlyList<IngressProblem> Problems { get; }

    /// <summary>The Ingresses this table serves.</summary>
    public IReadOnlyList<ServedIngress> Served { get; }

    /// <summary>The hosts with a TLS certificate (exact names and <c>*.domain</c> wildcards).</summary>
    public IReadOnlyCollection<string> CertificateHosts => _certificates.Keys.ToList();

    /// <summary>
    /// The route for a request: rules of the exact host first, then of a matching wildcard host (one DNS label), then
    /// rules without host; within each, the longest matching path, Exact before Prefix; else the default backend; else null.
    /// </summary>
    /// <param name="host">The request's host, with or without port.</param>
    /// <param name="path">The request's path (decoded, as ASP.NET Core gives it).</param>
    public RouteMatch? Match(string host, string path)
    {
        host = NormalizeHost(host);
        if (path.Length == 0)
        {
            path = "/";
        }

        if (_exactHosts.TryGetValue(host, out var exact) && First(exact, path) is { } r1)
        {
            return new RouteMatch(r1, r1.Backend);
        }

        var dot = host.IndexOf('.', StringComparison.Ordinal);
        if (dot > 0 && _wildcardHosts.TryGetValue(host[dot..], out var wild) && First(wild, path) is { } r2)
        {
            return new RouteMatch(r2, r2.Backend);
        }

        if (First(_anyHost, path) is { } r3)
        {
            return new RouteMatch(r3, r3.Backend);
        }

        return DefaultBackend is { } d ? new RouteMatch(null, d) : null;
    }

    /// <summary>The certificate for a TLS server name (SNI): the exact host's, else its wildcard's; null for none.</summary>
    public SslStreamCertificateContext? CertificateFor(string? serverName)
    {
        if (string.IsNullOrEmpty(serverName))
        {
            return null;
        }

        var host = NormalizeHost(serverName);
        if (_certificates.TryGetValue(host, out var c))
        {
            return c;
        }

        var dot = host.IndexOf('.', StringComparison.Ordinal);
        return dot > 0 && _certificates.TryGetValue("*" + host[dot..], out var w) ? w : null;
    }

    /// <summary>Lower case, without port and trailing dot; IPv6 literals keep their brackets.</summary>
    public static string NormalizeHost(string host)
    {
        if (host.StartsWith('['))
        {
            var end = host.IndexOf(']', StringComparison.Ordinal);
            return (end > 0 ? host[..(end + 1)] : host).ToLowerInvariant();
        }

        var colon = host.IndexOf(':', StringComparison.Ordinal);
        if (colon >= 0)
        {
            host = host[..colon];
        }

        return host.TrimEnd('.').ToLowerInvariant();
    }

    private static Route? First(IReadOnlyList<Route> routes, string path)
    {
        foreach (var r in routes)
        {
            if (r.Matches(path))
            {
                return r;
            }
        }

        return null;
    }
}
