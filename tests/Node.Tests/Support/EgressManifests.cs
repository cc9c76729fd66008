using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Coracle.Node.Tests.Support;

/// <summary>
/// The workloads behind kube-apiserver's "cluster" egress in the egress tests: metrics-server with its APIService
/// (an aggregated API) and a validating admission webhook served by a pod, each pinned to one node.
/// </summary>
internal static class EgressManifests
{
    public const string WebhookNamespace = "egress-webhook";
    public const string GuardedNamespace = "egress-guarded";
    public const string DenyLabel = "coracle-test/deny";

    /// <summary>metrics-server as its upstream components.yaml installs it, on <paramref name="node"/>.</summary>
    public static string MetricsServer(string node) => $$$"""
        apiVersion: v1
        kind: ServiceAccount
        metadata: {name: metrics-server, namespace: kube-system, labels: {k8s-app: metrics-server}}
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRole
        metadata: {name: "system:metrics-server", labels: {k8s-app: metrics-server}}
        rules:
        - {apiGroups: [""], resources: [nodes/metrics], verbs: [get]}
        - {apiGroups: [""], resources: [pods, nodes], verbs: [get, list, watch]}
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: RoleBinding
        metadata: {name: metrics-server-auth-reader, namespace: kube-system}
        roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: extension-apiserver-authentication-reader}
        subjects: [{kind: ServiceAccount, name: metrics-server, namespace: kube-system}]
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRoleBinding
        metadata: {name: "metrics-server:system:auth-delegator"}
        roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:auth-delegator"}
        subjects: [{kind: ServiceAccount, name: metrics-server, namespace: kube-system}]
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRoleBinding
        metadata: {name: "system:metrics-server"}
        roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:metrics-server"}
        subjects: [{kind: ServiceAccount, name: metrics-server, namespace: kube-system}]
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: metrics-server, namespace: kube-system, labels: {k8s-app: metrics-server}}
        spec:
          selector: {k8s-app: metrics-server}
          ports: [{name: https, port: 443, protocol: TCP, targetPort: https}]
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: metrics-server, namespace: kube-system, labels: {k8s-app: metrics-server}}
        spec:
          selector: {matchLabels: {k8s-app: metrics-server}}
          template:
            metadata: {labels: {k8s-app: metrics-server}}
            spec:
              serviceAccountName: metrics-server
              nodeSelector: {kubernetes.io/hostname: "{{{node}}}"}
              terminationGracePeriodSeconds: 1
              containers:
              - name: metrics-server
                image: "{{{AddonImages.MetricsServer}}}"
                imagePullPolicy: Never
                args: [--cert-dir=/tmp, --secure-port=10250, --kubelet-preferred-address-types=InternalIP, --kubelet-use-node-status-port, --metric-resolution=15s, --kubelet-insecure-tls]
                ports: [{name: https, containerPort: 10250, protocol: TCP}]
                readinessProbe:
                  httpGet: {path: /readyz, port: https, scheme: HTTPS}
                  periodSeconds: 5
        ---
        apiVersion: apiregistration.k8s.io/v1
        kind: APIService
        metadata: {name: v1beta1.metrics.k8s.io, labels: {k8s-app: metrics-server}}
        spec:
          service: {name: metrics-server, namespace: kube-system}
          group: metrics.k8s.io
          version: v1beta1
          insecureSkipTLSVerify: true
          groupPriorityMinimum: 100
          versionPriority: 100
        """;

    /// <summary>
    /// The test webhook (Deployment and Service in <see cref="WebhookNamespace"/>, on <paramref name="node"/>) and a
    /// ValidatingWebhookConfiguration that sends every ConfigMap created in <see cref="GuardedNamespace"/> to it, failing
    /// closed — so an allowed ConfigMap proves the call went through as much as a denied one.
    /// </summary>
    public static string Webhook(string node)
    {
        var (certificate, key) = ServingCertificate($"webhook.{WebhookNamespace}.svc");
        string B64(string pem) => Convert.ToBase64String(Encoding.ASCII.GetBytes(pem));
        return $$$"""
            apiVersion: v1
            kind: Namespace
            metadata: {name: {{{WebhookNamespace}}}}
            ---
            apiVersion: v1
            kind: Secret
            metadata: {name: webhook-tls, namespace: {{{WebhookNamespace}}}}
            type: kubernetes.io/tls
            data: {tls.crt: {{{B64(certificate)}}}, tls.key: {{{B64(key)}}}}
            ---
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: webhook, namespace: {{{WebhookNamespace}}}}
            spec:
              selector: {matchLabels: {app: webhook}}
              template:
                metadata: {labels: {app: webhook}}
                spec:
                  nodeSelector: {kubernetes.io/hostname: "{{{node}}}"}
                  terminationGracePeriodSeconds: 1
                  containers:
                  - name: webhook
                    image: "{{{AddonImages.Webhook}}}"
                    imagePullPolicy: Never
                    args: [--listen=:8443, --cert=/tls/tls.crt, --key=/tls/tls.key, --deny-label={{{DenyLabel}}}]
                    ports: [{name: https, containerPort: 8443, protocol: TCP}]
                    readinessProbe:
                      httpGet: {path: /healthz, port: https, scheme: HTTPS}
                      periodSeconds: 2
                    volumeMounts: [{name: tls, mountPath: /tls, readOnly: true}]
                  volumes: [{name: tls, secret: {secretName: webhook-tls}}]
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: webhook, namespace: {{{WebhookNamespace}}}}
            spec:
              selector: {app: webhook}
              ports: [{name: https, port: 443, protocol: TCP, targetPort: https}]
            ---
            apiVersion: v1
            kind: Namespace
            metadata: {name: {{{GuardedNamespace}}}, labels: {coracle-test/webhook: "on"}}
            ---
            apiVersion: admissionregistration.k8s.io/v1
            kind: ValidatingWebhookConfiguration
            metadata: {name: coracle-egress-test}
            webhooks:
            - name: deny.egress.coracle.test
              admissionReviewVersions: [v1]
              sideEffects: None
              failurePolicy: Fail
              timeoutSeconds: 10
              clientConfig:
                caBundle: {{{B64(certificate)}}}
                service: {name: webhook, namespace: {{{WebhookNamespace}}}, path: /validate, port: 443}
              rules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [configmaps]}]
              namespaceSelector: {matchLabels: {coracle-test/webhook: "on"}}
            """;
    }

    /// <summary>A ConfigMap in <see cref="GuardedNamespace"/>, labelled for denial or not.</summary>
    public static string ConfigMap(string name, bool deny) => $$$"""
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: {{{name}}}, namespace: {{{GuardedNamespace}}}, labels: {"{{{DenyLabel}}}": "{{{(deny ? "true" : "false")}}}"}}
        data: {a: b}
        """;

    /// <summary>A self-signed serving certificate for <paramref name="dnsName"/> (its own CA bundle), PEM.</summary>
    private static (string Certificate, string Key) ServingCertificate(string dnsName)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=" + dnsName, key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName(dnsName);
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddHours(-1), DateTimeOffset.UtcNow.AddDays(1));
        return (certificate.ExportCertificatePem(), key.ExportPkcs8PrivateKeyPem());
    }
}
