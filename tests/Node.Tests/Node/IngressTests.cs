using Coracle.Node.Tests.Support;

namespace Coracle.Node.Tests.Node;

/// <summary>
/// The in-process ingress (<c>--ingress yarp</c>) on a real two-node cluster: <c>coracle server</c> and <c>coracle agent</c>
/// in two network namespaces joined by a LAN veth. Backends are busybox httpd pods on both nodes; requests are made with
/// curl from the agent's namespace (a machine on the LAN) to the server's node IP, and from the server's namespace to the
/// agent's node IP (the agent runs the ingress its server runs); TLS is checked with a CA the
/// test makes with openssl, and curl and openssl s_client verify chain, name and SNI independently.
/// </summary>
[Trait("Category", "Integration")]
[Collection(RealClusterCollection.Name)]
public sealed class IngressTests : IDisposable
{
    private const string Busybox = "docker.io/library/busybox:coracle";
    private readonly string _id = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(3));
    private readonly string _root = Directory.CreateTempSubdirectory("coracle-ingress-").FullName;
    private readonly string _serverNetns;
    private readonly string _agentNetns;
    private NodeHarness? _server;
    private NodeHarness? _agent;
    private string _serverIp = "";
    private string _agentIp = "";

    public IngressTests()
    {
        _serverNetns = "cor-is-" + _id;
        _agentNetns = "cor-ia-" + _id;
    }

    [K8sFact(NeedsRoot = true)]
    public async Task Yarp_RealCluster_RoutesHostsPathsTlsAndDefaultBackendToPodsOnBothNodes()
    {
        var subnet = NodeHarness.FreeSubnet();
        NodeHarness.CreateNetns(_serverNetns, $"10.205.{subnet}.1", $"10.205.{subnet}.2");
        _serverIp = $"10.206.{subnet}.1";
        var agentIp = _agentIp = $"10.206.{subnet}.2";
        NodeHarness.CreateLan(_serverNetns, _agentNetns, "is-" + _id, "ia-" + _id, _serverIp, agentIp);

        var image = NodeHarness.LayOutImage(_root);
        var server = _server = new NodeHarness(_root, image, "srv-" + _id, _serverNetns, _serverIp);
        var agent = _agent = new NodeHarness(_root, image, "agt-" + _id, _agentNetns, agentIp);
        foreach (var node in new[] { server, agent })
        {
            Coracle.Plugins.Runtime.Containerd.ImageBuilder.WriteArchive(Path.Combine(node.ImagesDir, "busybox.tar"), Busybox, [], ["sh"]);
        }

        // 1. A server with --ingress yarp (traefik is the default otherwise) and an agent; yarp runs in the server's process.
        server.StartServerDisabling("servicelb,coredns,local-storage,metrics-server", "--ingress", "yarp");
        await WaitAsync(() => server.NodeReady(server.Name), $"node {server.Name} Ready", TimeSpan.FromMinutes(3));
        var token = File.ReadAllText(Path.Combine(server.DataDir, "server", "token")).Trim();
        agent.StartAgent($"https://{_serverIp}:9345", token);
        await WaitAsync(() => server.NodeReady(agent.Name), $"node {agent.Name} Ready", TimeSpan.FromMinutes(3));
        await WaitAsync(() => server.Component("yarp").State == "ready", "component yarp ready");
        await WaitAsync(() => server.Jsonpath("ingressclass", "yarp", "{.spec.controller}") == "coracle.dev/yarp", "IngressClass yarp");
        Assert.Equal("true", server.Jsonpath("ingressclass", "yarp", "{.metadata.annotations.ingressclass\\.kubernetes\\.io/is-default-class}"));

        // 2. Backends: web (two replicas spread over both nodes) and other (one pod); a TLS Secret for a.test from the test's CA.
        server.Apply($$$"""
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: web}
            spec:
              replicas: 2
              selector: {matchLabels: {app: web}}
              template:
                metadata: {labels: {app: web}}
                spec:
                  terminationGracePeriodSeconds: 1
                  topologySpreadConstraints:
                  - maxSkew: 1
                    topologyKey: kubernetes.io/hostname
                    whenUnsatisfiable: DoNotSchedule
                    labelSelector: {matchLabels: {app: web}}
                  containers:
                  - name: httpd
                    image: "{{{Busybox}}}"
                    imagePullPolicy: Never
                    command: ["sh", "-c", "mkdir -p /www/app && echo web $(hostname) > /www/index.html && echo app $(hostname) > /www/app/index.html && exec httpd -f -p 8080 -h /www"]
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: other, labels: {app: other}}
            spec:
              terminationGracePeriodSeconds: 1
              containers:
              - name: httpd
                image: "{{{Busybox}}}"
                imagePullPolicy: Never
                command: ["sh", "-c", "mkdir -p /www && echo other > /www/index.html && echo only > /www/only && exec httpd -f -p 8080 -h /www"]
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: web}
            spec: {selector: {app: web}, ports: [{name: http, port: 80, targetPort: 8080}]}
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: other}
            spec: {selector: {app: other}, ports: [{port: 80, targetPort: 8080}]}
            """);
        var tls = MakeCertificates();
        server.Kubectl("create", "secret", "tls", "a-tls", "--cert", tls.Crt, "--key", tls.Key);

        // 3. Two hosts, Prefix and Exact paths, TLS for a.test; and an Ingress whose Service does not exist.
        server.Apply("""
            apiVersion: networking.k8s.io/v1
            kind: Ingress
            metadata: {name: site}
            spec:
              ingressClassName: yarp
              tls: [{hosts: [a.test], secretName: a-tls}]
              rules:
              - host: a.test
                http:
                  paths:
                  - {path: /, pathType: Prefix, backend: {service: {name: web, port: {name: http}}}}
              - host: b.test
                http:
                  paths:
                  - {path: /only, pathType: Exact, backend: {service: {name: other, port: {number: 80}}}}
                  - {path: /app, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
            ---
            apiVersion: networking.k8s.io/v1
            kind: Ingress
            metadata: {name: broken}
            spec:
              ingressClassName: yarp
              rules:
              - host: c.test
                http:
                  paths:
                  - {path: /, pathType: Prefix, backend: {service: {name: missing, port: {number: 80}}}}
            """);
        await WaitAsync(() => server.Jsonpath("deployment", "web", "{.status.readyReplicas}") == "2", "web's two replicas ready", TimeSpan.FromMinutes(3));
        await WaitAsync(() => server.Jsonpath("pod", "other", "{.status.phase}") == "Running", "pod other Running");
        var nodes = server.Kubectl("get", "pods", "-l", "app=web", "-o", "jsonpath={.items[*].spec.nodeName}").Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal([agent.Name, server.Name], nodes.Order(StringComparer.Ordinal).ToArray());

        // Round robin over the ready endpoints reaches the pods on both nodes.
        var seen = new HashSet<string>(StringComparer.Ordinal);
        await WaitAsync(() =>
        {
            seen.Add(Http("a.test", "/").Body.Trim());
            return seen.Count(s => s.StartsWith("web web-", StringComparison.Ordinal)) == 2;
        }, () => $"a.test answered by both web pods (seen: {string.Join(" | ", seen)})");

        // Every node serves: the agent runs the ingress its server runs, so a request to the agent's address (here from
        // the server's side of the LAN) reaches the pods on both nodes too.
        await WaitAsync(() => agent.Component("yarp").State == "ready", "component yarp ready on the agent");
        var seenOnAgent = new HashSet<string>(StringComparer.Ordinal);
        await WaitAsync(() =>
        {
            seenOnAgent.Add(HttpAt(_serverNetns, _agentIp, "a.test", "/").Body.Trim());
            return seenOnAgent.Count(s => s.StartsWith("web web-", StringComparison.Ordinal)) == 2;
        }, () => $"a.test through the agent's yarp answered by both web pods (seen: {string.Join(" | ", seenOnAgent)})");

        Assert.StartsWith("app web-", Http("b.test", "/app/").Body, StringComparison.Ordinal);
        Assert.Equal("only", Http("b.test", "/only").Body.Trim());
        Assert.Equal((404, $"no ingress rule for host b.test path /only/more"), Http("b.test", "/only/more").Trimmed());
        Assert.Equal((404, $"no ingress rule for host unknown.test path /"), Http("unknown.test", "/").Trimmed());
        Assert.Equal((503, "service default/missing not found"), Http("c.test", "/").Trimmed());

        // TLS: curl trusts only the test CA and checks the name; SNI picks the certificate (b.test has none: the default one).
        var https = NodeHarness.Bash(_agentNetns, $"curl -sS -m 5 --cacert {tls.Ca} --resolve a.test:443:{_serverIp} https://a.test/");
        Assert.True(https.ExitCode == 0, https.Stderr);
        Assert.StartsWith("web web-", https.Stdout, StringComparison.Ordinal);
        Assert.Equal("subject=CN=a.test", Subject("a.test"));
        Assert.Equal("subject=CN=coracle yarp default certificate", Subject("b.test"));
        Assert.Contains("Verify return code: 0 (ok)", NodeHarness.Bash(_agentNetns,
            $"openssl s_client -connect {_serverIp}:443 -servername a.test -verify_hostname a.test -CAfile {tls.Ca} </dev/null 2>&1").Stdout, StringComparison.Ordinal);

        // 4. Status: the served Ingresses carry the serving node's address; the broken one has a Warning Event.
        var both = string.Join(" ", new[] { _serverIp, _agentIp }.Order(StringComparer.Ordinal));
        await WaitAsync(() => server.Jsonpath("ingress", "site", "{.status.loadBalancer.ingress[*].ip}") == both, "status.loadBalancer of ingress site: both nodes");
        await WaitAsync(() => server.TryKubectl("get", "events", "--field-selector", "involvedObject.name=broken,reason=ServiceNotFound", "-o", "jsonpath={.items[*].message}")
            .Output.Contains("rule c.test/: service default/missing not found", StringComparison.Ordinal), "a ServiceNotFound event on ingress broken");
        Assert.Equal("Warning", server.Kubectl("get", "events", "--field-selector", "involvedObject.name=broken,reason=ServiceNotFound", "-o", "jsonpath={.items[0].type}").Trim());
        await WaitAsync(() => server.Component("yarp") is ("ready", _, 0), "yarp ready without restarts");
        var status = server.Coracle("status", "--data-dir", server.DataDir).Stdout;
        Assert.Contains("2 ingresses, 3 hosts", status, StringComparison.Ordinal);
        Assert.Contains("errors (first: default/broken ServiceNotFound)", status, StringComparison.Ordinal);

        // 5. A class-less Ingress with a default backend (yarp is the default class): unknown hosts now reach it.
        server.Apply("""
            apiVersion: networking.k8s.io/v1
            kind: Ingress
            metadata: {name: fallback}
            spec:
              defaultBackend: {service: {name: other, port: {number: 80}}}
            """);
        await WaitAsync(() => Http("unknown.test", "/").Body.Trim() == "other", "the default backend for an unknown host");

        // 6. Scaling web to one replica: only the remaining pod answers.
        server.Kubectl("scale", "deployment", "web", "--replicas", "1");
        await WaitAsync(() => server.Kubectl("get", "pods", "-l", "app=web", "-o", "name").Trim().Split('\n').Length == 1, "web scaled to one pod");
        var remaining = "web " + server.Kubectl("get", "pods", "-l", "app=web", "-o", "jsonpath={.items[0].metadata.name}").Trim();
        await WaitAsync(() => Enumerable.Range(0, 4).All(_ => Http("a.test", "/").Body.Trim() == remaining), () => $"only {remaining} answering");

        // 7. Deleting the Ingresses stops the answers.
        server.Kubectl("delete", "ingress", "site", "fallback");
        await WaitAsync(() => Http("a.test", "/").Trimmed() == (404, "no ingress rule for host a.test path /"), "a.test gone after the ingress was deleted");

        foreach (var node in new[] { agent, server })
        {
            var (code, output, errors) = node.Coracle("killall", "--data-dir", node.DataDir);
            Assert.True(code == 0, output + errors);
        }

        Assert.Empty(NodeHarness.ProcessesNaming(server.DataDir));
    }

    /// <summary>A GET from the agent's namespace (the LAN) to the server's node IP, port 80, with Host <paramref name="host"/>.</summary>
    private Response Http(string host, string path) => HttpAt(_agentNetns, _serverIp, host, path);

    /// <summary>A GET from network namespace <paramref name="netns"/> to <paramref name="ip"/>, port 80, with Host <paramref name="host"/>.</summary>
    private static Response HttpAt(string netns, string ip, string host, string path)
    {
        var (code, stdout, stderr) = NodeHarness.Bash(netns, $"curl -sS -m 5 -H 'Host: {host}' -w '\\n%{{http_code}}' http://{ip}{path}");
        if (code != 0)
        {
            return new Response(0, stderr);
        }

        var cut = stdout.LastIndexOf('\n');
        return new Response(int.Parse(stdout[(cut + 1)..], System.Globalization.CultureInfo.InvariantCulture), stdout[..cut]);
    }

    /// <summary>The subject of the certificate served for SNI <paramref name="serverName"/> on port 443, as openssl prints it.</summary>
    private string Subject(string serverName) =>
        NodeHarness.Bash(_agentNetns, $"openssl s_client -connect {_serverIp}:443 -servername {serverName} </dev/null 2>/dev/null | openssl x509 -noout -subject").Stdout.Trim()
            .Replace(" = ", "=", StringComparison.Ordinal);

    /// <summary>A CA and a server certificate for a.test signed by it, made by openssl.</summary>
    private (string Ca, string Crt, string Key) MakeCertificates()
    {
        var dir = Directory.CreateDirectory(Path.Combine(_root, "tls")).FullName;
        string P(string name) => Path.Combine(dir, name);
        Run.Ok("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", P("ca.key"), "-out", P("ca.crt"),
            "-subj", "/CN=coracle ingress test CA", "-days", "2", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign");
        Run.Ok("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", P("a.key"), "-out", P("a.csr"), "-subj", "/CN=a.test");
        File.WriteAllText(P("a.ext"), "subjectAltName=DNS:a.test\nextendedKeyUsage=serverAuth\n");
        Run.Ok("openssl", "x509", "-req", "-in", P("a.csr"), "-CA", P("ca.crt"), "-CAkey", P("ca.key"), "-CAcreateserial", "-out", P("a.crt"), "-days", "2", "-extfile", P("a.ext"));
        return (P("ca.crt"), P("a.crt"), P("a.key"));
    }

    private Task WaitAsync(Func<bool> condition, string what, TimeSpan? timeout = null) => WaitAsync(condition, () => what, timeout);

    private Task WaitAsync(Func<bool> condition, Func<string> what, TimeSpan? timeout = null) =>
        ClusterWait.UntilAsync(condition, what, "ingress", _id, _server, _agent, timeout);

    public void Dispose() =>
        NodeHarness.TearDown([], [_agent, _server], [_agentNetns, _serverNetns], _root);

    private sealed record Response(int Status, string Body)
    {
        public (int, string) Trimmed() => (Status, Body.Trim());
    }
}
