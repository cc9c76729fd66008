using System.Text.Encodings.Web;
using System.Text.Json;
using static Coracle.Plugins.Addon.YamlText;

namespace Coracle.Plugins.Addon.LocalStorage;

/// <summary>
/// Renders <c>local-storage.yaml</c>, the objects of K3s's manifests/local-storage.yaml: the provisioner's ServiceAccount,
/// ClusterRole and binding, its Deployment in kube-system, the default StorageClass <c>local-path</c> and the
/// <c>local-path-config</c> ConfigMap (config.json, the setup and teardown scripts, the helper pod). Pure: the same options
/// give the same bytes.
/// </summary>
internal static class LocalStorageManifest
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true, NewLine = "\n", Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>The manifest for <paramref name="options"/>.</summary>
    public static string Render(LocalStorageOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return string.Join("---\n", Rbac, Deployment(options.Image), StorageClass, ConfigMap(options));
    }

    /// <summary>The provisioner's configuration: every node keeps its volumes under <paramref name="storagePath"/>.</summary>
    public static string ConfigJson(string storagePath) => JsonSerializer.Serialize(
        new { nodePathMap = new[] { new { node = "DEFAULT_PATH_FOR_NON_LISTED_NODES", paths = new[] { storagePath } } } }, Indented);

    /// <summary>Run in a helper pod on the volume's node before the volume is used: creates the folder.</summary>
    public const string Setup = """
        #!/bin/sh
        set -eu
        mkdir -m 0777 -p "${VOL_DIR}"
        chmod 700 "${VOL_DIR}/.."
        """;

    /// <summary>Run in a helper pod on the volume's node once the volume is released: deletes the folder.</summary>
    public const string Teardown = """
        #!/bin/sh
        set -eu
        rm -rf "${VOL_DIR}"
        """;

    /// <summary>The helper pod's template; the provisioner adds the command, the volume and the node.</summary>
    public static string HelperPod(string helperImage) => $$"""
        apiVersion: v1
        kind: Pod
        metadata:
          name: helper-pod
        spec:
          containers:
            - name: helper-pod
              image: {{Quote(helperImage)}}
              imagePullPolicy: IfNotPresent
        """;

    private const string Rbac = """
        apiVersion: v1
        kind: ServiceAccount
        metadata:
          name: local-path-provisioner-service-account
          namespace: kube-system
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRole
        metadata:
          name: local-path-provisioner-role
        rules:
          - apiGroups: [""]
            resources: [nodes, persistentvolumeclaims, configmaps, pods/log]
            verbs: [get, list, watch]
          - apiGroups: [""]
            resources: [endpoints, persistentvolumes, pods]
            verbs: ["*"]
          - apiGroups: [""]
            resources: [events]
            verbs: [create, patch]
          - apiGroups: [storage.k8s.io]
            resources: [storageclasses]
            verbs: [get, list, watch]
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRoleBinding
        metadata:
          name: local-path-provisioner-bind
        roleRef:
          apiGroup: rbac.authorization.k8s.io
          kind: ClusterRole
          name: local-path-provisioner-role
        subjects:
          - kind: ServiceAccount
            name: local-path-provisioner-service-account
            namespace: kube-system

        """;

    private const string StorageClass = """
        apiVersion: storage.k8s.io/v1
        kind: StorageClass
        metadata:
          name: local-path
          annotations:
            storageclass.kubernetes.io/is-default-class: "true"
        provisioner: rancher.io/local-path
        volumeBindingMode: WaitForFirstConsumer
        reclaimPolicy: Delete

        """;

    private static string Deployment(string image) => $$"""
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: local-path-provisioner
          namespace: kube-system
        spec:
          revisionHistoryLimit: 0
          strategy:
            type: RollingUpdate
            rollingUpdate:
              maxUnavailable: 1
          selector:
            matchLabels:
              app: local-path-provisioner
          template:
            metadata:
              labels:
                app: local-path-provisioner
            spec:
              priorityClassName: system-node-critical
              serviceAccountName: local-path-provisioner-service-account
              tolerations:
                - key: CriticalAddonsOnly
                  operator: Exists
                - key: node-role.kubernetes.io/control-plane
                  operator: Exists
                  effect: NoSchedule
                - key: node-role.kubernetes.io/master
                  operator: Exists
                  effect: NoSchedule
              containers:
                - name: local-path-provisioner
                  image: {{Quote(image)}}
                  imagePullPolicy: IfNotPresent
                  command: [local-path-provisioner, start, --config, /etc/config/config.json]
                  volumeMounts:
                    - name: config-volume
                      mountPath: /etc/config/
                  env:
                    - name: POD_NAMESPACE
                      valueFrom:
                        fieldRef:
                          fieldPath: metadata.namespace
              volumes:
                - name: config-volume
                  configMap:
                    name: local-path-config

        """;

    private static string ConfigMap(LocalStorageOptions options) => $$"""
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: local-path-config
          namespace: kube-system
        data:
          config.json: |-
        {{Indent(ConfigJson(options.StoragePath), 4)}}
          setup: |-
        {{Indent(Setup, 4)}}
          teardown: |-
        {{Indent(Teardown, 4)}}
          helperPod.yaml: |-
        {{Indent(HelperPod(options.HelperImage), 4)}}

        """;
}
