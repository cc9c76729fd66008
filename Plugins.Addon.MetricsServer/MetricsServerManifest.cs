using static Coracle.Plugins.Addon.YamlText;

namespace Coracle.Plugins.Addon.MetricsServer;

/// <summary>
/// Renders <c>metrics-server.yaml</c>, the objects of K3s's manifests/metrics-server/: the ServiceAccount, the ClusterRoles
/// <c>system:aggregated-metrics-reader</c> (aggregated into view/edit/admin) and <c>system:metrics-server</c> with their
/// bindings, the auth-delegator binding and the RoleBinding to <c>extension-apiserver-authentication-reader</c>, the
/// Service, the Deployment and the <c>v1beta1.metrics.k8s.io</c> APIService. Pure: the same options give the same bytes.
/// </summary>
internal static class MetricsServerManifest
{
    /// <summary>
    /// K3s's arguments: serve on 10250 in the pod, reach each kubelet at its InternalIP and the port its Node status
    /// names, scrape every 15 s, and offer only forward-secret AEAD TLS ciphers.
    /// </summary>
    public static IReadOnlyList<string> Args { get; } =
    [
        "--cert-dir=/tmp",
        "--secure-port=10250",
        "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
        "--kubelet-use-node-status-port",
        "--metric-resolution=15s",
        "--tls-cipher-suites=TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
    ];

    /// <summary>The manifest running <paramref name="image"/>; <paramref name="kubeletInsecureTls"/> adds <c>--kubelet-insecure-tls</c>.</summary>
    public static string Render(string image, bool kubeletInsecureTls)
    {
        IReadOnlyList<string> args = kubeletInsecureTls ? [.. Args, "--kubelet-insecure-tls"] : Args;
        return string.Join("---\n", Rbac, Service, Deployment(image, args), ApiService);
    }

    private const string Rbac = """
        apiVersion: v1
        kind: ServiceAccount
        metadata:
          name: metrics-server
          namespace: kube-system
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRole
        metadata:
          name: system:aggregated-metrics-reader
          labels:
            rbac.authorization.k8s.io/aggregate-to-view: "true"
            rbac.authorization.k8s.io/aggregate-to-edit: "true"
            rbac.authorization.k8s.io/aggregate-to-admin: "true"
        rules:
          - apiGroups: [metrics.k8s.io]
            resources: [pods, nodes]
            verbs: [get, list, watch]
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRole
        metadata:
          name: system:metrics-server
          labels:
            k8s-app: metrics-server
        rules:
          - apiGroups: [""]
            resources: [nodes/metrics]
            verbs: [get]
          - apiGroups: [""]
            resources: [pods, nodes, nodes/stats, namespaces, configmaps]
            verbs: [get, list, watch]
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRoleBinding
        metadata:
          name: system:metrics-server
        roleRef:
          apiGroup: rbac.authorization.k8s.io
          kind: ClusterRole
          name: system:metrics-server
        subjects:
          - kind: ServiceAccount
            name: metrics-server
            namespace: kube-system
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRoleBinding
        metadata:
          name: metrics-server:system:auth-delegator
        roleRef:
          apiGroup: rbac.authorization.k8s.io
          kind: ClusterRole
          name: system:auth-delegator
        subjects:
          - kind: ServiceAccount
            name: metrics-server
            namespace: kube-system
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: RoleBinding
        metadata:
          name: metrics-server-auth-reader
          namespace: kube-system
        roleRef:
          apiGroup: rbac.authorization.k8s.io
          kind: Role
          name: extension-apiserver-authentication-reader
        subjects:
          - kind: ServiceAccount
            name: metrics-server
            namespace: kube-system

        """;

    private const string Service = """
        apiVersion: v1
        kind: Service
        metadata:
          name: metrics-server
          namespace: kube-system
          labels:
            kubernetes.io/name: Metrics-server
            kubernetes.io/cluster-service: "true"
        spec:
          selector:
            k8s-app: metrics-server
          ports:
            - name: https
              port: 443
              protocol: TCP
              targetPort: https

        """;

    private static string Deployment(string image, IReadOnlyList<string> args) => $$"""
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: metrics-server
          namespace: kube-system
          labels:
            k8s-app: metrics-server
        spec:
          revisionHistoryLimit: 0
          selector:
            matchLabels:
              k8s-app: metrics-server
          template:
            metadata:
              name: metrics-server
              labels:
                k8s-app: metrics-server
            spec:
              priorityClassName: system-node-critical
              serviceAccountName: metrics-server
              tolerations:
                - key: CriticalAddonsOnly
                  operator: Exists
                - key: node-role.kubernetes.io/control-plane
                  operator: Exists
                  effect: NoSchedule
                - key: node-role.kubernetes.io/master
                  operator: Exists
                  effect: NoSchedule
              volumes:
                - name: tmp-dir
                  emptyDir: {}
              containers:
                - name: metrics-server
                  image: {{Quote(image)}}
                  imagePullPolicy: IfNotPresent
                  args:
        {{string.Join("\n", args.Select(a => "            - " + Quote(a)))}}
                  resources:
                    requests:
                      cpu: 100m
                      memory: 70Mi
                  ports:
                    - containerPort: 10250
                      name: https
                      protocol: TCP
                  readinessProbe:
                    httpGet:
                      path: /readyz
                      port: https
                      scheme: HTTPS
                    periodSeconds: 2
                    failureThreshold: 3
                    initialDelaySeconds: 0
                  livenessProbe:
                    httpGet:
                      path: /livez
                      port: https
                      scheme: HTTPS
                    periodSeconds: 10
                    failureThreshold: 3
                    initialDelaySeconds: 60
                  securityContext:
                    readOnlyRootFilesystem: true
                    runAsNonRoot: true
                    runAsUser: 1000
                    allowPrivilegeEscalation: false
                  volumeMounts:
                    - name: tmp-dir
                      mountPath: /tmp

        """;

    private const string ApiService = """
        apiVersion: apiregistration.k8s.io/v1
        kind: APIService
        metadata:
          name: v1beta1.metrics.k8s.io
        spec:
          service:
            name: metrics-server
            namespace: kube-system
          group: metrics.k8s.io
          version: v1beta1
          insecureSkipTLSVerify: true
          groupPriorityMinimum: 100
          versionPriority: 100

        """;
}
