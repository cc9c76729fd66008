using System.Globalization;
using System.Text;
using static Coracle.Plugins.Addon.YamlText;

namespace Coracle.Plugins.Addon.CoreDns;

/// <summary>
/// Renders <c>coredns.yaml</c>, the objects of K3s's manifests/coredns.yaml: the <c>coredns</c> ServiceAccount, the
/// <c>system:coredns</c> ClusterRole and binding, the <c>coredns</c> ConfigMap (Corefile and NodeHosts), the Deployment and
/// the <c>kube-dns</c> Service. Pure: the same settings give the same bytes.
/// </summary>
internal static class CoreDnsManifest
{
    /// <summary>The manifest for <paramref name="node"/>'s cluster, running <paramref name="image"/>.</summary>
    public static string Render(NodeSettings node, string image)
    {
        ArgumentNullException.ThrowIfNull(node);
        return string.Join("---\n", ServiceAccount, Rbac, ConfigMap(node), Deployment(image), Service(node.ClusterDns));
    }

    /// <summary>
    /// K3s's Corefile: the cluster domain and reverse zones from the Kubernetes API, the nodes' names from NodeHosts,
    /// everything else forwarded to the node's resolv.conf; <c>coredns-custom</c>'s <c>*.override</c> keys extend the main
    /// server block and its <c>*.server</c> keys add server blocks.
    /// </summary>
    public static string Corefile(string clusterDomain) => $$"""
        .:53 {
            errors
            health
            ready
            kubernetes {{clusterDomain}} in-addr.arpa ip6.arpa {
              pods insecure
              fallthrough in-addr.arpa ip6.arpa
            }
            hosts /etc/coredns/NodeHosts {
              ttl 60
              reload 15s
              fallthrough
            }
            prometheus :9153
            forward . /etc/resolv.conf
            cache 30
            loop
            reload
            loadbalance
            import /etc/coredns/custom/*.override
        }
        import /etc/coredns/custom/*.server

        """;

    /// <summary>The hosts file CoreDNS serves the node names from: this server's addresses and name (K3s keeps every node's there).</summary>
    public static string NodeHosts(NodeSettings node)
    {
        ArgumentNullException.ThrowIfNull(node);
        var text = new StringBuilder();
        foreach (var ip in node.NodeIps)
        {
            text.Append(CultureInfo.InvariantCulture, $"{ip} {node.NodeName}\n");
        }

        return text.ToString();
    }

    private const string ServiceAccount = """
        apiVersion: v1
        kind: ServiceAccount
        metadata:
          name: coredns
          namespace: kube-system

        """;

    private const string Rbac = """
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRole
        metadata:
          name: system:coredns
          labels:
            kubernetes.io/bootstrapping: rbac-defaults
        rules:
          - apiGroups: [""]
            resources: [endpoints, services, pods, namespaces]
            verbs: [list, watch]
          - apiGroups: [discovery.k8s.io]
            resources: [endpointslices]
            verbs: [list, watch]
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRoleBinding
        metadata:
          name: system:coredns
          annotations:
            rbac.authorization.kubernetes.io/autoupdate: "true"
          labels:
            kubernetes.io/bootstrapping: rbac-defaults
        roleRef:
          apiGroup: rbac.authorization.k8s.io
          kind: ClusterRole
          name: system:coredns
        subjects:
          - kind: ServiceAccount
            name: coredns
            namespace: kube-system

        """;

    private static string ConfigMap(NodeSettings node) => $$"""
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: coredns
          namespace: kube-system
        data:
          Corefile: |
        {{Indent(Corefile(node.ClusterDomain), 4)}}
          NodeHosts: {{Quote(NodeHosts(node))}}

        """;

    private static string Deployment(string image) => $$"""
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: coredns
          namespace: kube-system
          labels:
            k8s-app: kube-dns
            kubernetes.io/name: CoreDNS
        spec:
          revisionHistoryLimit: 0
          strategy:
            type: RollingUpdate
            rollingUpdate:
              maxUnavailable: 1
          selector:
            matchLabels:
              k8s-app: kube-dns
          template:
            metadata:
              labels:
                k8s-app: kube-dns
            spec:
              priorityClassName: system-cluster-critical
              serviceAccountName: coredns
              tolerations:
                - key: CriticalAddonsOnly
                  operator: Exists
                - key: node-role.kubernetes.io/control-plane
                  operator: Exists
                  effect: NoSchedule
                - key: node-role.kubernetes.io/master
                  operator: Exists
                  effect: NoSchedule
              nodeSelector:
                kubernetes.io/os: linux
              topologySpreadConstraints:
                - maxSkew: 1
                  topologyKey: kubernetes.io/hostname
                  whenUnsatisfiable: DoNotSchedule
                  labelSelector:
                    matchLabels:
                      k8s-app: kube-dns
              containers:
                - name: coredns
                  image: {{Quote(image)}}
                  imagePullPolicy: IfNotPresent
                  resources:
                    limits:
                      memory: 170Mi
                    requests:
                      cpu: 100m
                      memory: 70Mi
                  args: ["-conf", "/etc/coredns/Corefile"]
                  volumeMounts:
                    - name: config-volume
                      mountPath: /etc/coredns
                      readOnly: true
                    - name: custom-config-volume
                      mountPath: /etc/coredns/custom
                      readOnly: true
                  ports:
                    - containerPort: 53
                      name: dns
                      protocol: UDP
                    - containerPort: 53
                      name: dns-tcp
                      protocol: TCP
                    - containerPort: 9153
                      name: metrics
                      protocol: TCP
                  securityContext:
                    allowPrivilegeEscalation: false
                    capabilities:
                      add: [NET_BIND_SERVICE]
                      drop: [all]
                    readOnlyRootFilesystem: true
                  livenessProbe:
                    httpGet:
                      path: /health
                      port: 8080
                      scheme: HTTP
                    initialDelaySeconds: 60
                    periodSeconds: 10
                    timeoutSeconds: 1
                    successThreshold: 1
                    failureThreshold: 3
                  readinessProbe:
                    httpGet:
                      path: /ready
                      port: 8181
                      scheme: HTTP
                    initialDelaySeconds: 0
                    periodSeconds: 2
                    timeoutSeconds: 1
                    successThreshold: 1
                    failureThreshold: 3
              dnsPolicy: Default
              volumes:
                - name: config-volume
                  configMap:
                    name: coredns
                    items:
                      - key: Corefile
                        path: Corefile
                      - key: NodeHosts
                        path: NodeHosts
                - name: custom-config-volume
                  configMap:
                    name: coredns-custom
                    optional: true

        """;

    private static string Service(string clusterDns) => $$"""
        apiVersion: v1
        kind: Service
        metadata:
          name: kube-dns
          namespace: kube-system
          annotations:
            prometheus.io/port: "9153"
            prometheus.io/scrape: "true"
          labels:
            k8s-app: kube-dns
            kubernetes.io/cluster-service: "true"
            kubernetes.io/name: CoreDNS
        spec:
          selector:
            k8s-app: kube-dns
          clusterIP: {{Quote(clusterDns)}}
          clusterIPs: [{{Quote(clusterDns)}}]
          ipFamilyPolicy: SingleStack
          ports:
            - name: dns
              port: 53
              protocol: UDP
            - name: dns-tcp
              port: 53
              protocol: TCP
            - name: metrics
              port: 9153
              protocol: TCP

        """;
}
