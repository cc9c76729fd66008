using System.Diagnostics;
using Coracle.Node.Tests.Support;

namespace Coracle.Node.Tests.Node;

/// <summary>
/// ServiceLB on a real two-node cluster (server and agent in network namespaces joined by a LAN veth, as in
/// <see cref="AgentNodeTests"/>), with a third namespace as a client outside the pod network that reaches both nodes
/// through the server's namespace. No servicelb pods: each node's in-process controller installs iptables rules. Cleaned
/// up by <c>coracle killall</c> in both namespaces, even when an assertion fails.
/// </summary>
[Trait("Category", "Integration")]
[Collection(RealClusterCollection.Name)]
public sealed class ServiceLbTests : IDisposable
{
    private const string Busybox = "docker.io/library/busybox:coracle";
    private const string PoolLabel = "svccontroller.k3s.cattle.io/lbpool";
    private readonly string _id = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(3));
    private readonly string _root = Directory.CreateTempSubdirectory("coracle-svclb-").FullName;
    private readonly string _serverNetns;
    private readonly string _agentNetns;
    private readonly string _clientNetns;
    private readonly List<Process> _helpers = [];
    private NodeHarness? _server;
    private NodeHarness? _agent;

    public ServiceLbTests()
    {
        _serverNetns = "cor-s-" + _id;
        _agentNetns = "cor-a-" + _id;
        _clientNetns = "cor-c-" + _id;
    }

    [K8sFact(NeedsRoot = true)]
    public async Task ServiceLb_TwoNodes_ServesTcpAndUdpOnBothNodeIpsRefusesAHeldPortHonoursPoolsAndRemovesItsRules()
    {
        var subnet = NodeHarness.FreeSubnet();
        NodeHarness.CreateNetns(_serverNetns, $"10.203.{subnet}.1", $"10.203.{subnet}.2");
        var serverIp = $"10.204.{subnet}.1";
        var agentIp = $"10.204.{subnet}.2";
        NodeHarness.CreateLan(_serverNetns, _agentNetns, "s-" + _id, "a-" + _id, serverIp, agentIp);

        // The client: a LAN host outside the pod network, routed through the server's namespace to both nodes.
        NodeHarness.CreateLan(_serverNetns, _clientNetns, "sc-" + _id, "c-" + _id, $"10.205.{subnet}.1", $"10.205.{subnet}.2");

        var image = NodeHarness.LayOutImage(_root);
        var server = _server = new NodeHarness(_root, image, "srv-" + _id, _serverNetns, serverIp);
        var agent = _agent = new NodeHarness(_root, image, "agt-" + _id, _agentNetns, agentIp);
        foreach (var node in new[] { server, agent })
        {
            Coracle.Plugins.Runtime.Containerd.ImageBuilder.WriteArchive(Path.Combine(node.ImagesDir, "busybox.tar"), Busybox, [], ["sh"]);
            AddonImages.WriteCoreDns(node.ImagesDir); // the UDP backend; its pod may land on either node
        }

        // 1. servicelb is on (the default) on the server, and the agent runs it too because the server does.
        server.StartServerDisabling("traefik,local-storage,metrics-server");
        await server.WaitForAsync(() => server.NodeReady(server.Name), $"node {server.Name} Ready", TimeSpan.FromMinutes(3));
        var token = File.ReadAllText(Path.Combine(server.DataDir, "server", "token")).Trim();
        agent.StartAgent($"https://{serverIp}:9345", token);
        await WaitAsync(() => server.NodeReady(agent.Name), $"node {agent.Name} Ready", TimeSpan.FromMinutes(3));
        foreach (var node in new[] { server, agent })
        {
            await WaitAsync(() => node.Component("servicelb").State == "ready", $"servicelb ready on {node.Name}");
        }

        var before = new Dictionary<string, string>
        {
            [_serverNetns] = OurRules(_serverNetns),
            [_agentNetns] = OurRules(_agentNetns),
        };
        Assert.Contains("-A PREROUTING -m comment --comment \"coracle servicelb\" -j CORACLE-SVCLB", before[_agentNetns], StringComparison.Ordinal);

        // 2. Two httpd pods (one per node) behind a TCP LoadBalancer Service, CoreDNS behind a UDP one.
        server.Apply($$"""
            {{WebPod("web-s", server.Name)}}
            ---
            {{WebPod("web-a", agent.Name)}}
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: web}
            spec:
              type: LoadBalancer
              selector: {app: web}
              ports: [{name: http, port: 8081, targetPort: 8080, protocol: TCP}]
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: dns-lb, namespace: kube-system}
            spec:
              type: LoadBalancer
              selector: {k8s-app: kube-dns}
              ports: [{name: dns, port: 1053, targetPort: 53, protocol: UDP}]
            """);
        foreach (var pod in new[] { "web-s", "web-a" })
        {
            await WaitAsync(() => server.Jsonpath("pod", pod, "{.status.phase}") == "Running", $"pod {pod} Running", TimeSpan.FromMinutes(3));
        }

        // 3. Status lists both nodes (sorted); the client reaches both pods through either node's address (replies from
        //    the other node's pod come back through the node it asked: masqueraded).
        string[] both = [serverIp, agentIp];
        await WaitAsync(() => Ingress("service", "web") == string.Join(' ', both), () => $"web's status lists {string.Join(", ", both)} (now: {Ingress("service", "web")})");
        Assert.Equal("Proxy", server.Jsonpath("service", "web", "{.status.loadBalancer.ingress[0].ipMode}"));
        foreach (var ip in both)
        {
            var seen = new HashSet<string>(StringComparer.Ordinal);
            await WaitAsync(() =>
            {
                var page = Curl($"http://{ip}:8081/");
                if (page.StartsWith("page-", StringComparison.Ordinal))
                {
                    seen.Add(page);
                }

                return seen.Count == 2;
            }, () => $"both pods answering on {ip}:8081 from the client (seen: {string.Join(", ", seen)})");
        }

        // 4. UDP: a DNS query to either node's port 1053 is answered by CoreDNS.
        await WaitAsync(() => server.TryKubectl("get", "deployment", "-n", "kube-system", "coredns", "-o", "jsonpath={.status.availableReplicas}").Output.Trim() == "1",
            "CoreDNS available", TimeSpan.FromMinutes(3));
        await WaitAsync(() => Ingress("service", "dns-lb", "kube-system") == string.Join(' ', both), "dns-lb's status lists both nodes");
        foreach (var ip in both)
        {
            var answer = "";
            await WaitAsync(() => (answer = DnsQuery(ip, 1053)).StartsWith("12 34 8", StringComparison.Ordinal), () => $"a DNS answer from {ip}:1053/UDP (got '{answer}')");
        }

        // 5. A port held on the agent (a listener on its wildcard address): the agent refuses the Service with an Event
        //    naming itself, the port and the holder; status lists the server only; the agent has no rule for it.
        Helper(_agentNetns, "socat", "TCP-LISTEN:8082,reuseaddr,fork", "SYSTEM:echo held");
        await WaitAsync(() => NodeHarness.Bash(_agentNetns, "ss -Hltn 'sport = :8082'").Stdout.Contains("8082", StringComparison.Ordinal), "the agent's listener on 8082");
        server.Apply("""
            apiVersion: v1
            kind: Service
            metadata: {name: held}
            spec:
              type: LoadBalancer
              selector: {app: web}
              ports: [{name: http, port: 8082, targetPort: 8080}]
            """);
        var events = "";
        await WaitAsync(() => (events = server.TryKubectl("get", "events", "--field-selector", "involvedObject.name=held,reason=PortConflict", "-o", "jsonpath={range .items[*]}{.type} {.message}{\"\\n\"}{end}").Output)
            .Contains(agent.Name, StringComparison.Ordinal), () => $"a PortConflict event for held (events: {events})");
        Assert.StartsWith("Warning ", events, StringComparison.Ordinal);
        Assert.Contains("port 8082/TCP is held by pid ", events, StringComparison.Ordinal);
        Assert.Contains("(socat) on ", events, StringComparison.Ordinal);
        await WaitAsync(() => Ingress("service", "held") == serverIp, () => $"held's status lists the server only (now: {Ingress("service", "held")})");
        Assert.DoesNotContain("default/held", OurRules(_agentNetns), StringComparison.Ordinal);
        Assert.Contains("default/held", OurRules(_serverNetns), StringComparison.Ordinal);
        Assert.Equal("held", Curl($"http://{agentIp}:8082/", raw: true));

        // 6. Pools: a Service in pool "edge" is served only by the node labelled with that pool (the agent).
        server.Kubectl("label", "node", agent.Name, $"{PoolLabel}=edge");
        server.Apply($$"""
            apiVersion: v1
            kind: Service
            metadata:
              name: pooled
              labels: {"{{PoolLabel}}": edge}
            spec:
              type: LoadBalancer
              selector: {app: web}
              ports: [{name: http, port: 8083, targetPort: 8080}]
            """);
        await WaitAsync(() => Ingress("service", "pooled") == agentIp, () => $"pooled's status lists the agent only (now: {Ingress("service", "pooled")})");
        await WaitAsync(() => Curl($"http://{agentIp}:8083/").StartsWith("page-", StringComparison.Ordinal), "pooled answering on the agent");
        Assert.DoesNotContain("default/pooled", OurRules(_serverNetns), StringComparison.Ordinal);

        // 7. No servicelb pods anywhere: the forwarding is the nodes' own rules.
        var pods = server.Kubectl("get", "pods", "-A", "-o", "name");
        Assert.DoesNotContain("svclb", pods, StringComparison.Ordinal);
        Assert.DoesNotContain("servicelb", pods, StringComparison.Ordinal);

        // 8. Deleting the Services leaves each node's ServiceLB rules exactly as before they existed.
        server.Kubectl("delete", "service", "web", "held", "pooled");
        server.Kubectl("delete", "service", "-n", "kube-system", "dns-lb");
        foreach (var ns in new[] { _serverNetns, _agentNetns })
        {
            await WaitAsync(() => OurRules(ns) == before[ns], () => $"{ns}'s ServiceLB rules back to before:\n{before[ns]}\nnow:\n{OurRules(ns)}");
        }

        Assert.Contains("servicelb ", server.Coracle("status", "--data-dir", server.DataDir).Stdout, StringComparison.Ordinal);

        // 9. killall removes ServiceLB's chains and jumps in both namespaces.
        foreach (var node in new[] { agent, server })
        {
            var (code, output, errors) = node.Coracle("killall", "--data-dir", node.DataDir);
            Assert.True(code == 0, output + errors);
            Assert.DoesNotContain("CORACLE-SVCLB", Run.Ok("nsenter", $"--net=/run/netns/{node.Netns}", "iptables-save"), StringComparison.Ordinal);
        }
    }

    private static string WebPod(string name, string node) => $$"""
        apiVersion: v1
        kind: Pod
        metadata:
          name: {{name}}
          labels: {app: web}
        spec:
          nodeSelector:
            kubernetes.io/hostname: "{{node}}"
          terminationGracePeriodSeconds: 1
          containers:
          - name: web
            image: "{{Busybox}}"
            imagePullPolicy: Never
            command: ["sh", "-c", "mkdir -p /www; echo page-{{name}} > /www/index.html; exec httpd -f -p 8080 -h /www"]
        """;

    /// <summary>The ingress addresses of a Service's status, space-separated, in status order.</summary>
    private string Ingress(string kind, string name, string ns = "default") =>
        _server!.TryKubectl("get", kind, name, "-n", ns, "-o", "jsonpath={.status.loadBalancer.ingress[*].ip}").Output.Trim();

    /// <summary>The lines of a namespace's <c>iptables-save</c> that name ServiceLB's chains (counters dropped).</summary>
    private static string OurRules(string netns) =>
        string.Join('\n', Run.Ok("nsenter", $"--net=/run/netns/{netns}", "iptables-save", "-t", "nat").Split('\n')
            .Where(l => l.Contains("CORACLE-SVCLB", StringComparison.Ordinal))
            .Select(l => System.Text.RegularExpressions.Regex.Replace(l, @"\[\d+:\d+\]", "[0:0]")));

    /// <summary>What the client namespace gets from <paramref name="url"/> (trimmed; empty on failure).</summary>
    private string Curl(string url, bool raw = false)
    {
        if (raw)
        {
            var host = new Uri(url);
            return NodeHarness.Bash(_clientNetns, $"socat -T3 - TCP:{host.Host}:{host.Port} </dev/null").Stdout.Trim();
        }

        return NodeHarness.Bash(_clientNetns, $"curl -sS -m 5 {url}").Stdout.Trim();
    }

    /// <summary>
    /// An A query for kubernetes.default.svc.cluster.local (id 0x1234) sent from the client namespace over UDP; the
    /// answer's first bytes in hex (<c>12 34 85 ...</c>: the query's id, then QR set for a response), or empty.
    /// </summary>
    private string DnsQuery(string ip, int port) =>
        NodeHarness.Bash(_clientNetns,
            @"printf '\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x0akubernetes\x07default\x03svc\x07cluster\x05local\x00\x00\x01\x00\x01' " +
            $"| socat -T3 -t3 - UDP:{ip}:{port} | od -An -tx1 | head -1").Stdout.Trim();

    private void Helper(string netns, params string[] args)
    {
        var start = new ProcessStartInfo("nsenter") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { $"--net=/run/netns/{netns}" }.Concat(args))
        {
            start.ArgumentList.Add(arg);
        }

        _helpers.Add(Process.Start(start)!);
    }

    private Task WaitAsync(Func<bool> condition, string what, TimeSpan? timeout = null) => WaitAsync(condition, () => what, timeout);

    private Task WaitAsync(Func<bool> condition, Func<string> what, TimeSpan? timeout = null) =>
        ClusterWait.UntilAsync(condition, what, "servicelb", _id, _server, _agent, timeout);

    public void Dispose() =>
        NodeHarness.TearDown(_helpers, [_agent, _server], [_clientNetns, _agentNetns, _serverNetns], _root);
}
