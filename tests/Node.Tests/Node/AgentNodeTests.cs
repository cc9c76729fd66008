using System.Diagnostics;
using System.Text.Json;
using Coracle.Node.Tests.Support;

namespace Coracle.Node.Tests.Node;

/// <summary>
/// A real two-node cluster: <c>coracle server</c> in one network namespace and <c>coracle agent</c> in a second one,
/// joined by a veth pair (the LAN between the two "hosts"; the server's namespace also has a veth to the test host).
/// The agent joins over the join API, its kubelet binds 127.0.0.1 only, and kube-apiserver reaches it through the
/// agent's websocket tunnel via the egress selector's CONNECT proxy. Cleaned up by <c>coracle killall</c> in both
/// namespaces, even when an assertion fails.
/// </summary>
[Trait("Category", "Integration")]
[Collection(RealClusterCollection.Name)]
public sealed class AgentNodeTests : IDisposable
{
    private const string Busybox = "docker.io/library/busybox:coracle";
    private readonly string _id = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(3));
    private readonly string _root = Directory.CreateTempSubdirectory("coracle-agent-").FullName;
    private readonly string _serverNetns;
    private readonly string _agentNetns;
    private readonly List<Process> _helpers = [];
    private NodeHarness? _server;
    private NodeHarness? _agent;

    public AgentNodeTests()
    {
        _serverNetns = "cor-s-" + _id;
        _agentNetns = "cor-a-" + _id;
    }

    [K8sFact(NeedsRoot = true)]
    public async Task Agent_RealKubernetes_JoinsRunsPodsThroughTheTunnelAndFlannelConnectsTheNodes()
    {
        var subnet = NodeHarness.FreeSubnet();
        NodeHarness.CreateNetns(_serverNetns, $"10.203.{subnet}.1", $"10.203.{subnet}.2");
        var serverIp = $"10.204.{subnet}.1";
        var agentIp = $"10.204.{subnet}.2";
        CreateLan(serverIp, agentIp);

        var image = NodeHarness.LayOutImage(_root);
        var server = _server = new NodeHarness(_root, image, "srv-" + _id, _serverNetns, serverIp);
        var agent = _agent = new NodeHarness(_root, image, "agt-" + _id, _agentNetns, agentIp);
        foreach (var node in new[] { server, agent })
        {
            Coracle.Plugins.Runtime.Containerd.ImageBuilder.WriteArchive(Path.Combine(node.ImagesDir, "busybox.tar"), Busybox, [], ["sh"]);
            AddonImages.WriteCoreDns(node.ImagesDir); // the CoreDNS pod may land on either node
        }

        // 1. The server comes up (with the coredns add-on); the agent joins with the server's token; both nodes become Ready.
        server.StartServerDisabling("traefik,servicelb,local-storage,metrics-server");
        await server.WaitForAsync(() => server.NodeReady(server.Name), $"node {server.Name} Ready", TimeSpan.FromMinutes(3));
        var token = File.ReadAllText(Path.Combine(server.DataDir, "server", "token")).Trim();
        agent.StartAgent($"https://{serverIp}:9345", token, "--node-external-ip", "192.0.2.10");
        await WaitAsync(() => server.NodeReady(agent.Name), $"node {agent.Name} Ready", TimeSpan.FromMinutes(3));
        foreach (var component in new[] { "tunnel", "flannel", "containerd", "airgap-images", "kubelet", "kube-proxy" })
        {
            await WaitAsync(() => agent.Component(component).State == "ready", $"agent component {component} ready");
        }

        // 1b. --node-external-ip: the agent declared its addresses with its own credentials and the server's cloud-node
        //     controller set them, as K3s does; `kubectl get nodes -o wide` shows the EXTERNAL-IP, the uninitialized taint
        //     is gone from both nodes, and the server's node has the control-plane role.
        var wide = "";
        await WaitAsync(() => (wide = server.Kubectl("get", "nodes", "-o", "wide")).Split('\n').Any(l => l.StartsWith(agent.Name + " ", StringComparison.Ordinal)
            && l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[6] == "192.0.2.10"), () => $"EXTERNAL-IP 192.0.2.10 of {agent.Name} in\n{wide}");
        Assert.Equal(["EXTERNAL-IP", "<none>"], wide.Split('\n').Where(l => l.StartsWith("NAME ", StringComparison.Ordinal) || l.StartsWith(server.Name + " ", StringComparison.Ordinal))
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[6]));
        Assert.Equal($"coracle://{agent.Name}", server.Jsonpath("node", agent.Name, "{.spec.providerID}"));
        await WaitAsync(() => !server.Jsonpath("node", server.Name, "{.spec.taints[*].key}").Contains("uninitialized", StringComparison.Ordinal), "the server's node initialized");
        Assert.DoesNotContain("uninitialized", server.Jsonpath("node", agent.Name, "{.spec.taints[*].key}"), StringComparison.Ordinal);
        Assert.Equal("true", server.Jsonpath("node", server.Name, "{.metadata.labels.node-role\\.kubernetes\\.io/control-plane}"));
        Assert.Equal("", server.Jsonpath("node", agent.Name, "{.metadata.labels.node-role\\.kubernetes\\.io/control-plane}"));
        Assert.Contains("--cloud-provider=external", agent.Log, StringComparison.Ordinal);

        // The agent's kubelet and kube-proxy use the certificates the join API issued.
        var agentDir = Path.Combine(agent.DataDir, "agent");
        Assert.Contains($"--kubeconfig={agentDir}/kubelet.kubeconfig", agent.Log, StringComparison.Ordinal);
        Assert.Contains($"tlsCertFile: \"{agentDir}/serving-kubelet.crt\"", File.ReadAllText(Path.Combine(agentDir, "etc", "kubelet.conf.yaml")), StringComparison.Ordinal);
        Assert.Contains($"--kubeconfig={agentDir}/kubeproxy.kubeconfig", agent.Log, StringComparison.Ordinal);

        // 2. kube-controller-manager allocated a podCIDR to each node; flannel annotated both Nodes; each node's kernel
        //    holds the route, neighbour and FDB entry for the other.
        var cidrs = new Dictionary<string, string>();
        var vteps = new Dictionary<string, string>();
        foreach (var node in new[] { server, agent })
        {
            await WaitAsync(() => server.Jsonpath("node", node.Name, "{.spec.podCIDR}").StartsWith("10.42.", StringComparison.Ordinal), $"podCIDR of {node.Name}");
            cidrs[node.Name] = server.Jsonpath("node", node.Name, "{.spec.podCIDR}");
            await WaitAsync(() => Annotation(node.Name, "backend-data").Contains("VtepMAC", StringComparison.Ordinal), $"flannel annotations on {node.Name}");
            Assert.Equal("vxlan", Annotation(node.Name, "backend-type"));
            Assert.Equal(node.NodeIp, Annotation(node.Name, "public-ip"));
            Assert.Equal("true", Annotation(node.Name, "kube-subnet-manager"));
            using var backend = JsonDocument.Parse(Annotation(node.Name, "backend-data"));
            vteps[node.Name] = backend.RootElement.GetProperty("VtepMAC").GetString()!;
        }

        Assert.NotEqual(cidrs[server.Name], cidrs[agent.Name]);
        foreach (var (node, peer) in new[] { (server, agent), (agent, server) })
        {
            var gateway = cidrs[peer.Name].Replace(".0/24", ".0", StringComparison.Ordinal);
            await WaitAsync(() => Ip(node, "route", "show", cidrs[peer.Name]).Contains($"via {gateway} dev flannel.1 onlink", StringComparison.Ordinal),
                $"route to {peer.Name}'s subnet in {node.Name}");
            Assert.Contains($"{gateway} lladdr {vteps[peer.Name]} PERMANENT", Ip(node, "neigh", "show", "dev", "flannel.1"), StringComparison.Ordinal);
            Assert.Contains($"{vteps[peer.Name]} dst {peer.NodeIp} self permanent",
                Run.Ok("nsenter", $"--net=/run/netns/{node.Netns}", "bridge", "fdb", "show", "dev", "flannel.1"), StringComparison.Ordinal);
        }

        // 3. Pods scheduled to each node run (the scheduler places them by nodeSelector).
        server.Apply($$"""
            apiVersion: v1
            kind: Pod
            metadata:
              name: on-agent
              labels: {app: on-agent}
            spec:
              nodeSelector:
                kubernetes.io/hostname: "{{agent.Name}}"
              terminationGracePeriodSeconds: 1
              containers:
              - name: web
                image: "{{Busybox}}"
                imagePullPolicy: Never
                command: ["sh", "-c", "echo hello-from-agent; mkdir -p /www; echo agent-page > /www/index.html; exec httpd -f -p 8080 -h /www"]
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: on-server}
            spec:
              nodeSelector:
                kubernetes.io/hostname: "{{server.Name}}"
              terminationGracePeriodSeconds: 1
              containers:
              - {name: bb, image: "{{Busybox}}", imagePullPolicy: Never, command: ["sleep", "100000"]}
            """);
        foreach (var pod in new[] { "on-agent", "on-server" })
        {
            await WaitAsync(() => server.Jsonpath("pod", pod, "{.status.phase}") == "Running", $"pod {pod} Running", TimeSpan.FromMinutes(3));
        }

        Assert.Equal(agent.Name, server.Jsonpath("pod", "on-agent", "{.spec.nodeName}"));
        var agentPodIp = server.Jsonpath("pod", "on-agent", "{.status.podIP}");
        var serverPodIp = server.Jsonpath("pod", "on-server", "{.status.podIP}");
        Assert.True(Ipv4In(agentPodIp, cidrs[agent.Name]), $"{agentPodIp} is not in the agent's subnet {cidrs[agent.Name]}");
        Assert.True(Ipv4In(serverPodIp, cidrs[server.Name]), $"{serverPodIp} is not in the server's subnet {cidrs[server.Name]}");

        // 4. The agent's kubelet port is closed to the server's namespace: the kubelet binds 127.0.0.1 only. The agent
        //    is reachable (ping) and its kubelet is up (connect from the agent's own loopback), so the refusal is the
        //    binding, not a missing route; logs, exec and port-forward below can only use the tunnel.
        Assert.Equal(0, Bash(_serverNetns, $"/bin/busybox ping -c 1 -W 5 {agentIp}").ExitCode);
        Assert.Equal(0, Bash(_agentNetns, "exec 3<>/dev/tcp/127.0.0.1/10250").ExitCode);
        var direct = Bash(_serverNetns, $"exec 3<>/dev/tcp/{agentIp}/10250");
        Assert.True(direct.ExitCode != 0, $"{agentIp}:10250 accepted a connection from the server's namespace");
        Assert.DoesNotContain(Bash(_agentNetns, "ss -Hltn 'sport = :10250'").Stdout.Split('\n'), l => !l.Contains("127.0.0.1:10250", StringComparison.Ordinal) && l.Trim().Length > 0);

        // 5. logs, exec and port-forward to the agent's pod go through the tunnel.
        await WaitAsync(() => server.TryKubectl("logs", "on-agent").Output.Contains("hello-from-agent", StringComparison.Ordinal), "logs of on-agent");
        Assert.Equal("on-agent", server.Kubectl("exec", "on-agent", "--", "hostname").Trim());
        var (forward, forwardOutput) = StartHelper(server, "kubectl", "port-forward", "pod/on-agent", "18080:8080");
        var fetched = (ExitCode: -1, Stdout: "", Stderr: "");
        await WaitAsync(() => (fetched = Bash(_serverNetns, "curl -sS -m 5 http://127.0.0.1:18080/")).Stdout.Contains("agent-page", StringComparison.Ordinal),
            () => $"port-forward to on-agent's httpd (wget: {fetched}; kubectl port-forward: {forwardOutput})");
        forward.Kill(entireProcessTree: true);

        // 6. Pod-to-pod ping across the nodes crosses flannel.1 (its counters grow on both nodes).
        var (serverTx, agentRx) = (Counter(server, "tx"), Counter(agent, "rx"));
        var ping = server.TryKubectl("exec", "on-server", "--", "ping", "-c", "3", "-W", "5", agentPodIp);
        Assert.True(ping.ExitCode == 0, ping.Output);
        Assert.Contains("3 packets received", ping.Output, StringComparison.Ordinal);
        Assert.True(Counter(server, "tx") >= serverTx + 3, "flannel.1 on the server sent no VXLAN packets");
        Assert.True(Counter(agent, "rx") >= agentRx + 3, "flannel.1 on the agent received no VXLAN packets");

        // 7. A ClusterIP Service, used from the server's pod, reaches the agent's pod through kube-proxy.
        server.Kubectl("expose", "pod", "on-agent", "--name", "agent-web", "--port", "80", "--target-port", "8080");
        var clusterIp = server.Jsonpath("service", "agent-web", "{.spec.clusterIP}");
        Assert.StartsWith("10.43.", clusterIp, StringComparison.Ordinal);
        // (busybox-static's wget crashes, glibc static; nc speaks the HTTP request instead.)
        var viaService = (ExitCode: -1, Output: "");
        await WaitAsync(() => (viaService = server.TryKubectl("exec", "on-server", "--", "sh", "-c", $"echo -e 'GET / HTTP/1.0\\r\\n\\r' | nc -w 5 {clusterIp} 80")).Output.Contains("agent-page", StringComparison.Ordinal),
            () => $"ClusterIP {clusterIp} from on-server to on-agent ({viaService})");

        // 7b. The agent's pod resolves that Service's name through the cluster's CoreDNS (kube-dns on the cluster-dns IP).
        await WaitAsync(() => server.TryKubectl("get", "deployment", "-n", "kube-system", "coredns", "-o", "jsonpath={.status.availableReplicas}").Output.Trim() == "1",
            "CoreDNS available", TimeSpan.FromMinutes(3));
        var lookup = (ExitCode: -1, Output: "");
        await WaitAsync(() => (lookup = server.TryKubectl("exec", "on-agent", "--", "nslookup", "agent-web.default.svc.cluster.local")).Output.Contains("Address: " + clusterIp, StringComparison.Ordinal),
            () => $"agent-web's name from the agent's pod ({lookup})");

        // 7c. An agent certificate near expiry is renewed while the agent runs: its kubelet client certificate is
        //     re-signed (by the server's client CA) as a year-long one with 10 days left; within a poll the agent joins again for new
        //     certificates, restarts its kubelet, and `coracle certificate check` on the agent shows them valid.
        var kubeletCert = Path.Combine(agentDir, "client-kubelet.crt");
        var serverTls = Path.Combine(server.DataDir, "server", "tls");
        var kubeletPid = agent.Component("kubelet").Pid;
        using (var clientCa = Coracle.Core.Identity.CertificateWithKey.Load(Path.Combine(serverTls, "client-ca.crt"), Path.Combine(serverTls, "client-ca.key")))
        using (var current = System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPem(File.ReadAllText(kubeletCert)))
        using (var aged = Coracle.Core.Identity.CertificateFactory.Sign(clientCa, Coracle.Core.Identity.CertSubject.Named($"system:node:{agent.Name}", "system:nodes"),
            current.PublicKey, Coracle.Core.Identity.CertUsage.Client, DateTimeOffset.UtcNow.AddDays(-355), TimeSpan.FromDays(365)))
        {
            File.WriteAllText(kubeletCert + ".aged", aged.ExportCertificatePem());
        }

        File.Move(kubeletCert + ".aged", kubeletCert, overwrite: true);
        await agent.WaitForAsync(() => agent.Log.Contains("[certificates] new certificates (", StringComparison.Ordinal), "the agent's renewal while running", TimeSpan.FromMinutes(2));
        Assert.Contains("certificates due for renewal (agent/client-kubelet): joining the server again for new ones", agent.Log, StringComparison.Ordinal);
        await agent.WaitForAsync(() => agent.Component("kubelet") is ("ready", { } pid, _) && pid != kubeletPid, "the agent's kubelet restarted");
        var check = agent.Coracle("certificate", "check", "--data-dir", agent.DataDir);
        Assert.True(check.ExitCode == 0, check.Stdout + check.Stderr);
        Assert.Contains("agent/client-kubelet", check.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("due for renewal", check.Stdout, StringComparison.Ordinal);
        await server.WaitForAsync(() => server.NodeReady(agent.Name), "the agent Ready after its certificate restart");
        var logs = (ExitCode: -1, Output: "");
        await WaitAsync(() => (logs = server.TryKubectl("logs", "on-agent")).Output.Contains("hello-from-agent", StringComparison.Ordinal),
            () => $"the agent pod's logs through the reconnected tunnel ({logs})\n{server.TryKubectl("describe", "pod", "on-agent").Output}\n{server.TryKubectl("logs", "on-agent", "-v=8").Output}\n"
                + string.Join('\n', File.ReadLines(Path.Combine(agent.DataDir, "logs", "kubelet.log")).Where(l => l.Contains("on-agent", StringComparison.Ordinal) || l.Contains("log", StringComparison.OrdinalIgnoreCase)).TakeLast(40)));

        // 8. killall in both namespaces leaves no process, mount, link or rule behind.
        foreach (var node in new[] { agent, server })
        {
            var (code, output, errors) = node.Coracle("killall", "--data-dir", node.DataDir);
            Assert.True(code == 0, output + errors);
            Assert.Null(node.Pid);
        }

        AssertNothingLeft();
    }

    private void AssertNothingLeft()
    {
        foreach (var node in new[] { _server!, _agent! })
        {
            Assert.Empty(NodeHarness.ProcessesNaming(node.DataDir));
            Assert.DoesNotContain(File.ReadAllLines("/proc/self/mountinfo"), l => l.Contains(node.DataDir, StringComparison.Ordinal));
            var links = Run.Ok("ip", "-n", node.Netns, "-o", "link", "show");
            Assert.DoesNotContain("cni0", links, StringComparison.Ordinal);
            Assert.DoesNotContain("flannel.1", links, StringComparison.Ordinal);
            Assert.DoesNotContain("veth", links, StringComparison.Ordinal);
            var rules = Run.Ok("nsenter", $"--net=/run/netns/{node.Netns}", "iptables-save");
            Assert.DoesNotContain("KUBE-", rules, StringComparison.Ordinal);
            Assert.DoesNotContain("FLANNEL", rules, StringComparison.Ordinal);
        }
    }

    private void CreateLan(string serverIp, string agentIp) =>
        NodeHarness.CreateLan(_serverNetns, _agentNetns, "s-" + _id, "a-" + _id, serverIp, agentIp);

    private Task WaitAsync(Func<bool> condition, string what, TimeSpan? timeout = null) => WaitAsync(condition, () => what, timeout);

    private Task WaitAsync(Func<bool> condition, Func<string> what, TimeSpan? timeout = null) =>
        ClusterWait.UntilAsync(condition, what, "agent", _id, _server, _agent, timeout);

    private string Annotation(string node, string key) =>
        _server!.Jsonpath("node", node, $"{{.metadata.annotations.flannel\\.alpha\\.coreos\\.com/{key}}}");

    private static string Ip(NodeHarness node, params string[] args) => Run.Ok("ip", ["-n", node.Netns, .. args]);

    private static long Counter(NodeHarness node, string direction)
    {
        using var doc = JsonDocument.Parse(Ip(node, "-s", "-j", "link", "show", "flannel.1"));
        return doc.RootElement[0].GetProperty("stats64").GetProperty(direction).GetProperty("packets").GetInt64();
    }

    private static (int ExitCode, string Stdout, string Stderr) Bash(string netns, string script) => NodeHarness.Bash(netns, script);

    private static bool Ipv4In(string ip, string cidr) =>
        System.Net.IPAddress.TryParse(ip, out var address) && System.Net.IPNetwork.Parse(cidr).Contains(address);

    private (Process Process, System.Text.StringBuilder Output) StartHelper(NodeHarness node, params string[] args)
    {
        var output = new System.Text.StringBuilder();
        var start = new ProcessStartInfo("nsenter") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { $"--net=/run/netns/{node.Netns}", Path.Combine(node.Image, "coracle") }.Concat(args))
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["CORACLE_DATA_DIR"] = node.DataDir;
        start.Environment["CORACLE_CONFIG_FILE"] = node.ConfigFile;
        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _helpers.Add(process);
        return (process, output);

        void Append(string? line)
        {
            lock (output)
            {
                output.AppendLine(line);
            }
        }
    }

    public void Dispose() =>
        NodeHarness.TearDown(_helpers, [_agent, _server], [_agentNetns, _serverNetns], _root);
}
