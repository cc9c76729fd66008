using System.Globalization;
using static Coracle.Plugins.Addon.YamlText;

namespace Coracle.Plugins.Ingress.Traefik;

/// <summary>
/// Renders <c>traefik.yaml</c>: what K3s's traefik-crd and traefik charts install in kube-system, as plain objects — the
/// <c>traefik.io</c> CustomResourceDefinitions, the ServiceAccount, the ClusterRole and its binding, the default
/// IngressClass <c>traefik</c>, the Deployment and the LoadBalancer Service <c>traefik</c> on 80/443. Pure: the same
/// image and replica count give the same bytes.
/// </summary>
internal static class TraefikManifest
{
    /// <summary>The namespace everything namespaced goes to, as in K3s.</summary>
    public const string Namespace = "kube-system";

    /// <summary>The labels the Deployment selects its pods by, and the Service its endpoints (the chart's).</summary>
    public static IReadOnlyList<(string Key, string Value)> Selector { get; } =
        [("app.kubernetes.io/name", "traefik"), ("app.kubernetes.io/instance", "traefik-kube-system")];

    /// <summary>
    /// The CRDs of the traefik-crd chart (Traefik v3's <c>traefik.io</c> group, version <c>v1alpha1</c>): kind and plural.
    /// Their schemas are minimal (<c>spec</c> keeps unknown fields); Traefik validates the content itself.
    /// </summary>
    public static IReadOnlyList<(string Kind, string Plural)> Crds { get; } =
    [
        ("IngressRoute", "ingressroutes"),
        ("IngressRouteTCP", "ingressroutetcps"),
        ("IngressRouteUDP", "ingressrouteudps"),
        ("Middleware", "middlewares"),
        ("MiddlewareTCP", "middlewaretcps"),
        ("ServersTransport", "serverstransports"),
        ("ServersTransportTCP", "serverstransporttcps"),
        ("TLSOption", "tlsoptions"),
        ("TLSStore", "tlsstores"),
        ("TraefikService", "traefikservices"),
    ];

    /// <summary>
    /// The chart's arguments with K3s's values: entry points <c>web</c> :8000 and <c>websecure</c> :8443 (TLS), the API and
    /// ping on <c>traefik</c> :8080, Prometheus metrics on :9100, the CRD and Ingress providers (publishing the Service's
    /// address on Ingresses). Version checks and usage reports are off: an appliance reaches no outside service.
    /// </summary>
    public static IReadOnlyList<string> Args { get; } =
    [
        "--global.checknewversion=false",
        "--global.sendanonymoususage=false",
        "--entryPoints.metrics.address=:9100/tcp",
        "--entryPoints.traefik.address=:8080/tcp",
        "--entryPoints.web.address=:8000/tcp",
        "--entryPoints.websecure.address=:8443/tcp",
        "--api.dashboard=true",
        "--ping=true",
        "--metrics.prometheus=true",
        "--metrics.prometheus.entrypoint=metrics",
        "--providers.kubernetescrd",
        "--providers.kubernetescrd.allowEmptyServices=true",
        "--providers.kubernetesingress",
        "--providers.kubernetesingress.allowEmptyServices=true",
        "--providers.kubernetesingress.ingressendpoint.publishedservice=kube-system/traefik",
        "--entryPoints.websecure.http.tls=true",
        "--log.level=INFO",
    ];

    /// <summary>The manifest running <paramref name="image"/> in <paramref name="replicas"/> pods.</summary>
    public static string Render(string image, int replicas) =>
        string.Join("---\n", [.. Crds.Select(c => Crd(c.Kind, c.Plural)), Rbac, IngressClass, Deployment(image, replicas), Service]);

    private static string Labels(int indent) =>
        string.Join("\n", Selector.Select(l => new string(' ', indent) + l.Key + ": " + l.Value));

    private static string Crd(string kind, string plural) => $$"""
        apiVersion: apiextensions.k8s.io/v1
        kind: CustomResourceDefinition
        metadata:
          name: {{plural}}.traefik.io
        spec:
          group: traefik.io
          names:
            kind: {{kind}}
            listKind: {{kind}}List
            plural: {{plural}}
            singular: {{kind.ToLowerInvariant()}}
          scope: Namespaced
          versions:
            - name: v1alpha1
              served: true
              storage: true
              schema:
                openAPIV3Schema:
                  type: object
                  required: [metadata, spec]
                  properties:
                    apiVersion:
                      type: string
                    kind:
                      type: string
                    metadata:
                      type: object
                    spec:
                      type: object
                      x-kubernetes-preserve-unknown-fields: true

        """;

