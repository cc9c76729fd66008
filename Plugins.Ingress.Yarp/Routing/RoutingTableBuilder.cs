using System.Globalization;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using k8s.Models;

namespace Coracle.Plugins.Ingress.Yarp.Routing;

/// <summary>The cluster objects the table is built from, as last listed or watched.</summary>
internal sealed record ClusterObjects(
    IReadOnlyList<V1Ingress> Ingresses,
    IReadOnlyList<V1Service> Services,
    IReadOnlyList<V1EndpointSlice> EndpointSlices,
    IReadOnlyList<V1Secret> Secrets);

/// <summary>Which Ingresses are this controller's: those of class <see cref="ClassName"/>, and class-less ones when it is the default class.</summary>
internal sealed record ClassSelection(string ClassName, bool IsDefault);

/// <summary>
/// Ingresses + Services + EndpointSlices + Secrets → <see cref="RoutingTable"/>. Pure: no I/O, no clock; the same
/// objects give the same table, so every rule is tested without Kubernetes.
/// </summary>
internal static class RoutingTableBuilder
{
    /// <summary>The legacy class annotation, still honoured by Kubernetes' own controllers.</summary>
    public const string ClassAnnotation = "kubernetes.io/ingress.class";

    /// <summary>The label an EndpointSlice names its Service with.</summary>
    public const string ServiceNameLabel = "kubernetes.io/service-name";

