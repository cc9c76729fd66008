using System.Net.Sockets;
using System.Text;
using Coracle.Node.Tests.Support;

namespace Coracle.Node.Tests.Node;

/// <summary>
/// kube-apiserver's "cluster" egress to pods, end to end with real Kubernetes: an aggregated API (metrics-server, its
/// APIService and <c>kubectl top nodes</c>) and a validating admission webhook served by a pod (built here from
/// tests/Node.Tests/Webhook/main.go), on a single server in the default egress-selector-mode (agent) and on two nodes
/// in pod mode with the pods first on the agent — the server's own path to the agent's pods is rejected by an iptables
/// rule, so only the tunnel can carry the traffic — then on the server. A CONNECT to an address that is neither a node,
/// a pod nor a service is refused by the real egress socket. Cleaned up by <c>coracle killall</c>.
/// </summary>
[Trait("Category", "Integration")]
[Collection(RealClusterCollection.Name)]
public sealed class EgressTests : IDisposable
{
    private readonly string _id = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(3));
    private readonly string _root = Directory.CreateTempSubdirectory("coracle-egress-").FullName;
    private readonly string _serverNetns;
    private readonly string _agentNetns;
    private NodeHarness? _server;
    private NodeHarness? _agent;

    public EgressTests()
    {
        _serverNetns = "cor-es-" + _id;
        _agentNetns = "cor-ea-" + _id;
    }

    [K8sFact(NeedsRoot = true)]
    public async Task Egress_SingleServerAgentMode_MetricsApiAndPodWebhookWorkOtherAddressesRefused()
    {
        var subnet = NodeHarness.FreeSubnet();
        var nodeIp = $"10.205.{subnet}.2";
        NodeHarness.CreateNetns(_serverNetns, $"10.205.{subnet}.1", nodeIp);
        var server = _server = new NodeHarness(_root, NodeHarness.LayOutImage(_root), "srv-" + _id, _serverNetns, nodeIp);
        AddonImages.WriteMetricsServer(server.ImagesDir);
        AddonImages.WriteWebhook(server.ImagesDir);

        // 1. The server starts in K3s's default mode.
        server.StartServer();
        await WaitAsync(() => server.NodeReady(server.Name), $"node {server.Name} Ready", TimeSpan.FromMinutes(3));
        Assert.Contains("egress selector mode agent: ", server.Log, StringComparison.Ordinal);

        // 2. metrics-server's APIService becomes Available (kube-apiserver reaches the pod through the egress proxy)
        //    and kubectl top nodes answers.
        server.Apply(EgressManifests.MetricsServer(server.Name));
        server.Apply(EgressManifests.Webhook(server.Name));
        await AssertMetricsApiAsync(server, server.Name);

        // 3. The webhook served by a pod is called: it denies the labelled ConfigMap and allows the other.
        await AssertWebhookAsync(server, "one");

        // 4. The egress socket refuses an address that is neither a node, a pod nor a service, with a clear message,
        //    and logs it (once per target per minute).
        var socket = Path.Combine(server.DataDir, "server", "egress.sock");
        var refused = await ConnectAsync(socket, "192.0.2.1:443");
        Assert.Equal("HTTP/1.1 403 Forbidden|192.0.2.1 is neither a node, a pod (no node's podCIDR holds it) nor a service cluster IP of this cluster", refused);
        Assert.Equal(refused, await ConnectAsync(socket, "192.0.2.1:443"));
        Assert.Single(server.Log.Split('\n'), l => l.Contains("egress CONNECT 192.0.2.1:443 refused with 403", StringComparison.Ordinal));
        Assert.StartsWith("HTTP/1.1 403 Forbidden|example.org is not a node", await ConnectAsync(socket, "example.org:443"), StringComparison.Ordinal);
    }

    [K8sFact(NeedsRoot = true)]
    public async Task Egress_TwoNodesPodMode_MetricsApiAndWebhookOnTheAgentThroughTheTunnelThenOnTheServer()
    {
        var subnet = NodeHarness.FreeSubnet();
        NodeHarness.CreateNetns(_serverNetns, $"10.205.{subnet}.1", $"10.205.{subnet}.2");
        var serverIp = $"10.206.{subnet}.1";
        var agentIp = $"10.206.{subnet}.2";
        CreateLan(serverIp, agentIp);
        var image = NodeHarness.LayOutImage(_root);
        var server = _server = new NodeHarness(_root, image, "srv-" + _id, _serverNetns, serverIp);
        var agent = _agent = new NodeHarness(_root, image, "agt-" + _id, _agentNetns, agentIp);
        foreach (var node in new[] { server, agent })
        {
            AddonImages.WriteMetricsServer(node.ImagesDir);
            AddonImages.WriteWebhook(node.ImagesDir);
        }

        // 1. Server in pod mode, agent joined; both Ready; the agent knows its pod network.
        server.StartServer("--egress-selector-mode", "pod");
        await WaitAsync(() => server.NodeReady(server.Name), $"node {server.Name} Ready", TimeSpan.FromMinutes(3));
        Assert.Contains("egress selector mode pod: ", server.Log, StringComparison.Ordinal);
        agent.StartAgent($"https://{serverIp}:9345", File.ReadAllText(Path.Combine(server.DataDir, "server", "token")).Trim());
        await WaitAsync(() => server.NodeReady(agent.Name), $"node {agent.Name} Ready", TimeSpan.FromMinutes(3));
        await WaitAsync(() => server.Jsonpath("node", agent.Name, "{.spec.podCIDR}").StartsWith("10.42.", StringComparison.Ordinal), $"podCIDR of {agent.Name}");
        var agentCidr = server.Jsonpath("node", agent.Name, "{.spec.podCIDR}");
        await WaitAsync(() => agent.Log.Contains($"tunnel: pod network of node {agent.Name} is {agentCidr}", StringComparison.Ordinal), "the agent's tunnel to learn its pod network");

        // 2. The server's own TCP path to the agent's pods is closed (new connections from its host are rejected), so
        //    whatever kube-apiserver reaches there went through the agent's tunnel.
        Assert.Equal(0, Bash(_serverNetns, $"iptables -I OUTPUT -d {agentCidr} -p tcp -m conntrack --ctstate NEW -j REJECT --reject-with tcp-reset").ExitCode);

        // 3. metrics-server and the webhook on the agent.
        server.Apply(EgressManifests.MetricsServer(agent.Name));
        server.Apply(EgressManifests.Webhook(agent.Name));
        await WaitAsync(() => PodOn(server, EgressManifests.WebhookNamespace, "app=webhook") == agent.Name, "the webhook pod on the agent", TimeSpan.FromMinutes(3));
        var webhookIp = server.TryKubectl("-n", EgressManifests.WebhookNamespace, "get", "pods", "-l", "app=webhook", "-o", "jsonpath={.items[0].status.podIP}").Output.Trim();
        var direct = Bash(_serverNetns, $"exec 3<>/dev/tcp/{webhookIp}/8443");
        Assert.True(direct.ExitCode != 0, $"the server's namespace still opens TCP connections to the agent's pod {webhookIp}");
        await AssertMetricsApiAsync(server, server.Name);
        await AssertWebhookAsync(server, "on-agent");
        Assert.DoesNotContain("refused with", server.Log, StringComparison.Ordinal);

        // 4. The same with both pods moved to the server (its own pods are dialled directly).
        foreach (var (ns, deployment, selector) in new[] { ("kube-system", "metrics-server", "k8s-app=metrics-server"), (EgressManifests.WebhookNamespace, "webhook", "app=webhook") })
        {
            server.Kubectl("-n", ns, "patch", "deployment", deployment, "-p", "{\"spec\":{\"template\":{\"spec\":{\"nodeSelector\":{\"kubernetes.io/hostname\":\"" + server.Name + "\"}}}}}");
            await WaitAsync(() => server.TryKubectl("-n", ns, "get", "pods", "-l", selector, "-o", "jsonpath={range .items[*]}{.spec.nodeName}/{.status.containerStatuses[0].ready} {end}").Output.Trim() == $"{server.Name}/true",
                $"{deployment} moved to {server.Name} and ready", TimeSpan.FromMinutes(3));
        }

        await AssertMetricsApiAsync(server, server.Name);
        await AssertWebhookAsync(server, "on-server");
    }

    private async Task AssertMetricsApiAsync(NodeHarness server, string node)
    {
        await WaitAsync(() => server.Jsonpath("apiservice", "v1beta1.metrics.k8s.io", "{.status.conditions[?(@.type==\"Available\")].status}") == "True",
            () => "APIService v1beta1.metrics.k8s.io Available (" + server.Jsonpath("apiservice", "v1beta1.metrics.k8s.io", "{.status.conditions}") + ")", TimeSpan.FromMinutes(3));
        var top = (ExitCode: -1, Output: "");
        await WaitAsync(() => (top = server.TryKubectl("top", "nodes", "--no-headers")).ExitCode == 0
            && top.Output.Split('\n').Any(l => l.StartsWith(node + " ", StringComparison.Ordinal) && l.Contains('%', StringComparison.Ordinal)),
            () => $"kubectl top nodes to show {node} ({top})", TimeSpan.FromMinutes(2));
    }

    private async Task AssertWebhookAsync(NodeHarness server, string suffix)
    {
        // Fail-closed webhook: an allowed create proves kube-apiserver reached the pod; the denial's text comes from it.
        // (Not its log: two kubelets on one host share /var/log/pods, and `kubectl logs` of the agent's pod failed once
        // with "failed to try resolving symlinks".)
        var allowed = (ExitCode: -1, Output: "");
        await WaitAsync(() => (allowed = ApplyText(server, EgressManifests.ConfigMap("allowed-" + suffix, deny: false))).ExitCode == 0,
            () => $"the webhook to allow allowed-{suffix} ({allowed})", TimeSpan.FromMinutes(2));
        var denied = ApplyText(server, EgressManifests.ConfigMap("denied-" + suffix, deny: true));
        Assert.True(denied.ExitCode != 0, denied.Output);
        Assert.Contains($"admission webhook \"deny.egress.coracle.test\" denied the request: denied by the coracle test webhook: denied-{suffix} has {EgressManifests.DenyLabel}=true", denied.Output, StringComparison.Ordinal);
        Assert.NotEqual(0, server.TryKubectl("-n", EgressManifests.GuardedNamespace, "get", "configmap", "denied-" + suffix).ExitCode);
    }

    private static string PodOn(NodeHarness server, string ns, string selector) =>
        server.TryKubectl("-n", ns, "get", "pods", "-l", selector, "-o", "jsonpath={range .items[?(@.status.phase==\"Running\")]}{.spec.nodeName}{end}").Output.Trim();

    private static (int ExitCode, string Output) ApplyText(NodeHarness node, string yaml)
    {
        var file = Path.Combine(node.DataDir, $"manifest-{Guid.NewGuid():N}.yaml");
        File.WriteAllText(file, yaml);
        return node.TryKubectl("apply", "-f", file);
    }

    /// <summary>CONNECT over the egress socket; "status line|body".</summary>
    private static async Task<string> ConnectAsync(string socketPath, string target)
    {
        using var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await client.ConnectAsync(new UnixDomainSocketEndPoint(socketPath));
        await using var stream = new NetworkStream(client);
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n"));
        using var reader = new StreamReader(stream);
        var text = await reader.ReadToEndAsync();
        var split = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        return text[..text.IndexOf("\r\n", StringComparison.Ordinal)] + "|" + text[(split + 4)..].TrimEnd('\n');
    }

    private void CreateLan(string serverIp, string agentIp) =>
        NodeHarness.CreateLan(_serverNetns, _agentNetns, "es-" + _id, "ea-" + _id, serverIp, agentIp);

    private static (int ExitCode, string Stdout, string Stderr) Bash(string netns, string script) => NodeHarness.Bash(netns, script);

    private Task WaitAsync(Func<bool> condition, string what, TimeSpan? timeout = null) => WaitAsync(condition, () => what, timeout);

    private Task WaitAsync(Func<bool> condition, Func<string> what, TimeSpan? timeout = null) =>
        ClusterWait.UntilAsync(condition, what, "egress", _id, _server, _agent, timeout);

    public void Dispose() =>
        NodeHarness.TearDown([], [_agent, _server], [_agentNetns, _serverNetns], _root);
}