    private static readonly string Rbac = $$"""
        apiVersion: v1
        kind: ServiceAccount
        metadata:
          name: traefik
          namespace: kube-system
          labels:
        {{Labels(4)}}
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRole
        metadata:
          name: traefik-kube-system
          labels:
        {{Labels(4)}}
        rules:
          - apiGroups: [""]
            resources: [configmaps, nodes, services]
            verbs: [get, list, watch]
          - apiGroups: [""]
            resources: [endpoints, secrets]
            verbs: [get, list, watch]
          - apiGroups: [discovery.k8s.io]
            resources: [endpointslices]
            verbs: [get, list, watch]
          - apiGroups: [extensions, networking.k8s.io]
            resources: [ingressclasses, ingresses]
            verbs: [get, list, watch]
          - apiGroups: [extensions, networking.k8s.io]
            resources: [ingresses/status]
            verbs: [update]
          - apiGroups: [traefik.io]
            resources: [{{string.Join(", ", Crds.Select(c => c.Plural))}}]
            verbs: [get, list, watch]
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRoleBinding
        metadata:
          name: traefik-kube-system
          labels:
        {{Labels(4)}}
        roleRef:
          apiGroup: rbac.authorization.k8s.io
          kind: ClusterRole
          name: traefik-kube-system
        subjects:
          - kind: ServiceAccount
            name: traefik
            namespace: kube-system

        """;

    private const string IngressClass = """
        apiVersion: networking.k8s.io/v1
        kind: IngressClass
        metadata:
          name: traefik
          annotations:
            ingressclass.kubernetes.io/is-default-class: "true"
        spec:
          controller: traefik.io/ingress-controller

        """;

    private static string Deployment(string image, int replicas) => $$"""
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: traefik
          namespace: kube-system
          labels:
        {{Labels(4)}}
        spec:
          replicas: {{replicas.ToString(CultureInfo.InvariantCulture)}}
          revisionHistoryLimit: 0
          selector:
            matchLabels:
        {{Labels(6)}}
          strategy:
            type: RollingUpdate
            rollingUpdate:
              maxSurge: 1
              maxUnavailable: 0
          template:
            metadata:
              labels:
        {{Labels(8)}}
              annotations:
                prometheus.io/path: /metrics
                prometheus.io/port: "9100"
                prometheus.io/scrape: "true"
            spec:
              serviceAccountName: traefik
              automountServiceAccountToken: true
              terminationGracePeriodSeconds: 60
              priorityClassName: system-cluster-critical
              tolerations:
                - key: CriticalAddonsOnly
                  operator: Exists
                - key: node-role.kubernetes.io/control-plane
                  operator: Exists
                  effect: NoSchedule
                - key: node-role.kubernetes.io/master
                  operator: Exists
                  effect: NoSchedule
              securityContext:
                runAsGroup: 65532
                runAsNonRoot: true
                runAsUser: 65532
              volumes:
                - name: data
                  emptyDir: {}
                - name: tmp
                  emptyDir: {}
              containers:
                - name: traefik
                  image: {{Quote(image)}}
                  imagePullPolicy: IfNotPresent
                  args:
        {{string.Join("\n", Args.Select(a => "            - " + Quote(a)))}}
                  env:
                    - name: POD_NAME
                      valueFrom:
                        fieldRef:
                          fieldPath: metadata.name
                    - name: POD_NAMESPACE
                      valueFrom:
                        fieldRef:
                          fieldPath: metadata.namespace
                  ports:
                    - name: metrics
                      containerPort: 9100
                      protocol: TCP
                    - name: traefik
                      containerPort: 8080
                      protocol: TCP
                    - name: web
                      containerPort: 8000
                      protocol: TCP
                    - name: websecure
                      containerPort: 8443
                      protocol: TCP
                  readinessProbe:
                    httpGet:
                      path: /ping
                      port: 8080
                      scheme: HTTP
                    initialDelaySeconds: 2
                    periodSeconds: 10
                    timeoutSeconds: 2
                    successThreshold: 1
                    failureThreshold: 1
                  livenessProbe:
                    httpGet:
                      path: /ping
                      port: 8080
                      scheme: HTTP
                    initialDelaySeconds: 2
                    periodSeconds: 10
                    timeoutSeconds: 2
                    successThreshold: 1
                    failureThreshold: 3
                  securityContext:
                    allowPrivilegeEscalation: false
                    capabilities:
                      drop: [ALL]
                    readOnlyRootFilesystem: true
                  volumeMounts:
                    - name: data
                      mountPath: /data
                    - name: tmp
                      mountPath: /tmp

        """;

    private static readonly string Service = $$"""
        apiVersion: v1
        kind: Service
        metadata:
          name: traefik
          namespace: kube-system
          labels:
        {{Labels(4)}}
        spec:
          type: LoadBalancer
          ipFamilyPolicy: PreferDualStack
          selector:
        {{Labels(4)}}
          ports:
            - name: web
              port: 80
              targetPort: web
              protocol: TCP
            - name: websecure
              port: 443
              targetPort: websecure
              protocol: TCP

        """;
}
