using Coracle.Node.Tests.Support;
using Coracle.Plugins;
using Coracle.Plugins.Runtime.Containerd;

namespace Coracle.Node.Tests.Node;

/// <summary>
/// Packaged add-ons as real pods on a real single-server cluster: the coredns plugin's manifest, applied by the manifests
/// controller, runs the real CoreDNS (built from ../shared/components into an image dropped in the airgap folder), and a
/// busybox pod resolves cluster names through the kube-dns Service.
/// </summary>
[Trait("Category", "Integration")]
[Collection(RealClusterCollection.Name)]
public sealed class AddonTests : IDisposable
{
    private const string Busybox = "docker.io/library/busybox:coracle";
    private readonly string _id = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(3));
    private readonly string _root = Directory.CreateTempSubdirectory("coracle-addon-").FullName;
    private readonly string _netns;
    private NodeHarness? _node;

    public AddonTests()
    {
        _netns = "cor-a-" + _id;
    }

    [K8sFact(NeedsRoot = true)]
    public async Task CoreDns_AppliedAsAnAddon_PodsResolveServicesByFullAndShortNameAndOutsideNames()
    {
        var subnet = NodeHarness.FreeSubnet();
        var nodeIp = $"10.204.{subnet}.2";
        NodeHarness.CreateNetns(_netns, $"10.204.{subnet}.1", nodeIp);
        var node = _node = new NodeHarness(_root, NodeHarness.LayOutImage(_root), "dns-" + _id, _netns, nodeIp);
        ImageBuilder.WriteArchive(Path.Combine(node.ImagesDir, "busybox.tar.gz"), Busybox, [], ["sh"]);
        AddonImages.WriteCoreDns(node.ImagesDir);

        // The node's upstream resolver is a test resolver on the host side of its link (the kubelet's resolv-conf names
        // it), so an outside name resolves through CoreDNS's forward without a real network.
        using var upstream = new TestResolver(System.Net.IPAddress.Parse($"10.204.{subnet}.1"),
            new Dictionary<string, System.Net.IPAddress> { ["outside.coracle.test"] = System.Net.IPAddress.Parse("192.0.2.7") });
        var resolvConf = Path.Combine(_root, "resolv.conf");
        File.WriteAllText(resolvConf, $"nameserver 10.204.{subnet}.1\n");
        node.StartServerDisabling("traefik,servicelb,local-storage,metrics-server", "--kubelet-arg", "resolv-conf=" + resolvConf);
        await node.WaitForAsync(() => node.NodeReady(node.Name), $"node {node.Name} Ready", TimeSpan.FromMinutes(3));

        // The add-on's file was applied and is tracked; CoreDNS runs from the airgap image.
        await node.WaitForAsync(() => node.TryKubectl("get", "addons", "-n", "kube-system", "coredns", "-o", "jsonpath={.spec.source}").Output.Contains("coredns.yaml", StringComparison.Ordinal),
            "Addon coredns", TimeSpan.FromMinutes(2));
        await node.WaitForAsync(() => node.TryKubectl("get", "deployment", "-n", "kube-system", "coredns", "-o", "jsonpath={.status.availableReplicas}").Output.Trim() == "1",
            "CoreDNS available", TimeSpan.FromMinutes(3));
        Assert.Equal("10.43.0.10", node.TryKubectl("get", "service", "-n", "kube-system", "kube-dns", "-o", "jsonpath={.spec.clusterIP}").Output.Trim());

        // A Service in another namespace, by its full name from default and by its short name from its own namespace.
        node.Kubectl("create", "namespace", "shop");
        node.Kubectl("create", "service", "clusterip", "web", "-n", "shop", "--tcp=80:80");
        var webIp = node.Kubectl("get", "service", "web", "-n", "shop", "-o", "jsonpath={.spec.clusterIP}").Trim();
        node.Kubectl("run", "dns-full", "--image=" + Busybox, "--image-pull-policy=Never", "--restart=Never", "--",
            "sh", "-c", "nslookup kubernetes.default.svc.cluster.local; nslookup web.shop.svc.cluster.local; sleep 3600");
        node.Kubectl("run", "dns-short", "-n", "shop", "--image=" + Busybox, "--image-pull-policy=Never", "--restart=Never", "--",
            "sh", "-c", "nslookup web; sleep 3600");

        await node.WaitForAsync(() =>
        {
            var logs = node.TryKubectl("logs", "dns-full").Output;
            return logs.Contains("Address: 10.43.0.1", StringComparison.Ordinal) && logs.Contains("Address: " + webIp, StringComparison.Ordinal);
        }, "full names resolved through CoreDNS", TimeSpan.FromMinutes(2));
        await node.WaitForAsync(() => node.TryKubectl("logs", "dns-short", "-n", "shop").Output.Contains("Address: " + webIp, StringComparison.Ordinal),
            "a short name resolved through the search path", TimeSpan.FromMinutes(2));

        // An outside name: CoreDNS forwards it to the node's resolv.conf, here the test resolver.
        node.Kubectl("run", "dns-outside", "--image=" + Busybox, "--image-pull-policy=Never", "--restart=Never", "--",
            "sh", "-c", "nslookup outside.coracle.test; sleep 3600");
        await node.WaitForAsync(() => node.TryKubectl("logs", "dns-outside").Output.Contains("Address: 192.0.2.7", StringComparison.Ordinal),
            "an outside name resolved through CoreDNS's forward to the node's resolver", TimeSpan.FromMinutes(2));
        Assert.True(upstream.Answered > 0);

        // --disable coredns on a restart removes CoreDNS's objects from the running cluster; re-enabling brings them back.
        node.Signal(15);
        node.StartServerDisabling("traefik,servicelb,local-storage,metrics-server,coredns");
        await node.WaitForAsync(() => node.TryKubectl("get", "deployment", "-n", "kube-system", "coredns").Output.Contains("NotFound", StringComparison.Ordinal)
            && node.TryKubectl("get", "service", "-n", "kube-system", "kube-dns").Output.Contains("NotFound", StringComparison.Ordinal)
            && node.TryKubectl("get", "addons", "-n", "kube-system", "coredns").Output.Contains("NotFound", StringComparison.Ordinal),
            "CoreDNS's objects and Addon deleted after --disable coredns", TimeSpan.FromMinutes(3));
        Assert.Contains("addon coredns is off", node.Log, StringComparison.Ordinal);
        // Re-enabled, this time with K3s's --system-default-registry: the add-on's image (and the sandbox image) come from
        // that registry, here through the airgap folder under the rewritten name.
        const string Registry = "registry.coracle.test:5000";
        var rewritten = NodeSettings.WithRegistry(Registry, AddonImages.CoreDns);
        Assert.StartsWith(Registry + "/rancher/", rewritten, StringComparison.Ordinal);
        AddonImages.WriteCoreDns(node.ImagesDir, rewritten);
        node.Signal(15);
        node.StartServerDisabling("traefik,servicelb,local-storage,metrics-server", "--system-default-registry", Registry, "--kubelet-arg", "resolv-conf=" + resolvConf);
        // Rolled out: the Deployment names the rewritten image, and its one pod (the old one gone) runs it and is Ready.
        var seen = "";
        await node.WaitForAsync(() =>
        {
            seen = node.TryKubectl("get", "pods", "-n", "kube-system", "-l", "k8s-app=kube-dns", "-o",
                "jsonpath={range .items[*]}{.spec.containers[0].image} {.status.containerStatuses[0].ready}{\"\\n\"}{end}").Output.Trim();
            return seen == rewritten + " true"
                && node.TryKubectl("get", "deployment", "-n", "kube-system", "coredns", "-o", "jsonpath={.spec.template.spec.containers[0].image}").Output.Trim() == rewritten;
        }, () => $"CoreDNS back after re-enabling, one Ready pod on the system default registry's image (pods: {seen})", TimeSpan.FromMinutes(3));
    }

    [K8sFact(NeedsRoot = true)]
    public async Task LocalStorageAndMetricsServer_RealPods_PvcBindsToTheNodesDiskAndKubectlTopAnswers()
    {
        var subnet = NodeHarness.FreeSubnet();
        var nodeIp = $"10.205.{subnet}.2";
        NodeHarness.CreateNetns(_netns, $"10.205.{subnet}.1", nodeIp);
        var node = _node = new NodeHarness(_root, NodeHarness.LayOutImage(_root), "sto-" + _id, _netns, nodeIp);
        ImageBuilder.WriteArchive(Path.Combine(node.ImagesDir, "busybox.tar.gz"), Busybox, [], ["sh"]);
        AddonImages.WriteLocalPathProvisioner(node.ImagesDir);
        AddonImages.WriteLocalPathHelper(node.ImagesDir);
        AddonImages.WriteMetricsServer(node.ImagesDir, AddonImages.MetricsServerAddon);

        node.StartServerDisabling("traefik,servicelb,coredns");
        await node.WaitForAsync(() => node.NodeReady(node.Name), $"node {node.Name} Ready", TimeSpan.FromMinutes(3));
        // The manifests controller applies local-storage.yaml on its own schedule: the node can be Ready first.
        const string DefaultClass = "{.metadata.annotations.storageclass\\.kubernetes\\.io/is-default-class}";
        await node.WaitForAsync(() => node.Jsonpath("storageclass", "local-path", DefaultClass) == "true",
            () => $"StorageClass local-path applied as the default class (annotation '{node.Jsonpath("storageclass", "local-path", DefaultClass)}')", TimeSpan.FromMinutes(2));

        // A PVC of the default class binds when its pod is scheduled; the file the pod writes is on the node's disk
        // under DATA/storage and a second pod reads it back.
        node.Apply($$$"""
            apiVersion: v1
            kind: PersistentVolumeClaim
            metadata: {name: data}
            spec:
              accessModes: [ReadWriteOnce]
              resources: {requests: {storage: 16Mi}}
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: writer}
            spec:
              restartPolicy: Never
              containers:
              - {name: w, image: "{{{Busybox}}}", imagePullPolicy: Never, command: [sh, -c, "echo kept-on-disk > /data/hello"], volumeMounts: [{name: d, mountPath: /data}]}
              volumes: [{name: d, persistentVolumeClaim: {claimName: data}}]
            """);
        await node.WaitForAsync(() => node.Jsonpath("pod", "writer", "{.status.phase}") == "Succeeded", "the writer pod to finish", TimeSpan.FromMinutes(3));
        Assert.Equal("Bound", node.Jsonpath("pvc", "data", "{.status.phase}"));
        var onDisk = Directory.GetFiles(Path.Combine(node.DataDir, "storage"), "hello", SearchOption.AllDirectories);
        Assert.Equal("kept-on-disk\n", File.ReadAllText(Assert.Single(onDisk)));
        node.Kubectl("delete", "pod", "writer");
        node.Apply($$$"""
            apiVersion: v1
            kind: Pod
            metadata: {name: reader}
            spec:
              restartPolicy: Never
              containers:
              - {name: r, image: "{{{Busybox}}}", imagePullPolicy: Never, command: [sh, -c, "cat /data/hello"], volumeMounts: [{name: d, mountPath: /data}]}
              volumes: [{name: d, persistentVolumeClaim: {claimName: data}}]
            """);
        await node.WaitForAsync(() => node.TryKubectl("logs", "reader").Output.Contains("kept-on-disk", StringComparison.Ordinal), "the second pod to read the file", TimeSpan.FromMinutes(2));

        // metrics-server through the aggregation layer: kubectl top prints figures for the node and the pods.
        await node.WaitForAsync(() => node.TryKubectl("top", "nodes").Output.Contains(node.Name, StringComparison.Ordinal), "kubectl top nodes", TimeSpan.FromMinutes(3));
        await node.WaitForAsync(() => node.TryKubectl("top", "pods", "-A").Output.Contains("metrics-server", StringComparison.Ordinal), "kubectl top pods -A", TimeSpan.FromMinutes(2));
        Assert.Matches(@"\d+m\s+\d+%", node.Kubectl("top", "nodes"));

        // Every enabled add-on is tracked as an applied Addon, without an error.
        var addons = node.Kubectl("get", "addons", "-A", "-o", "jsonpath={range .items[*]}{.metadata.name}={.status.lastError};{end}");
        Assert.Contains("local-storage=;", addons, StringComparison.Ordinal);
        Assert.Contains("metrics-server=;", addons, StringComparison.Ordinal);
    }

    public void Dispose()
    {
        _node?.Dispose();
        NodeHarness.DeleteNetns(_netns);
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
            // Leftover mounts would be reported by the server node test.
        }
    }
}
