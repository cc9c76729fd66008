using System.Diagnostics;
using System.Globalization;
using Coracle.Node.Tests.Support;

namespace Coracle.Node.Tests.Node;

/// <summary>
/// Two <c>coracle server</c>s on one real PostgreSQL (K3s's external-database HA), each in its own network namespace
/// (prefix <c>joinh-</c>): the first has a veth to the test host, where PostgreSQL listens on the host's end; the second
/// sits on a LAN with the first and routes through it. The second joins the first with <c>--server</c> and the server
/// token. An agent on a third namespace (a LAN with the first) joins the first and runs a pod: its load balancer and
/// tunnels reach both servers, so after the first dies its node stays Ready and its pod's logs come through the second.
/// PostgreSQL, the nodes, the namespaces and the host route are removed even when an assertion fails.
/// </summary>
[Trait("Category", "Integration")]
[Collection(RealClusterCollection.Name)]
public sealed class ServerJoinNodeTests : IDisposable
{
    private const string Busybox = "docker.io/library/busybox:coracle";
    private readonly string _id = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(2));
    private readonly string _root = Directory.CreateTempSubdirectory("coracle-joinh-").FullName;
    private readonly string _firstNetns;
    private readonly string _secondNetns;
    private readonly string _agentNetns;
    private readonly List<Process> _helpers = [];
    private readonly string _pgDir = Path.Combine(Path.GetTempPath(), "coracle-joinh-pg-" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4)));
    private string? _hostRoute;
    private string? _pgData;
    private NodeHarness? _first;
    private NodeHarness? _second;
    private NodeHarness? _agent;

    public ServerJoinNodeTests()
    {
        _firstNetns = "joinh-a-" + _id;
        _secondNetns = "joinh-b-" + _id;
        _agentNetns = "joinh-c-" + _id;
    }

    [K8sFact(NeedsRoot = true)]
    public async Task Server_JoinsAnotherOnPostgres_BothServeBothAreControlPlaneAndTheSecondSurvivesTheFirstsDeath()
    {
        var subnet = NodeHarness.FreeSubnet();
        var hostIp = $"10.207.{subnet}.1";
        NodeHarness.CreateNetns(_firstNetns, hostIp, $"10.207.{subnet}.2");
        var (firstIp, secondIp) = ($"10.208.{subnet}.1", $"10.208.{subnet}.2");
        NodeHarness.CreateLan(_firstNetns, _secondNetns, "ja-" + _id, "jb-" + _id, firstIp, secondIp);
        var agentIp = $"10.212.{subnet}.2";
        NodeHarness.CreateLan(_firstNetns, _agentNetns, "jc-" + _id, "jd-" + _id, $"10.212.{subnet}.1", agentIp);
        NodeHarness.Bash(_firstNetns, "sysctl -qw net.ipv4.ip_forward=1");
        _hostRoute = $"10.208.{subnet}.0/24";
        Run.Ok("ip", "route", "add", _hostRoute, "via", $"10.207.{subnet}.2");
        var endpoint = StartPostgres(hostIp, $"10.207.{subnet}.0/24", _hostRoute);

        var image = NodeHarness.LayOutImage(_root);
        var first = _first = new NodeHarness(_root, image, "srv1-" + _id, _firstNetns, firstIp);
        var second = _second = new NodeHarness(_root, image, "srv2-" + _id, _secondNetns, secondIp);
        var agent = _agent = new NodeHarness(_root, image, "agt-" + _id, _agentNetns, agentIp);
        Coracle.Plugins.Runtime.Containerd.ImageBuilder.WriteArchive(Path.Combine(agent.ImagesDir, "busybox.tar.gz"), Busybox, [], ["sh"]);

        // 1. The first server on PostgreSQL, then the second joins it with the server token.
        first.StartServer("--datastore-endpoint", endpoint);
        await WaitAsync(() => first.NodeReady(first.Name), $"node {first.Name} Ready", TimeSpan.FromMinutes(3));
        var token = File.ReadAllText(Path.Combine(first.DataDir, "server", "token")).Trim();
        second.StartServer("--datastore-endpoint", endpoint, "--server", $"https://{firstIp}:9345", "--token", token);
        await WaitAsync(() => second.NodeReady(second.Name), $"node {second.Name} Ready through the second server's own kube-apiserver", TimeSpan.FromMinutes(3));

        // The second wrote the cluster's CAs and its own leaves; status says where it joined.
        foreach (var ca in new[] { "server-ca", "client-ca", "request-header-ca", "etcd-server-ca", "etcd-peer-ca" })
        {
            Assert.Equal(File.ReadAllText(Path.Combine(first.DataDir, "server", "tls", ca + ".key")), File.ReadAllText(Path.Combine(second.DataDir, "server", "tls", ca + ".key")));
        }

        Assert.NotEqual(File.ReadAllText(Path.Combine(first.DataDir, "server", "tls", "serving-kube-apiserver.crt")),
            File.ReadAllText(Path.Combine(second.DataDir, "server", "tls", "serving-kube-apiserver.crt")));
        Assert.Contains($"joined the cluster of https://{firstIp}:9345", second.Coracle("status").Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("joined the cluster", first.Coracle("status").Stdout, StringComparison.Ordinal);

        // 2. Both API servers serve, and each shows both servers as Ready control-plane nodes.
        foreach (var through in new[] { first, second })
        {
            foreach (var node in new[] { first, second })
            {
                await WaitAsync(() => through.NodeReady(node.Name) && through.Jsonpath("node", node.Name, "{.metadata.labels.node-role\\.kubernetes\\.io/control-plane}") == "true",
                    $"{node.Name} Ready with the control-plane label, seen through {through.Name}");
            }
        }

        // Each server holds its own node name with its node password, the joining one as well.
        foreach (var node in new[] { first, second })
        {
            await WaitAsync(() => node.Component("node-password").State == "ready", $"{node.Name}'s node password held");
            Assert.Equal("coracle.dev/node-password", second.Kubectl("-n", "kube-system", "get", "secret", $"{node.Name}.node-password.coracle", "-o", "jsonpath={.type}").Trim());
        }

        // 3. controller-manager and scheduler (both on every server, --leader-elect) elect one leader between the two
        //    servers (their Lease identities carry the host name, the same for both here, so each process's log says who
        //    leads); the manifests Lease has one holder.
        foreach (var component in new[] { "kube-controller-manager", "kube-scheduler" })
        {
            await WaitAsync(() => new[] { first, second }.Count(n => Acquired(n, component)) == 1,
                () => $"exactly one {component} leading ({string.Join(", ", new[] { first, second }.Where(n => Acquired(n, component)).Select(n => n.Name))})");
        }

        await WaitAsync(() => Holder(second, "coracle-manifests") == first.Name, () => $"the manifests Lease held by {first.Name}, the first server (holder '{Holder(second, "coracle-manifests")}')");

        // 3b. An agent joins the first server; its load balancer learns both API servers from the kubernetes Endpoints
        //     and it keeps a tunnel to each, so the second server's kube-apiserver reaches its pod's logs too.
        agent.StartAgent($"https://{firstIp}:9345", token);
        await WaitAsync(() => second.NodeReady(agent.Name), $"agent {agent.Name} Ready", TimeSpan.FromMinutes(3));
        first.Apply($$"""
            apiVersion: v1
            kind: Pod
            metadata: {name: on-agent}
            spec:
              nodeName: {{agent.Name}}
              terminationGracePeriodSeconds: 1
              containers:
              - {name: bb, image: "{{Busybox}}", imagePullPolicy: Never, command: ["sh", "-c", "echo hello-from-the-agent; sleep 100000"]}
            """);
        await WaitAsync(() => first.Jsonpath("pod", "on-agent", "{.status.phase}") == "Running", "pod on-agent Running on the agent");
        await WaitAsync(() => second.TryKubectl("logs", "on-agent").Output.Contains("hello-from-the-agent", StringComparison.Ordinal),
            () => $"the agent's pod logs through the second server (agent log: {Tail(agent.Log)})", TimeSpan.FromMinutes(2));
        Assert.Contains($"to [{firstIp}:6443, {secondIp}:6443]", agent.Log, StringComparison.Ordinal);
        Assert.Contains($"tunnel: keeping a tunnel to server https://{secondIp}:9345/", agent.Log, StringComparison.Ordinal);

        // 4. kill -9 the first: the second keeps serving, its node stays Ready, and every singleton moves to it.
        first.Signal(9);
        await WaitAsync(() => Holder(second, "coracle-manifests") == second.Name, () => $"the manifests Lease taken by {second.Name} (holder '{Holder(second, "coracle-manifests")}')", TimeSpan.FromMinutes(2));
        foreach (var component in new[] { "kube-controller-manager", "kube-scheduler" })
        {
            await WaitAsync(() => Acquired(second, component), $"{component} of {second.Name} leading", TimeSpan.FromMinutes(2));
        }

        // The controller-manager that now leads notices the dead server's kubelet stopped reporting.
        await WaitAsync(() => second.Jsonpath("node", first.Name, "{.status.conditions[?(@.type==\"Ready\")].status}") == "Unknown",
            $"{first.Name} NotReady (Unknown) through {second.Name}", TimeSpan.FromMinutes(3));
        Assert.True(second.NodeReady(second.Name), $"{second.Name} is not Ready after the first server died");
        Assert.Equal("ready", second.Component("kube-apiserver").State);

        // The agent's kubelet moved to the second server through its load balancer: by the time the first server's node
        // is Unknown (no heartbeat for the grace period), an agent stuck on the first would be too.
        Assert.True(second.NodeReady(agent.Name), $"agent {agent.Name} is not Ready after the first server died; agent log: {Tail(agent.Log)}");
        Assert.Contains($"load balancer: switched to API server {secondIp}:6443", agent.Log, StringComparison.Ordinal);
        Assert.Contains("hello-from-the-agent", second.Kubectl("logs", "on-agent"), StringComparison.Ordinal);

        // The agent restarts while the server it joined is still down: it joins through the second, which it learned.
        agent.Signal(15);
        agent.StartAgent($"https://{firstIp}:9345", token);
        await WaitAsync(() => agent.Log.Contains($"joining through https://{secondIp}:9345/", StringComparison.Ordinal),
            () => $"the restarted agent joining through the second server (agent log: {Tail(agent.Log)})", TimeSpan.FromMinutes(2));
        await WaitAsync(() => agent.Component("kubelet").State == "ready" && agent.Component("tunnel").State == "ready",
            () => $"the restarted agent's kubelet and tunnel ready (agent log: {Tail(agent.Log)})", TimeSpan.FromMinutes(3));
        // A restarted kubelet reports NotReady until its runtime and pod checks have run once.
        await WaitAsync(() => second.NodeReady(agent.Name), $"agent {agent.Name} Ready again after its restart", TimeSpan.FromMinutes(2));
    }

    private static string Tail(string log) => log.Length > 3000 ? log[^3000..] : log;

    private static string Holder(NodeHarness through, string lease) =>
        through.TryKubectl("-n", "kube-system", "get", "lease", lease, "-o", "jsonpath={.spec.holderIdentity}") is (0, var holder) ? holder.Trim() : "";

    /// <summary>True once <paramref name="component"/> of <paramref name="node"/> logged that it acquired its leader Lease.</summary>
    private static bool Acquired(NodeHarness node, string component)
    {
        var log = Path.Combine(node.DataDir, "logs", component + ".log");
        return File.Exists(log) && File.ReadAllText(log).Contains($"successfully acquired lease kube-system/{component}", StringComparison.Ordinal);
    }

    /// <summary>PostgreSQL (Debian's) run as the postgres user from a temp dir, listening on <paramref name="listen"/>, trusting the two networks.</summary>
    private string StartPostgres(string listen, params string[] networks)
    {
        var bin = Directory.GetDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin")).OrderDescending(StringComparer.Ordinal).FirstOrDefault(d => File.Exists(Path.Combine(d, "initdb")));
        Assert.True(bin is not null, "PostgreSQL is not installed (apt-get install postgresql)");
        // Not under the test's 0700 folder: the postgres user must reach it.
        var dir = _pgDir;
        Directory.CreateDirectory(dir);
        Run.Ok("chown", "postgres:postgres", dir);
        _pgData = Path.Combine(dir, "data");
        Run.Ok("runuser", "-u", "postgres", "--", Path.Combine(bin!, "initdb"), "-D", _pgData, "-A", "trust", "-U", "postgres", "--no-sync");
        File.AppendAllLines(Path.Combine(_pgData, "pg_hba.conf"), networks.Select(n => $"host all all {n} trust"));
        var port = FreePorts.Next();
        Run.Ok("runuser", "-u", "postgres", "--", Path.Combine(bin!, "pg_ctl"), "-D", _pgData, "-l", Path.Combine(dir, "postgres.log"), "-w", "-t", "120",
            "-o", $"-k {dir} -p {port} -c listen_addresses={listen} -c fsync=off", "start");
        Run.Ok("runuser", "-u", "postgres", "--", Path.Combine(bin!, "psql"), "-h", dir, "-p", port.ToString(CultureInfo.InvariantCulture), "-c", "CREATE DATABASE coracle");
        return $"postgres://postgres@{listen}:{port}/coracle?sslmode=disable";
    }

    private Task WaitAsync(Func<bool> condition, string what, TimeSpan? timeout = null) => WaitAsync(condition, () => what, timeout);

    private Task WaitAsync(Func<bool> condition, Func<string> what, TimeSpan? timeout = null) =>
        ClusterWait.UntilAsync(condition, what, "joinh", _id, _first, _second, timeout);

    public void Dispose()
    {
        try
        {
            NodeHarness.TearDown(_helpers, [_agent, _second, _first], [_agentNetns, _secondNetns, _firstNetns], Path.Combine(_root, "nodes-none"));
        }
        finally
        {
            if (_hostRoute is not null)
            {
                Run.Tool("ip", ["route", "del", _hostRoute]);
            }

            if (_pgData is not null)
            {
                var pgCtl = Directory.GetDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin", "pg_ctl")).First(File.Exists);
                Run.Tool("runuser", ["-u", "postgres", "--", pgCtl, "-D", _pgData, "-m", "immediate", "-w", "stop"]);
            }

            if (Directory.Exists(_pgDir))
            {
                Directory.Delete(_pgDir, recursive: true);
            }

            try
            {
                Directory.Delete(_root, recursive: true);
            }
            catch (IOException)
            {
                // Leftover mounts of a node: the real-cluster tests report them.
            }
        }
    }
}