    public static RoutingTable Build(ClusterObjects objects, ClassSelection selection)
    {
        var services = objects.Services.Where(s => s.Metadata?.Name is not null)
            .ToDictionary(s => Key(s.Metadata.NamespaceProperty, s.Metadata.Name), StringComparer.Ordinal);
        var slices = objects.EndpointSlices
            .Where(s => s.Metadata?.Labels is not null && s.Metadata.Labels.TryGetValue(ServiceNameLabel, out _))
            .ToLookup(s => Key(s.Metadata.NamespaceProperty, s.Metadata.Labels[ServiceNameLabel]), StringComparer.Ordinal);
        var secrets = objects.Secrets.Where(s => s.Metadata?.Name is not null)
            .ToDictionary(s => Key(s.Metadata.NamespaceProperty, s.Metadata.Name), StringComparer.Ordinal);

        // Oldest first: on a conflict (the same host, path and type in two Ingresses, two default backends) the oldest wins,
        // as with ingress-nginx.
        var ingresses = objects.Ingresses.Where(i => IsServed(i, selection))
            .OrderBy(i => i.Metadata.CreationTimestamp ?? DateTime.MinValue)
            .ThenBy(i => i.Metadata.NamespaceProperty, StringComparer.Ordinal)
            .ThenBy(i => i.Metadata.Name, StringComparer.Ordinal)
            .ToList();

        var routes = new List<Route>();
        var seen = new HashSet<(string Host, string Path, PathKind Kind)>();
        var problems = new List<IngressProblem>();
        var served = new List<ServedIngress>();
        var certificates = new Dictionary<string, SslStreamCertificateContext>(StringComparer.OrdinalIgnoreCase);
        Backend? defaultBackend = null;

        foreach (var ingress in ingresses)
        {
            var ns = ingress.Metadata.NamespaceProperty ?? "default";
            var name = ingress.Metadata.Name;
            var id = Key(ns, name);
            var hosts = new List<string>();
            var reported = new HashSet<string>(StringComparer.Ordinal);

            void Problem(string reason, string message)
            {
                if (reported.Add(reason + "\n" + message))
                {
                    problems.Add(new IngressProblem(ns, name, reason, message));
                }
            }

            Backend Resolve(V1IngressBackend? backend, string where)
            {
                if (backend?.Service is not { } service)
                {
                    var what = backend?.Resource is { } r ? $"resource backend {r.Kind}/{r.Name}" : "a backend without service";
                    Problem("BackendNotSupported", $"{where}: {what} is not supported by yarp; name a Service");
                    return new Backend(ns, "", "", [], $"{where} of ingress {id} names no Service");
                }

                var b = ResolveService(ns, service, services, slices);
                if (b.Problem is { } p)
                {
                    Problem(services.ContainsKey(Key(ns, service.Name)) ? "ServicePortNotFound" : "ServiceNotFound", $"{where}: {p}");
                }

                return b;
            }

            if (ingress.Spec?.DefaultBackend is { } db)
            {
                var b = Resolve(db, "defaultBackend");
                if (defaultBackend is null)
                {
                    defaultBackend = b;
                    hosts.Add("*");
                }
                else
                {
                    Problem("DefaultBackendConflict", $"defaultBackend ignored: the older ingress serving {defaultBackend.Key} as default backend wins");
                }
            }

            var rules = ingress.Spec?.Rules ?? [];
            for (var ri = 0; ri < rules.Count; ri++)
            {
                var rule = rules[ri];
                var host = (rule.Host ?? "").Trim().ToLowerInvariant();
                var paths = rule.Http?.Paths ?? [];
                foreach (var p in paths)
                {
                    var path = string.IsNullOrEmpty(p.Path) ? "/" : p.Path;
                    var kind = string.Equals(p.PathType, "Exact", StringComparison.Ordinal) ? PathKind.Exact : PathKind.Prefix;
                    var where = $"rule {(host.Length == 0 ? "*" : host)}{path}";
                    if (!path.StartsWith('/'))
                    {
                        Problem("InvalidPath", $"{where}: path must start with '/'");
                        continue;
                    }

                    var backend = Resolve(p.Backend, where);
                    var canonical = kind == PathKind.Prefix && path.Length > 1 ? path.TrimEnd('/') : path;
                    if (!seen.Add((host, canonical, kind)))
                    {
                        Problem("RuleConflict", $"{where} ({kind}) ignored: an older ingress serves the same host and path");
                        continue;
                    }

                    routes.Add(new Route(id, host, path, kind, backend));
                }

                var shown = host.Length == 0 ? "*" : host;
                if (paths.Count > 0 && !hosts.Contains(shown))
                {
                    hosts.Add(shown);
                }
            }

            foreach (var tls in ingress.Spec?.Tls ?? [])
            {
                var tlsHosts = tls.Hosts is { Count: > 0 } h
                    ? h.Select(x => x.Trim().ToLowerInvariant()).ToList()
                    : rules.Select(r => (r.Host ?? "").Trim().ToLowerInvariant()).Where(x => x.Length > 0).Distinct().ToList();
                if (string.IsNullOrEmpty(tls.SecretName))
                {
                    Problem("SecretNotFound", $"tls for {string.Join(",", tlsHosts)} names no secretName; set spec.tls[].secretName to a kubernetes.io/tls Secret");
                    continue;
                }

                if (!secrets.TryGetValue(Key(ns, tls.SecretName), out var secret))
                {
                    Problem("SecretNotFound", $"TLS secret {ns}/{tls.SecretName} not found; create a kubernetes.io/tls Secret with tls.crt and tls.key");
                    continue;
                }

                if (LoadCertificate(secret, out var error) is not { } context)
                {
                    Problem("SecretInvalid", $"TLS secret {ns}/{tls.SecretName}: {error}");
                    continue;
                }

                foreach (var th in tlsHosts)
                {
                    certificates.TryAdd(th, context);
                }
            }

            served.Add(new ServedIngress(ns, name, hosts));
        }

        return new RoutingTable(routes, defaultBackend, certificates, problems, served);
    }

    /// <summary>True when the Ingress is of <see cref="ClassSelection.ClassName"/> (field or legacy annotation), or has no class and the selection is the default class.</summary>
    public static bool IsServed(V1Ingress ingress, ClassSelection selection)
    {
        if (ingress.Metadata?.Name is null)
        {
            return false;
        }

        var byField = ingress.Spec?.IngressClassName;
        string? byAnnotation = null;
        ingress.Metadata.Annotations?.TryGetValue(ClassAnnotation, out byAnnotation);
        var cls = !string.IsNullOrEmpty(byField) ? byField : byAnnotation;
        return string.IsNullOrEmpty(cls) ? selection.IsDefault : string.Equals(cls, selection.ClassName, StringComparison.Ordinal);
    }

