using System.Text;
using k8s.Models;

namespace Coracle.Plugins.Ingress.Tests.Support;

/// <summary>Kubernetes objects as kube-apiserver would return them, built in a line each.</summary>
internal static class K8sObjects
{
    public static V1HTTPIngressPath Path(string path, string type, string service, int port) => new()
    {
        Path = path,
        PathType = type,
        Backend = new V1IngressBackend { Service = new V1IngressServiceBackend { Name = service, Port = new V1ServiceBackendPort { Number = port } } },
    };

    public static V1IngressRule Rule(string? host, params V1HTTPIngressPath[] paths) =>
        new() { Host = host, Http = new V1HTTPIngressRuleValue { Paths = paths.ToList() } };

    public static V1Ingress NewIngress(
        string name, V1IngressRule[] rules, string? className = "yarp", string ns = "default", DateTime? created = null,
        (string Service, int Port)? defaultBackend = null, V1IngressTLS[]? tls = null) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = ns, CreationTimestamp = created ?? new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc), Uid = Guid.NewGuid().ToString() },
        Spec = new V1IngressSpec
        {
            IngressClassName = className,
            Rules = rules.ToList(),
            DefaultBackend = defaultBackend is { } d
                ? new V1IngressBackend { Service = new V1IngressServiceBackend { Name = d.Service, Port = new V1ServiceBackendPort { Number = d.Port } } }
                : null,
            Tls = tls?.ToList(),
        },
    };

    public static V1Service Service(string name, params (string? Name, int Port)[] ports) => Service(name, "default", ports);

    public static V1Service Service(string name, string ns, params (string? Name, int Port)[] ports) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = ns },
        Spec = new V1ServiceSpec { Type = "ClusterIP", Ports = ports.Select(p => new V1ServicePort { Name = p.Name, Port = p.Port }).ToList() },
    };

    /// <summary>An EndpointSlice of <paramref name="service"/>: one port, endpoints as (address, ready).</summary>
    public static V1EndpointSlice Slice(string service, string? portName, int targetPort, params (string Address, bool? Ready)[] endpoints) => new()
    {
        Metadata = new V1ObjectMeta
        {
            Name = service + "-" + Guid.NewGuid().ToString("N")[..5],
            NamespaceProperty = "default",
            Labels = new Dictionary<string, string> { ["kubernetes.io/service-name"] = service },
        },
        AddressType = "IPv4",
        Ports = [new Discoveryv1EndpointPort { Name = portName, Port = targetPort, Protocol = "TCP" }],
        Endpoints = endpoints.Select(e => new V1Endpoint { Addresses = [e.Address], Conditions = new V1EndpointConditions { Ready = e.Ready } }).ToList(),
    };

    public static V1Secret TlsSecret(string name, string certificatePem, string keyPem) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = "default" },
        Type = "kubernetes.io/tls",
        Data = new Dictionary<string, byte[]> { ["tls.crt"] = Encoding.ASCII.GetBytes(certificatePem), ["tls.key"] = Encoding.ASCII.GetBytes(keyPem) },
    };
}
