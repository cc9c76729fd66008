using System.ComponentModel;
using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json.Nodes;
using Coracle.Core.Update;
using Coracle.Core.Update.Fleet;
using Coracle.Node.Tests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Coracle.Node.Tests.Node;

/// <summary>
/// Fleet rollouts on a real two-node cluster (issue 18, "Done when"): <c>coracle server</c> and <c>coracle agent</c> in
/// network namespaces (<c>fleeth-</c>), each installed A/B in its own install root (the build output with every plugin
/// in <c>slots/a</c> as version 1.0.0, the boot guard in <c>update/</c>) and run by <see cref="Unit"/>, which plays
/// systemd: the drop-in's boot guard, then <c>R/current/coracle</c>, started again whenever it exits (Restart=always).
/// Bundles are served over HTTPS from the test host. An <c>ApplianceUpdate</c> to 2.0.0 goes through both nodes one at a
/// time; then one to 3.0.0, whose coracle exits at start, stops after the first node, which the boot guard rolled back
/// to 2.0.0, with the reason in the status, and the other node never starts.
/// </summary>
[Trait("Category", "Integration")]
[Collection(RealClusterCollection.Name)]
public sealed class FleetRolloutTests : IDisposable
{
    private readonly string _id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3));
    private readonly string _root = Directory.CreateTempSubdirectory("coracle-fleet-").FullName;
    private readonly string _serverNetns;
    private readonly string _agentNetns;
    private readonly List<Unit> _units = [];
    private NodeHarness? _server;
    private NodeHarness? _agent;
    private WebApplication? _bundles;

    public FleetRolloutTests()
    {
        _serverNetns = "fleeth-s" + _id[..4];
        _agentNetns = "fleeth-a" + _id[..4];
    }

    [K8sFact(NeedsRoot = true)]
    public async Task Rollout_ServerAndAgent_OneAtATimeThenAFailingBundleHaltsAfterTheFirstNode()
    {
        var subnet = NodeHarness.FreeSubnet();
        var hostIp = $"10.207.{subnet}.1";
        NodeHarness.CreateNetns(_serverNetns, hostIp, $"10.207.{subnet}.2");
        var serverIp = $"10.208.{subnet}.1";
        var agentIp = $"10.208.{subnet}.2";
        NodeHarness.CreateLan(_serverNetns, _agentNetns, "fs-" + _id, "fa-" + _id, serverIp, agentIp);
        Run.Ok("ip", "route", "add", $"10.208.{subnet}.0/24", "via", $"10.207.{subnet}.2"); // the agent's downloads come back through the server's namespace

        var pki = Pki(Path.Combine(_root, "pki"), hostIp);
        var image = NodeHarness.LayOutImage(_root);
        var server = _server = new NodeHarness(_root, image, "srv-" + _id, _serverNetns, serverIp);
        var agent = _agent = new NodeHarness(_root, image, "agt-" + _id, _agentNetns, agentIp);
        var serverUnit = Install(server, image, pki.Ca);
        var agentUnit = Install(agent, image, pki.Ca);
        var port = await ServeAsync(pki, hostIp);
        var v2 = Bundle(pki, "v2", "2.0.0", ImageFiles(image, "2.0.0"));
        var v3 = Bundle(pki, "v3", "3.0.0",
        [
            Text("coracle", "#!/bin/sh\necho 'v3: failing at start' >&2\nexit 1\n", (UnixFileMode)0x1ED),
            Text("image.json", ImageJson("3.0.0"), (UnixFileMode)0x1A4),
        ]);

        // 1. Both nodes come up from slot a (1.0.0) and are Ready.
        serverUnit.Start(["server", "--node-name", server.Name, "--node-ip", serverIp, "--write-kubeconfig", Path.Combine(server.DataDir, "admin.yaml"),
            "--disable", "traefik,servicelb,coredns,local-storage,metrics-server", "--kubelet-arg", $"root-dir={server.DataDir}/agent/kubelet", "--pod-logs-dir", $"{server.DataDir}/pod-logs"]);
        await WaitAsync(() => server.NodeReady(server.Name), $"node {server.Name} Ready", TimeSpan.FromMinutes(3));
        var token = File.ReadAllText(Path.Combine(server.DataDir, "server", "token")).Trim();
        agentUnit.Start(["agent", "--server", $"https://{serverIp}:9345", "--token", token, "--node-name", agent.Name, "--node-ip", agentIp,
            "--kubelet-arg", $"root-dir={agent.DataDir}/agent/kubelet", "--pod-logs-dir", $"{agent.DataDir}/pod-logs"]);
        await WaitAsync(() => server.NodeReady(agent.Name), $"node {agent.Name} Ready", TimeSpan.FromMinutes(3));
        await WaitAsync(() => server.TryKubectl("get", "applianceupdates").ExitCode == 0, "the ApplianceUpdate CRD served");

        // 2. 2.0.0: one node at a time (never two lines holding a place), both succeed, both run 2.0.0 from slot b.
        server.Apply(Rollout("to-v2", $"https://{hostIp}:{port}/v2.cub", v2, pki.CaPem, "2.0.0"));
        var mostHolding = 0;
        await WaitAsync(() =>
        {
            var nodes = Lines(server, "to-v2");
            mostHolding = Math.Max(mostHolding, nodes.Count(n => NodeStates.Holds(n.State)));
            return Phase(server, "to-v2") is NodeStates.PhaseSucceeded or NodeStates.PhaseFailed;
        }, () => $"rollout to-v2 finished: {server.TryKubectl("get", "applianceupdate", "to-v2", "-o", "yaml").Output}", TimeSpan.FromMinutes(12));
        var lines = Lines(server, "to-v2");
        Assert.True(Phase(server, "to-v2") == NodeStates.PhaseSucceeded, server.TryKubectl("get", "applianceupdate", "to-v2", "-o", "yaml").Output + Tails());
        Assert.Equal(1, mostHolding);
        Assert.Equal([(agent.Name, NodeStates.Succeeded, "1.0.0", "2.0.0"), (server.Name, NodeStates.Succeeded, "1.0.0", "2.0.0")],
            lines.Select(l => (l.Name, l.State, l.FromVersion, l.Version)).ToList());
        foreach (var (node, unit) in new[] { (server, serverUnit), (agent, agentUnit) })
        {
            Assert.Equal(("b", "2.0.0", "b", ""), (unit.Layout.ActiveSlot(), unit.Layout.Image("b")?.Version, UpdateState.Read(unit.Layout.StateFile)?.Good, UpdateState.Read(unit.Layout.StateFile)?.Trial));
            Assert.True(server.NodeReady(node.Name));
            Assert.Equal("", server.Jsonpath("node", node.Name, "{.spec.unschedulable}"));
            Assert.Contains($"fleet: ApplianceUpdate to-v2: node {node.Name} Restarting", unit.Log, StringComparison.Ordinal);
        }

        // 3. 3.0.0 exits at start: the first node tries it three times, the boot guard rolls it back to 2.0.0, it records
        //    why and the rollout halts; the other node never starts.
        server.Apply(Rollout("to-v3", $"https://{hostIp}:{port}/v3.cub", v3, pki.CaPem, ""));
        await WaitAsync(() => Phase(server, "to-v3") is NodeStates.PhaseFailed or NodeStates.PhaseSucceeded,
            () => $"rollout to-v3 halted: {server.TryKubectl("get", "applianceupdate", "to-v3", "-o", "yaml").Output}", TimeSpan.FromMinutes(12));
        var failed = Assert.Single(Lines(server, "to-v3"));
        var (first, firstUnit, other, otherUnit) = failed.Name == server.Name ? (server, serverUnit, agent, agentUnit) : (agent, agentUnit, server, serverUnit);
        var why = $"node {first.Name} came back on version 2.0.0, not 3.0.0 (rolled-back: slot a did not become healthy in 3 trial starts (each within 240 s); rolled back to slot b); uncordoned";
        Assert.Equal((NodeStates.Failed, why), (failed.State, failed.Message));
        Assert.Equal($"node {first.Name}: {why}", server.Jsonpath("applianceupdate", "to-v3", "{.status.reason}"));
        Assert.Equal("True", server.Jsonpath("applianceupdate", "to-v3", "{.status.conditions[?(@.type==\"Halted\")].status}"));
        Assert.Contains("v3: failing at start", firstUnit.Log, StringComparison.Ordinal);
        Assert.Equal(("b", "2.0.0"), (firstUnit.Layout.ActiveSlot(), firstUnit.Layout.Image("b")?.Version));
        Assert.Equal(("b", null), (otherUnit.Layout.ActiveSlot(), UpdateState.Read(otherUnit.Layout.StateFile)?.Trial is { Length: > 0 } t ? t : null));
        Assert.DoesNotContain("ApplianceUpdate to-v3: node", otherUnit.Log, StringComparison.Ordinal);
        await WaitAsync(() => server.NodeReady(first.Name) && server.NodeReady(other.Name), "both nodes Ready after the rollback");
        Assert.Equal("", server.Jsonpath("node", first.Name, "{.spec.unschedulable}"));
    }

    /// <summary>The node's install root: the image with image.json 1.0.0 in slots/a, current -> slots/a, the boot guard.</summary>
    private Unit Install(NodeHarness node, string image, string caFile)
    {
        var root = Path.Combine(_root, "install-" + node.Name);
        foreach (var (path, open, mode) in ImageFiles(image, "1.0.0"))
        {
            var target = Path.Combine(root, "slots", "a", path);
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            using (var source = open())
            using (var file = File.Create(target))
            {
                source.CopyTo(file);
            }

            File.SetUnixFileMode(target, mode);
        }

        Directory.CreateDirectory(Path.Combine(root, "slots", "b"));
        File.CreateSymbolicLink(Path.Combine(root, "current"), "slots/a");
        Directory.CreateDirectory(Path.Combine(root, "update"));
        var guard = Path.Combine(root, "update", "boot-guard");
        File.Copy(Path.Combine(RepoRoot, "packaging", "update", "boot-guard"), guard);
        File.SetUnixFileMode(guard, (UnixFileMode)0x1ED);
        var unit = new Unit(root, node, new Dictionary<string, string>
        {
            ["CORACLE_UPDATE_CA"] = caFile,
            ["CORACLE_UPDATE_TRIAL_DEADLINE"] = "240s",
        });
        _units.Add(unit);
        return unit;
    }

    private static string ImageJson(string version) => $"{{\"profile\":\"test\",\"rid\":\"linux-x64\",\"version\":\"{version}\",\"plugins\":[]}}";

    /// <summary>Every file of the laid-out image (host and plugins) with image.json of <paramref name="version"/>.</summary>
    private static List<(string Path, Func<Stream> Open, UnixFileMode Mode)> ImageFiles(string image, string version)
    {
        var files = Directory.GetFiles(image, "*", SearchOption.AllDirectories).Where(f => Path.GetFileName(f) != "image.json")
            .Select(f => (Path.GetRelativePath(image, f), (Func<Stream>)(() => File.OpenRead(f)), File.GetUnixFileMode(f))).ToList();
        files.Add(Text("image.json", ImageJson(version), (UnixFileMode)0x1A4));
        return files;
    }

    private static (string Path, Func<Stream> Open, UnixFileMode Mode) Text(string path, string content, UnixFileMode mode) =>
        (path, () => new MemoryStream(Encoding.UTF8.GetBytes(content)), mode);

    /// <summary>An image tarball of <paramref name="files"/> made into a bundle signed by the vendor; returns its SHA-256.</summary>
    private string Bundle((string Ca, string CaPem, string VendorCert, string VendorKey, string ServerCert, string ServerKey) pki, string name, string version,
        List<(string Path, Func<Stream> Open, UnixFileMode Mode)> files)
    {
        var tarball = Path.Combine(_root, name + ".tar.gz");
        using (var stream = File.Create(tarball))
        using (var gzip = new GZipStream(stream, CompressionLevel.Fastest))
        using (var tar = new TarWriter(gzip, TarEntryFormat.Pax))
        {
            var dirs = new HashSet<string>(StringComparer.Ordinal);
            foreach (var dir in new[] { "usr/", "usr/lib/", "usr/lib/coracle/" })
            {
                tar.WriteEntry(new PaxTarEntry(TarEntryType.Directory, dir) { Mode = (UnixFileMode)0x1ED });
            }

            foreach (var (path, open, mode) in files)
            {
                var parts = path.Split('/');
                for (var i = 1; i < parts.Length; i++)
                {
                    var dir = string.Join('/', parts[..i]);
                    if (dirs.Add(dir))
                    {
                        tar.WriteEntry(new PaxTarEntry(TarEntryType.Directory, $"usr/lib/coracle/{dir}/") { Mode = (UnixFileMode)0x1ED });
                    }
                }

                using var content = open();
                tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "usr/lib/coracle/" + path) { Mode = mode, DataStream = content });
            }
        }

        var bundle = Path.Combine(_root, "www", name + ".cub");
        Directory.CreateDirectory(Path.GetDirectoryName(bundle)!);
        BundleFile.Build(tarball, pki.VendorKey, pki.VendorCert, version, "", bundle);
        File.Delete(tarball);
        using var read = File.OpenRead(bundle);
        return Convert.ToHexStringLower(SHA256.HashData(read));
    }

    private static string Rollout(string name, string url, string sha, string caPem, string version) =>
        new JsonObject
        {
            ["apiVersion"] = ApplianceUpdateResource.ApiVersion,
            ["kind"] = ApplianceUpdateResource.Kind,
            ["metadata"] = new JsonObject { ["name"] = name },
            ["spec"] = new JsonObject { ["bundleURL"] = url, ["sha256"] = sha, ["version"] = version, ["maxUnavailable"] = 1, ["downloadCA"] = caPem },
        }.ToJsonString();

    private static string Phase(NodeHarness server, string name) => server.Jsonpath("applianceupdate", name, "{.status.phase}");

    private static IReadOnlyList<NodeUpdateStatus> Lines(NodeHarness server, string name) =>
        server.TryKubectl("get", "applianceupdate", name, "-o", "json") is (0, var json) ? ApplianceUpdateResource.Nodes(JsonNode.Parse(json)) : [];

    /// <summary>HTTPS on the test host's end of the server's veth, serving <c>_root/www</c>.</summary>
    private async Task<int> ServeAsync((string Ca, string CaPem, string VendorCert, string VendorKey, string ServerCert, string ServerKey) pki, string hostIp)
    {
        int port;
        using (var probe = new System.Net.Sockets.TcpListener(IPAddress.Parse(hostIp), 0))
        {
            probe.Start();
            port = ((IPEndPoint)probe.LocalEndpoint).Port;
        }

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        var cert = X509Certificate2.CreateFromPemFile(pki.ServerCert, pki.ServerKey);
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Parse(hostIp), port, l => l.UseHttps(X509CertificateLoader.LoadPkcs12(cert.Export(X509ContentType.Pkcs12), null))));
        var app = _bundles = builder.Build();
        var www = Path.Combine(_root, "www");
        app.Run(async context =>
        {
            var file = Path.Combine(www, Path.GetFileName(context.Request.Path.Value ?? ""));
            if (!File.Exists(file))
            {
                context.Response.StatusCode = 404;
                return;
            }

            context.Response.ContentLength = new FileInfo(file).Length;
            await context.Response.SendFileAsync(file);
        });
        await app.StartAsync();
        return port;
    }

    /// <summary>The update CA, a vendor certificate under it (code signing), and the bundle server's certificate (its IP).</summary>
    private static (string Ca, string CaPem, string VendorCert, string VendorKey, string ServerCert, string ServerKey) Pki(string dir, string serverIp)
    {
        Directory.CreateDirectory(dir);
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=Fleet Test Update CA", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        caRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(caRequest.PublicKey, false));
        using var ca = caRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        File.WriteAllText(Path.Combine(dir, "ca.pem"), ca.ExportCertificatePem());

        (string, string) Leaf(string name, string cn, X509Extension usage, X509Extension? san)
        {
            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var request = new CertificateRequest("CN=" + cn, key, HashAlgorithmName.SHA256);
            request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
            request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
            request.CertificateExtensions.Add(usage);
            if (san is not null)
            {
                request.CertificateExtensions.Add(san);
            }

            using var cert = request.Create(ca, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(20), RandomNumberGenerator.GetBytes(8));
            var (certFile, keyFile) = (Path.Combine(dir, name + ".pem"), Path.Combine(dir, name + ".key"));
            File.WriteAllText(certFile, cert.ExportCertificatePem());
            File.WriteAllText(keyFile, key.ExportPkcs8PrivateKeyPem());
            return (certFile, keyFile);
        }

        var (vendorCert, vendorKey) = Leaf("vendor", "Fleet Test Vendor", new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.3")], false), null);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Parse(serverIp));
        var (serverCert, serverKey) = Leaf("server", serverIp, new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false), san.Build());
        return (Path.Combine(dir, "ca.pem"), ca.ExportCertificatePem(), vendorCert, vendorKey, serverCert, serverKey);
    }

    private static string RepoRoot
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Directory.Packages.props")))
            {
                dir = dir.Parent;
            }

            return dir!.FullName;
        }
    }

    private string Tails() => string.Join('\n', _units.Select(u => $"--- {u.Node.Name}:\n{string.Join('\n', u.Log.Split('\n').TakeLast(60))}"));

    private Task WaitAsync(Func<bool> condition, string what, TimeSpan? timeout = null) => WaitAsync(condition, () => what, timeout);

    private async Task WaitAsync(Func<bool> condition, Func<string> what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromMinutes(2));
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"timed out waiting for {what()}\n{Tails()}");
            }

            await Task.Delay(1000);
        }
    }

    public void Dispose()
    {
        foreach (var unit in Enumerable.Reverse(_units))
        {
            unit.Dispose();
        }

        _bundles?.StopAsync().GetAwaiter().GetResult();
        _bundles?.DisposeAsync().AsTask().GetAwaiter().GetResult();
        foreach (var node in new[] { _agent, _server })
        {
            node?.Coracle("killall", "--data-dir", node.DataDir);
        }

        NodeHarness.TearDown([], [], [_agentNetns, _serverNetns], _root);
    }

    /// <summary>
    /// Plays systemd for one node: the drop-in's ExecStartPre (the boot guard on this install root), then
    /// <c>R/current/coracle ARGS</c> in the node's namespace; whenever it exits, or cannot be executed, the next round
    /// starts after a short pause, as Restart=always does, until disposed.
    /// </summary>
    private sealed class Unit(string root, NodeHarness node, IReadOnlyDictionary<string, string> env) : IDisposable
    {
        private readonly StringBuilder _log = new();
        private Task? _loop;
        private volatile bool _stopping;
        private int _pid;

        public NodeHarness Node => node;

        public InstallLayout Layout { get; } = new(root);

        public string Log
        {
            get
            {
                lock (_log)
                {
                    return _log.ToString();
                }
            }
        }

        public void Start(string[] args) => _loop = Task.Run(() => LoopAsync(args));

        private async Task LoopAsync(string[] args)
        {
            for (var round = 1; !_stopping; round++)
            {
                var guard = Run.Tool(Path.Combine(root, "update", "boot-guard"), [root]);
                Append($"unit round {round}: boot guard exited {guard.ExitCode}: {guard.Stderr.Trim()}");
                var start = new ProcessStartInfo("nsenter") { RedirectStandardOutput = true, RedirectStandardError = true };
                foreach (var arg in new[] { $"--net=/run/netns/{node.Netns}", Path.Combine(root, "current", "coracle") }.Concat(args))
                {
                    start.ArgumentList.Add(arg);
                }

                start.Environment["CORACLE_CONFIG_FILE"] = node.ConfigFile;
                start.Environment["CORACLE_DATA_DIR"] = node.DataDir;
                start.Environment["CORACLE_K8S_BIN"] = KubernetesBinaries.Folder ?? "";
                foreach (var (key, value) in env)
                {
                    start.Environment[key] = value;
                }

                try
                {
                    using var process = new Process { StartInfo = start };
                    process.OutputDataReceived += (_, e) => Append(e.Data);
                    process.ErrorDataReceived += (_, e) => Append(e.Data);
                    process.Start();
                    _pid = process.Id;
                    process.BeginOutputReadLine();
                    process.BeginErrorReadLine();
                    await process.WaitForExitAsync(CancellationToken.None);
                    _pid = 0;
                    Append($"unit round {round}: coracle exited {process.ExitCode}");
                }
                catch (Win32Exception ex)
                {
                    Append($"unit round {round}: cannot start: {ex.Message}");
                }

                await Task.Delay(500);
            }
        }

        private void Append(string? line)
        {
            if (line is not null)
            {
                lock (_log)
                {
                    _log.AppendLine(line);
                }
            }
        }

        /// <summary>As systemctl stop: no further round; SIGTERM to the running coracle, SIGKILL after 90 s.</summary>
        public void Dispose()
        {
            _stopping = true;
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
            if (_pid is var pid and > 0)
            {
                Coracle.Core.Supervision.Native.Kill(pid, Coracle.Core.Supervision.Native.SigTerm);
                while (Coracle.Core.Supervision.Native.IsAlive(pid) && DateTime.UtcNow < deadline)
                {
                    Thread.Sleep(200);
                }

                if (Coracle.Core.Supervision.Native.IsAlive(pid))
                {
                    Coracle.Core.Supervision.Native.Kill(pid, 9);
                }
            }

            _loop?.Wait(TimeSpan.FromSeconds(30));
        }
    }
}