    /// <summary>
    /// A Service port to its ready endpoints: the EndpointSlices labelled with the Service, the slice port named like the
    /// Service port, endpoints whose <c>ready</c> condition is not false, one address each.
    /// </summary>
    public static Backend ResolveService(
        string ns, V1IngressServiceBackend service, IReadOnlyDictionary<string, V1Service> services, ILookup<string, V1EndpointSlice> slices)
    {
        var portText = service.Port?.Number is { } n ? n.ToString(CultureInfo.InvariantCulture) : service.Port?.Name ?? "";
        var key = Key(ns, service.Name);
        if (!services.TryGetValue(key, out var svc))
        {
            return new Backend(ns, service.Name, portText, [], $"service {key} not found");
        }

        if (string.Equals(svc.Spec?.Type, "ExternalName", StringComparison.Ordinal))
        {
            return new Backend(ns, service.Name, portText, [], $"service {key} is of type ExternalName, which yarp does not proxy");
        }

        var port = svc.Spec?.Ports?.FirstOrDefault(p =>
            service.Port?.Number is { } num ? p.Port == num : string.Equals(p.Name, service.Port?.Name, StringComparison.Ordinal));
        if (port is null)
        {
            var have = string.Join(", ", (svc.Spec?.Ports ?? []).Select(p => string.IsNullOrEmpty(p.Name) ? p.Port.ToString(CultureInfo.InvariantCulture) : $"{p.Name}/{p.Port}"));
            return new Backend(ns, service.Name, portText, [], $"service {key} has no port {portText} (ports: {(have.Length == 0 ? "none" : have)})");
        }

        var destinations = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var slice in slices[key])
        {
            var slicePort = slice.Ports?.FirstOrDefault(p => string.Equals(p.Name ?? "", port.Name ?? "", StringComparison.Ordinal));
            if (slicePort?.Port is not { } target)
            {
                continue;
            }

            var v6 = string.Equals(slice.AddressType, "IPv6", StringComparison.Ordinal);
            if (!v6 && !string.Equals(slice.AddressType, "IPv4", StringComparison.Ordinal))
            {
                continue;
            }

            foreach (var endpoint in slice.Endpoints ?? [])
            {
                if (endpoint.Conditions?.Ready == false || endpoint.Addresses is not { Count: > 0 } addresses)
                {
                    continue;
                }

                destinations.Add(v6 ? $"[{addresses[0]}]:{target}" : $"{addresses[0]}:{target}");
            }
        }

        return new Backend(ns, service.Name, portText, destinations.ToList(), null);
    }

    /// <summary>The certificate chain and key of a TLS Secret (<c>tls.crt</c>, <c>tls.key</c>, PEM), or null with the reason.</summary>
    public static SslStreamCertificateContext? LoadCertificate(V1Secret secret, out string error)
    {
        error = "";
        if (secret.Data is null || !secret.Data.TryGetValue("tls.crt", out var crt) || !secret.Data.TryGetValue("tls.key", out var key))
        {
            error = "needs tls.crt and tls.key";
            return null;
        }

        try
        {
            var pem = Encoding.ASCII.GetString(crt);
            var chain = new X509Certificate2Collection();
            chain.ImportFromPem(pem);
            if (chain.Count == 0)
            {
                error = "tls.crt holds no PEM certificate";
                return null;
            }

            var leaf = X509Certificate2.CreateFromPem(pem, Encoding.ASCII.GetString(key));
            var intermediates = new X509Certificate2Collection();
            for (var i = 1; i < chain.Count; i++)
            {
                intermediates.Add(chain[i]);
            }

            return SslStreamCertificateContext.Create(leaf, intermediates, offline: true);
        }
        catch (CryptographicException e)
        {
            error = $"tls.crt/tls.key cannot be read ({e.Message}); they must be a PEM certificate and its matching private key";
            return null;
        }
    }

    private static string Key(string? ns, string name) => $"{ns ?? "default"}/{name}";
}
