using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Coracle.Core.Identity;
using Coracle.Core.Tests.Support;

namespace Coracle.Core.Tests.Join;

/// <summary>
/// A server and an agent in two network namespaces joined by a veth pair, each a real <c>coracle</c> process laid out
/// with the tiny test plugin set (tests/TestPlugins/Coracle.TestPlugins.Basic) so no containerd is needed.
/// </summary>
[Trait("Category", "Integration")]
public sealed class TwoNamespaceTests : IDisposable
{
    private readonly string _id = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(3));
    private readonly TempDir _dir = new();
    private readonly List<Process> _processes = [];
    private readonly string _serverNs;
    private readonly string _agentNs;
    private readonly string _serverIp;
    private readonly string _agentIp;
    private readonly string _image;

    public TwoNamespaceTests()
    {
        _serverNs = $"cor-s-{_id}";
        _agentNs = $"cor-a-{_id}";
        var subnet = System.Security.Cryptography.RandomNumberGenerator.GetInt32(1, 254);
        _serverIp = $"10.201.{subnet}.1";
        _agentIp = $"10.201.{subnet}.2";
        _image = LayOutImage(Path.Combine(_dir.Path, "image"));
    }

    private static string RepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Directory.Packages.props")))
        {
            dir = dir.Parent;
        }

        return dir!.FullName;
    }

    /// <summary>The coracle build output without its plugins, plus the Basic test plugin.</summary>
    private static string LayOutImage(string image)
    {
        var root = RepoRoot();
        var host = Path.Combine(root, "Core", "bin", BuildConfiguration, "net10.0");
        foreach (var file in Directory.GetFiles(host))
        {
            Directory.CreateDirectory(image);
            File.Copy(file, Path.Combine(image, Path.GetFileName(file)));
        }

        File.SetUnixFileMode(Path.Combine(image, "coracle"), File.GetUnixFileMode(Path.Combine(host, "coracle")));
        var plugin = Path.Combine(root, "tests", "TestPlugins", "Coracle.TestPlugins.Basic", "bin", BuildConfiguration, "net10.0");
        var target = Directory.CreateDirectory(Path.Combine(image, "plugins", "Coracle.TestPlugins.Basic")).FullName;
        foreach (var file in Directory.GetFiles(plugin))
        {
            File.Copy(file, Path.Combine(target, Path.GetFileName(file)));
        }

        return image;
    }

    private static void Ip(params string[] args)
    {
        var (code, stdout, stderr) = Run.Tool("ip", args);
        Assert.True(code == 0, $"ip {string.Join(' ', args)}: {stdout}{stderr}");
    }

    private void CreateNetwork()
    {
        Ip("netns", "add", _serverNs);
        Ip("netns", "add", _agentNs);
        Ip("link", "add", $"vs{_id}", "type", "veth", "peer", "name", $"va{_id}");
        Ip("link", "set", $"vs{_id}", "netns", _serverNs);
        Ip("link", "set", $"va{_id}", "netns", _agentNs);
        Ip("-n", _serverNs, "addr", "add", _serverIp + "/24", "dev", $"vs{_id}");
        Ip("-n", _agentNs, "addr", "add", _agentIp + "/24", "dev", $"va{_id}");
        foreach (var (ns, dev) in new[] { (_serverNs, $"vs{_id}"), (_agentNs, $"va{_id}") })
        {
            Ip("-n", ns, "link", "set", "lo", "up");
            Ip("-n", ns, "link", "set", dev, "up");
        }
    }

    private (Process Process, StringBuilder Output) Start(string ns, params string[] args)
    {
        var start = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { "netns", "exec", ns }.Concat(args))
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment.Remove("CORACLE_K8S_BIN");
        start.Environment["CORACLE_CONFIG_FILE"] = "";
        var output = new StringBuilder();
        var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => { lock (output) { output.AppendLine(e.Data); } };
        process.ErrorDataReceived += (_, e) => { lock (output) { output.AppendLine(e.Data); } };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _processes.Add(process);
        return (process, output);
    }

    private string[] NodeArgs(string role, string dataDir, string name, string ip) =>
    [
        Path.Combine(_image, "coracle"), role, "--data-dir", dataDir, "--node-name", name, "--node-ip", ip,
        "--components-dir", Path.Combine(_dir.Path, "no-k8s"), "--log-level", "debug",
    ];

    private (Process, StringBuilder) StartServer(string dataDir) =>
        Start(_serverNs, [.. NodeArgs("server", dataDir, "srv", _serverIp), "--write-kubeconfig", Path.Combine(dataDir, "admin.yaml")]);

    private static async Task WaitForAsync(Func<bool> condition, string what, StringBuilder log, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(60));
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"timed out waiting for {what}; output:\n{log}");
            }

            await Task.Delay(200);
        }
    }

    /// <summary>Sends CONNECT over the egress socket, then an HTTP GET through the stream; returns the status line and body.</summary>
    private static async Task<string> ThroughEgressAsync(string socketPath, string target, string path)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath));
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n"));
        var head = await ReadHeadAsync(stream);
        if (!head.StartsWith("HTTP/1.1 200", StringComparison.Ordinal))
        {
            using var rest = new MemoryStream();
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            try
            {
                await stream.CopyToAsync(rest, cts.Token);
            }
            catch (OperationCanceledException)
            {
            }

            return head.Split("\r\n")[0] + "|" + Encoding.UTF8.GetString(rest.ToArray()).Trim();
        }

        await stream.WriteAsync(Encoding.ASCII.GetBytes($"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n"));
        using var body = new MemoryStream();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        await stream.CopyToAsync(body, timeout.Token);
        return Encoding.UTF8.GetString(body.ToArray());
    }

    /// <summary>Like <see cref="ThroughEgressAsync"/>, but a socket not (yet) listening is an empty answer.</summary>
    private static string TryThroughEgress(string socketPath, string target, string path)
    {
        try
        {
            return ThroughEgressAsync(socketPath, target, path).GetAwaiter().GetResult();
        }
        catch (Exception ex) when (ex is SocketException or IOException)
        {
            return ex.Message;
        }
    }

    private static async Task<string> ReadHeadAsync(Stream stream)
    {
        var head = new List<byte>();
        var one = new byte[1];
        while (!(head.Count >= 4 && head[^1] == '\n' && head[^2] == '\r' && head[^3] == '\n' && head[^4] == '\r'))
        {
            if (await stream.ReadAsync(one) == 0)
            {
                break;
            }

            head.Add(one[0]);
        }

        return Encoding.ASCII.GetString(head.ToArray());
    }

    [Fact]
    public async Task AgentJoin_TwoNamespaces_CertificatesTokensTunnelAndReconnect()
    {
        CreateNetwork();
        var serverData = Path.Combine(_dir.Path, "server-data");
        var agentData = Path.Combine(_dir.Path, "agent-data");
        Directory.CreateDirectory(Path.Combine(_dir.Path, "no-k8s"));
        var (server, serverLog) = StartServer(serverData);
        var tokenFile = ServerToken.PathFor(serverData);
        var egress = Path.Combine(serverData, "server", "egress.sock");
        await WaitForAsync(() => File.Exists(tokenFile) && File.Exists(egress), "the server's token and egress socket", serverLog);
        var token = ServerToken.Read(tokenFile);
        var serverUrl = $"https://{_serverIp}:9345";

        // A wrong secret and a tampered CA hash are refused with one clear line each.
        var (wrong, wrongLog) = Start(_agentNs, [.. NodeArgs("agent", Path.Combine(_dir.Path, "wrong"), "bad", _agentIp), "--server", serverUrl, "--token", new ClusterToken(token.CaHash, "server:not-the-secret").ToString()]);
        var tamperedHash = (token.CaHash[0] == 'a' ? "b" : "a") + token.CaHash[1..];
        var (tampered, tamperedLog) = Start(_agentNs, [.. NodeArgs("agent", Path.Combine(_dir.Path, "tampered"), "bad", _agentIp), "--server", serverUrl, "--token", new ClusterToken(tamperedHash, token.Credential).ToString()]);
        Assert.True(wrong.WaitForExit(TimeSpan.FromSeconds(60)) && tampered.WaitForExit(TimeSpan.FromSeconds(60)), $"agents with bad tokens did not exit:\n{wrongLog}\n{tamperedLog}");
        wrong.WaitForExit();
        tampered.WaitForExit();
        Assert.Equal(1, wrong.ExitCode);
        Assert.Contains("coracle: error: the server rejected the token: invalid token\n", wrongLog.ToString(), StringComparison.Ordinal);
        Assert.Equal(1, tampered.ExitCode);
        Assert.Contains($"coracle: error: the server's CA does not match the token: {serverUrl}/cacerts hashes to {token.CaHash}, the token expects {tamperedHash}; check --server and --token\n", tamperedLog.ToString(), StringComparison.Ordinal);

        // The agent joins with the server token.
        var (_, agentLog) = Start(_agentNs, [.. NodeArgs("agent", agentData, "agt", _agentIp), "--server", serverUrl, "--token", token.ToString(), "--tunnel-allowed-ports", "10250,18080"]);
        var agentDir = Path.Combine(agentData, "agent");
        await WaitForAsync(() => File.Exists(Path.Combine(agentDir, "cluster.json")), "the agent to join", agentLog);

        var serverTls = ClusterCertificates.TlsDir(serverData);
        var serving = Path.Combine(agentDir, "serving-kubelet.crt");
        Assert.Equal($"{serving}: OK\n", Run.OpenSsl("verify", "-CAfile", Path.Combine(serverTls, "server-ca.crt"), "-purpose", "sslserver", serving));
        Assert.Equal(
            $"X509v3 Subject Alternative Name: \n    DNS:localhost, DNS:agt, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, IP Address:{_agentIp}\n",
            Run.OpenSsl("x509", "-noout", "-ext", "subjectAltName", "-in", serving));
        foreach (var (name, subject) in new[] { ("client-kubelet", "subject=O=system:nodes,CN=system:node:agt"), ("client-kube-proxy", "subject=CN=system:kube-proxy"), ("client-coracle-controller", "subject=CN=system:coracle-controller") })
        {
            var file = Path.Combine(agentDir, name + ".crt");
            Run.OpenSsl("verify", "-CAfile", Path.Combine(serverTls, "client-ca.crt"), "-purpose", "sslclient", file);
            Assert.Equal(subject, Run.OpenSsl("x509", "-noout", "-subject", "-nameopt", "RFC2253", "-in", file).Trim());
            var text = Run.OpenSsl("x509", "-noout", "-text", "-in", file);
            Assert.Contains("TLS Web Client Authentication", text, StringComparison.Ordinal);
            Assert.DoesNotContain("TLS Web Server Authentication", text, StringComparison.Ordinal);
            Assert.Contains("CA:FALSE", text, StringComparison.Ordinal);
        }

        Assert.Contains("Digital Signature", Run.OpenSsl("x509", "-noout", "-text", "-in", serving), StringComparison.Ordinal);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(agentDir, "client-kubelet.key")));
        Assert.Equal(File.ReadAllText(Path.Combine(serverTls, "server-ca.crt")), File.ReadAllText(Path.Combine(agentDir, "server-ca.crt")));

        // The agent made its node password (0600); another machine (data dir) claiming the name is refused with one line.
        // This server runs no kube-apiserver, so the name's hash is kept in its local file alone.
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(agentDir, "node-password")));
        var (impostor, impostorLog) = Start(_agentNs, [.. NodeArgs("agent", Path.Combine(_dir.Path, "impostor"), "agt", _agentIp), "--server", serverUrl, "--token", token.ToString()]);
        Assert.True(impostor.WaitForExit(TimeSpan.FromSeconds(60)), $"an agent claiming a taken name did not exit:\n{impostorLog}");
        impostor.WaitForExit();
        Assert.Equal(1, impostor.ExitCode);
        var passwords = Path.Combine(serverData, "server", "cred", "node-passwords.json");
        Assert.Contains($"coracle: error: the server refused this node: node name agt is taken: the node password stored for it in {passwords} differs from this agent's and "
            + "this server runs no kube-apiserver, so its local file is the only store; if agt is this machine reinstalled or a retired node, free the name by removing agt from that file "
            + "on the server and retry, otherwise give this agent another --node-name\n", impostorLog.ToString(), StringComparison.Ordinal);

        // An HTTP server bound to the agent's loopback is reached from the server through the tunnel.
        var www = Directory.CreateDirectory(Path.Combine(_dir.Path, "www")).FullName;
        File.WriteAllText(Path.Combine(www, "hello.txt"), "hello through the tunnel");
        var (_, httpLog) = Start(_agentNs, "python3", "-m", "http.server", "--bind", "127.0.0.1", "--directory", www, "18080");
        var target = $"{_agentIp}:18080";
        string reply = "";
        await WaitForAsync(() => (reply = TryThroughEgress(egress, target, "/hello.txt")).Contains("hello through the tunnel", StringComparison.Ordinal),
            "the tunnel to serve hello.txt", new StringBuilder().Append(serverLog).Append(agentLog).Append(httpLog).Append(reply));
        Assert.StartsWith("HTTP/1.0 200", reply, StringComparison.Ordinal);

        var refused = await ThroughEgressAsync(egress, $"{_agentIp}:22", "/");
        Assert.Equal("HTTP/1.1 502 Bad Gateway|node agt refused " + _agentIp + ":22: port 22 is not allowed by this agent (tunnel-allowed-ports: 10250,18080)", refused);
        var unknown = await ThroughEgressAsync(egress, "10.99.99.99:10250", "/");
        Assert.Equal("HTTP/1.1 502 Bad Gateway|no tunnel to 10.99.99.99: the node is not connected", unknown);

        // Kill the server; when it returns, the agent's tunnel reconnects.
        server.Kill(entireProcessTree: true);
        await server.WaitForExitAsync();
        await WaitForAsync(() => agentLog.ToString().Contains("waiting for server, reconnecting", StringComparison.Ordinal), "the agent to notice", agentLog);
        var (_, serverLog2) = StartServer(serverData);
        await WaitForAsync(() => (reply = TryThroughEgress(egress, target, "/hello.txt")).Contains("hello through the tunnel", StringComparison.Ordinal),
            "the tunnel to come back", new StringBuilder().Append(serverLog2).Append(agentLog).Append(reply));
        Assert.Contains("certificates in " + serverTls + ": 0 created, 0 renewed, 21 reused", serverLog2.ToString(), StringComparison.Ordinal);
    }

    public void Dispose()
    {
        foreach (var process in _processes)
        {
            try
            {
                if (!process.HasExited)
                {
                    process.Kill(entireProcessTree: true);
                    process.WaitForExit(5000);
                }
            }
            catch (InvalidOperationException)
            {
            }

            process.Dispose();
        }

        foreach (var ns in new[] { _serverNs, _agentNs })
        {
            var (_, pids, _) = Run.Tool("ip", "netns", "pids", ns);
            foreach (var pid in pids.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                Run.Tool("kill", "-9", pid.Trim());
            }

            Run.Tool("ip", "netns", "del", ns);
        }

        _dir.Dispose();
    }

    /// <summary>Debug or Release: whatever this test assembly was built as (the CI script builds Release).</summary>
    private static string BuildConfiguration => new DirectoryInfo(AppContext.BaseDirectory).Parent!.Name;
}
