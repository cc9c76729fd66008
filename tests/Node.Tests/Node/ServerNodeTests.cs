using Coracle.Node.Tests.Support;

namespace Coracle.Node.Tests.Node;

/// <summary>
/// A real single-server cluster: <c>coracle server</c> with the Kubernetes binaries of CORACLE_K8S_BIN, containerd and
/// flannel, in its own network namespace, with busybox images built here from Debian's busybox-static and dropped in
/// the airgap folder (the pause image under its default name). Cleaned up by <c>coracle killall</c>.
/// </summary>
[Trait("Category", "Integration")]
[Collection(RealClusterCollection.Name)]
public sealed class ServerNodeTests : IDisposable
{
    private const string Busybox = "docker.io/library/busybox:coracle";
    private readonly string _id = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(3));
    private readonly string _root = Directory.CreateTempSubdirectory("coracle-node-").FullName;
    private readonly string _netns;
    private NodeHarness? _node;

    public ServerNodeTests()
    {
        _netns = "cor-n-" + _id;
    }

    /// <summary>
    /// The network namespaces (<c>/run/netns/cni-…</c>) of this node's pod sandboxes, read from its containerd: other
    /// node tests may run beside this one (scripts/test.sh), so the host's whole list says nothing about this node.
    /// </summary>
    private static List<string> PodNetns(NodeHarness node)
    {
        var (code, ids, errors) = node.Coracle("ctr", "containers", "ls", "-q");
        Assert.True(code == 0, $"ctr containers ls exited {code}: {errors}");
        return ids.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .SelectMany(id => System.Text.RegularExpressions.Regex.Matches(node.Coracle("ctr", "containers", "info", id).Stdout, "/run/netns/(cni-[0-9a-f-]+)\"")
                .Select(m => Path.Combine("/run/netns", m.Groups[1].Value)))
            .Distinct(StringComparer.Ordinal).ToList();
    }

    [K8sFact(NeedsRoot = true)]
    public async Task Server_RealKubernetes_RunsWorkloadsSurvivesRestartsAndKillallLeavesNothing()
    {
        var subnet = NodeHarness.FreeSubnet();
        var nodeIp = $"10.203.{subnet}.2";
        NodeHarness.CreateNetns(_netns, $"10.203.{subnet}.1", nodeIp);

        // A new namespace inherits the host's ip_forward; start from 0 (the boot value) so killall's restore shows.
        Run.Ok("ip", "netns", "exec", _netns, "sysctl", "-qw", "net.ipv4.ip_forward=0");
        var node = _node = new NodeHarness(_root, NodeHarness.LayOutImage(_root), "srv-" + _id, _netns, nodeIp);
        Coracle.Plugins.Runtime.Containerd.ImageBuilder.WriteArchive(Path.Combine(node.ImagesDir, "busybox.tar.gz"), Busybox, [], ["sh"]);

        // 1. the node registers and becomes Ready, with the label and taint given as K3s flags; status lists every
        //    component, ready. A --kubelet-arg value with commas reaches the kubelet whole.
        node.StartServer("--node-label", "coracle.dev/site=shop-3", "--node-taint", "coracle.dev/edge=yes:PreferNoSchedule",
            "--kubelet-arg", "allowed-unsafe-sysctls=kernel.msg*,net.ipv4.route.min_pmtu");
        await node.WaitForAsync(() => node.NodeReady(node.Name), $"node {node.Name} Ready", TimeSpan.FromMinutes(3));
        Assert.Equal("shop-3", node.Jsonpath("node", node.Name, "{.metadata.labels.coracle\\.dev/site}"));
        Assert.Equal("coracle.dev/edge=yes:PreferNoSchedule", node.Jsonpath("node", node.Name, "{.spec.taints[0].key}={.spec.taints[0].value}:{.spec.taints[0].effect}"));
        Assert.Contains("--allowed-unsafe-sysctls=kernel.msg*,net.ipv4.route.min_pmtu", node.Log, StringComparison.Ordinal);
        var components = new[]
        {
            "datastore", "flannel", "containerd", "airgap-images", "join-api", "egress-proxy",
            "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "cluster-rbac", "node-password", "manifests", "node-declaration", "cloud-node", "certificates",
        };
        await node.WaitForAsync(() => components.All(c => node.Component(c).State == "ready"), "every component ready");

        // The server holds its own node name with its node password, as an agent does: the Secret exists.
        Assert.Equal("coracle.dev/node-password", node.Kubectl("-n", "kube-system", "get", "secret", $"{node.Name}.node-password.coracle", "-o", "jsonpath={.type}").Trim());

        // The cloud-node controller initialized the node (K3s's embedded cloud provider): providerID, no uninitialized taint.
        await node.WaitForAsync(() => node.Jsonpath("node", node.Name, "{.spec.providerID}") == $"coracle://{node.Name}", "the node's providerID");
        Assert.DoesNotContain("uninitialized", node.Jsonpath("node", node.Name, "{.spec.taints[*].key}"), StringComparison.Ordinal);
        Assert.Contains("coracle.dev/edge", node.Jsonpath("node", node.Name, "{.spec.taints[*].key}"), StringComparison.Ordinal);
        Assert.Equal("true", node.Jsonpath("node", node.Name, "{.metadata.labels.node-role\\.kubernetes\\.io/control-plane}"));
        Assert.Contains(Busybox, node.Coracle("ctr", "images", "ls", "-q").Stdout, StringComparison.Ordinal);

        // No pause image was dropped in the airgap folder: the node built its own and imported it under the default name.
        Assert.Contains("docker.io/rancher/mirrored-pause:3.6", node.Coracle("ctr", "images", "ls", "-q").Stdout, StringComparison.Ordinal);
        Assert.Contains("sandbox image docker.io/rancher/mirrored-pause:3.6 is not in containerd: importing Coracle's own pause image", node.Log, StringComparison.Ordinal);

        // The 1.32 API server serves consistent lists from its watch cache: it trusts the datastore's progress
        // notifications (RequestWatchProgress, etcd 3.5.13+ semantics) and never had to fall back to a quorum read.
        node.Kubectl("get", "pods", "-A");
        var metrics = node.Kubectl("get", "--raw", "/metrics").Split('\n');
        Assert.Contains(metrics, l => l.StartsWith("apiserver_watch_cache_consistent_read_total{", StringComparison.Ordinal)
            && l.Contains("fallback=\"false\"", StringComparison.Ordinal) && l.Contains("success=\"true\"", StringComparison.Ordinal));
        Assert.DoesNotContain(metrics, l => l.StartsWith("apiserver_watch_cache_consistent_read_total{", StringComparison.Ordinal)
            && (l.Contains("fallback=\"true\"", StringComparison.Ordinal) || l.Contains("success=\"false\"", StringComparison.Ordinal)));
        Assert.DoesNotContain("RequestWatchProgress", File.ReadAllText(Path.Combine(node.DataDir, "logs", "kube-apiserver.log")), StringComparison.Ordinal);

        // 2. a busybox pod runs; logs and exec work.
        node.Apply($$"""
            apiVersion: v1
            kind: Pod
            metadata: {name: bb}
            spec:
              containers:
              - {name: bb, image: "{{Busybox}}", imagePullPolicy: Never, command: ["sh", "-c", "echo hello-from-bb; sleep 100000"]}
            """);
        await node.WaitForAsync(() => node.Jsonpath("pod", "bb", "{.status.phase}") == "Running", "pod bb Running");
        await node.WaitForAsync(() => node.TryKubectl("logs", "bb").Output.Contains("hello-from-bb", StringComparison.Ordinal), "logs of bb");
        Assert.Equal("bb", node.Kubectl("exec", "bb", "--", "hostname").Trim());
        var podIp = node.Jsonpath("pod", "bb", "{.status.podIP}");
        Assert.StartsWith("10.42.", podIp, StringComparison.Ordinal);

        // 3. emptyDir, ConfigMap and Secret are visible in a pod.
        node.Apply($$"""
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: cm1}
            data: {a: from-configmap}
            ---
            apiVersion: v1
            kind: Secret
            metadata: {name: s1}
            stringData: {b: from-secret}
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: vol}
            spec:
              containers:
              - name: vol
                image: "{{Busybox}}"
                imagePullPolicy: Never
                command: ["sh", "-c", "echo from-emptydir > /scratch/f; cat /scratch/f /cm/a /sec/b; echo; sleep 100000"]
                volumeMounts:
                - {name: scratch, mountPath: /scratch}
                - {name: cm, mountPath: /cm}
                - {name: sec, mountPath: /sec}
              volumes:
              - name: scratch
                emptyDir: {medium: ""}
              - name: cm
                configMap: {name: cm1}
              - name: sec
                secret: {secretName: s1}
            """);
        await node.WaitForAsync(() => node.TryKubectl("logs", "vol").Output.Contains("from-secret", StringComparison.Ordinal), "logs of vol");
        var volumes = node.Kubectl("logs", "vol");
        Assert.Contains("from-emptydir", volumes, StringComparison.Ordinal);
        Assert.Contains("from-configmap", volumes, StringComparison.Ordinal);

        // 4. a Deployment of 2 is scaled to 3 and back to 2.
        node.Kubectl("create", "deployment", "web", "--image=" + Busybox, "--replicas=2", "--", "sleep", "100000");
        node.Kubectl("patch", "deployment", "web", "-p", """{"spec":{"template":{"spec":{"terminationGracePeriodSeconds":1,"containers":[{"name":"busybox","imagePullPolicy":"Never"}]}}}}""");
        await node.WaitForAsync(() => node.Jsonpath("deployment", "web", "{.status.readyReplicas}/{.status.updatedReplicas}") == "2/2", "web 2 ready");
        node.Kubectl("scale", "deployment", "web", "--replicas=3");
        await node.WaitForAsync(() => node.Jsonpath("deployment", "web", "{.status.readyReplicas}") == "3", "web 3 ready");
        node.Kubectl("scale", "deployment", "web", "--replicas=2");
        await node.WaitForAsync(() => node.Jsonpath("deployment", "web", "{.status.replicas}/{.status.readyReplicas}") == "2/2", "web back to 2");

        // 5. a Job completes.
        node.Apply($$"""
            apiVersion: batch/v1
            kind: Job
            metadata: {name: once}
            spec:
              template:
                spec:
                  restartPolicy: Never
                  containers:
                  - {name: once, image: "{{Busybox}}", imagePullPolicy: Never, command: ["sh", "-c", "echo job-done"]}
            """);
        await node.WaitForAsync(() => node.Jsonpath("job", "once", "{.status.succeeded}") == "1", "job once succeeded");

        // 6. SIGKILL of kubelet and kube-apiserver: the supervisor restarts each.
        foreach (var component in new[] { "kubelet", "kube-apiserver" })
        {
            var (_, pid, restarts) = node.Component(component);
            Assert.NotNull(pid);
            Run.Ok("kill", "-9", pid.Value.ToString(System.Globalization.CultureInfo.InvariantCulture));
            await node.WaitForAsync(() => node.Component(component) is ("ready", { } newPid, var r) && newPid != pid && r > restarts, $"{component} restarted");
        }

        await node.WaitForAsync(() => node.NodeReady(node.Name), "node Ready after the component restarts");

        // 6b. a certificate near expiry is renewed while the node runs: the serving certificate of kube-apiserver is
        //     re-signed to expire in 10 days (inside the 120-day window); within a poll Coracle renews it, restarts the
        //     components that load certificates at start, and kube-apiserver serves the renewed one.
        var tls = Path.Combine(node.DataDir, "server", "tls");
        var serving = Path.Combine(tls, "serving-kube-apiserver.crt");
        var apiserverPid = node.Component("kube-apiserver").Pid;
        Run.Ok("openssl", "x509", "-x509toreq", "-in", serving, "-key", Path.Combine(tls, "serving-kube-apiserver.key"), "-copy_extensions", "copy", "-out", serving + ".csr");
        Run.Ok("openssl", "x509", "-req", "-in", serving + ".csr", "-CA", Path.Combine(tls, "server-ca.crt"), "-CAkey", Path.Combine(tls, "server-ca.key"),
            "-days", "10", "-copy_extensions", "copy", "-out", serving + ".short");
        File.Delete(serving + ".csr");
        File.Move(serving + ".short", serving, overwrite: true);
        await node.WaitForAsync(() => node.Log.Contains("[certificates] new certificates (", StringComparison.Ordinal), "the renewal while running", TimeSpan.FromMinutes(2));
        Assert.Contains("certificate serving-kube-apiserver: renewed (expiring)", node.Log, StringComparison.Ordinal);
        var renewedEnd = Run.Ok("openssl", "x509", "-noout", "-enddate", "-in", serving).Trim();
        Assert.True(DateTime.ParseExact(renewedEnd["notAfter=".Length..].Replace("  ", " ", StringComparison.Ordinal), "MMM d HH:mm:ss yyyy 'GMT'", System.Globalization.CultureInfo.InvariantCulture) > DateTime.UtcNow.AddDays(300), renewedEnd);
        await node.WaitForAsync(() => node.Component("kube-apiserver") is ("ready", { } pid, _) && pid != apiserverPid, "kube-apiserver restarted with the renewed certificate");
        var served = Run.Ok("sh", "-c", $"ip netns exec {node.Netns} openssl s_client -connect 127.0.0.1:6443 </dev/null 2>/dev/null | openssl x509 -noout -enddate");
        Assert.Equal(renewedEnd, served.Trim());
        Assert.Equal(1, node.Component("kube-apiserver").Restarts); // step 6's SIGKILL only: a planned restart is not a crash
        await node.WaitForAsync(() => node.NodeReady(node.Name) && node.Component("kubelet").State == "ready", "node Ready after the certificate restart");

        // 7. restarting coracle (SIGTERM, then SIGKILL) keeps the pod's container running; the node returns to Ready.
        var container = node.Jsonpath("pod", "bb", "{.status.containerStatuses[0].containerID}");
        Assert.StartsWith("containerd://", container, StringComparison.Ordinal);
        foreach (var signal in new[] { 15, 9 })
        {
            node.Signal(signal);
            if (signal == 15)
            {
                // An ordered stop in which nothing had to be killed: flannel's Node watch ends before kube-apiserver
                // stops (it would hold the API server's graceful shutdown), and kube-controller-manager exits on SIGTERM.
                Assert.Contains("[coracle] stopped cleanly", node.Log, StringComparison.Ordinal);
                Assert.False(node.Log.Contains("did not stop within", StringComparison.Ordinal), "a component had to be killed:\n" + node.Tail(40)
                    + "\n--- kube-apiserver.log ---\n" + string.Join('\n', File.ReadLines(Path.Combine(node.DataDir, "logs", "kube-apiserver.log")).TakeLast(60)));
            }

            node.StartServer();
            await node.WaitForAsync(() => node.NodeReady(node.Name) && node.Component("kubelet").State == "ready", $"node Ready after restart (signal {signal})", TimeSpan.FromMinutes(3));
            Assert.Equal(container, node.Jsonpath("pod", "bb", "{.status.containerStatuses[0].containerID}"));
            Assert.Equal("0", node.Jsonpath("pod", "bb", "{.status.containerStatuses[0].restartCount}"));
            Assert.Equal("bb", node.Kubectl("exec", "bb", "--", "hostname").Trim());
        }

        // 8. killall leaves no process, mount, link, pod network namespace, rule, cgroup or sysctl change behind.
        var podNetns = PodNetns(node);
        Assert.NotEmpty(podNetns); // pod bb at least
        var (code, output, errors) = node.Coracle("killall", "--data-dir", node.DataDir);
        Assert.True(code == 0, output + errors);
        // The runtime plugin's cleanup killed the containers first; the CNI plugin's ran after the host's own steps.
        Assert.Contains("killall: containerd: killing ", output, StringComparison.Ordinal);
        Assert.True(output.IndexOf("killall: cleaned up after plugin containerd", StringComparison.Ordinal) is >= 0 and var runtime
            && output.IndexOf("killall: cleaned up after plugin flannel", StringComparison.Ordinal) > runtime, output);
        Assert.Null(node.Pid);
        var processes = NodeHarness.ProcessesNaming(node.DataDir);
        Assert.Empty(processes);
        Assert.DoesNotContain(File.ReadAllLines("/proc/self/mountinfo"), l => l.Contains(node.DataDir, StringComparison.Ordinal));
        Assert.DoesNotContain(podNetns, File.Exists);
        var links = Run.Ok("ip", "-n", _netns, "-o", "link", "show");
        Assert.DoesNotContain("cni0", links, StringComparison.Ordinal);
        Assert.DoesNotContain("flannel.1", links, StringComparison.Ordinal);
        Assert.DoesNotContain("veth", links, StringComparison.Ordinal);
        var rules = Run.Ok("ip", "netns", "exec", _netns, "iptables-save");
        Assert.DoesNotContain("KUBE-", rules, StringComparison.Ordinal);
        Assert.DoesNotContain("FLANNEL", rules, StringComparison.Ordinal);
        Assert.False(Directory.Exists($"/sys/fs/cgroup/memory/coracle/{node.Name}") || Directory.Exists($"/sys/fs/cgroup/coracle/{node.Name}"));
        Assert.Equal("0", Run.Ok("ip", "netns", "exec", _netns, "cat", "/proc/sys/net/ipv4/ip_forward").Trim());
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
            // Leftover mounts are reported by the test itself.
        }
    }
}
