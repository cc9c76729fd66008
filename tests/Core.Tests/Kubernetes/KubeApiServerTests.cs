using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Coracle.Core.Configuration;
using Coracle.Core.Identity;
using Coracle.Core.Kubernetes;
using Coracle.Core.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace Coracle.Core.Tests.Kubernetes;

/// <summary>Runs the real kube-apiserver (CORACLE_K8S_BIN) with Coracle's certificates and arguments against Debian's etcd.</summary>
[Trait("Category", "Integration")]
public sealed class KubeApiServerTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly List<Process> _processes = [];

    private (Process, StringBuilder) Start(string file, IEnumerable<string> args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

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

    [K8sFact(Binaries = ["kube-apiserver"])]
    public async Task KubeApiServer_CoracleCertificatesAndArgs_BecomesReadyAndAuthorizesTheAdmin()
    {
        var etcdPort = FreePorts.Next();
        var apiPort = FreePorts.Next();
        Start("etcd", ["--data-dir", Path.Combine(_dir.Path, "etcd"), "--listen-client-urls", $"http://127.0.0.1:{etcdPort}",
            "--advertise-client-urls", $"http://127.0.0.1:{etcdPort}", "--listen-peer-urls", $"http://127.0.0.1:{FreePorts.Next()}"]);
        var config = TestConfig.Server(_dir.Path, (Settings.HttpsListenPort, apiPort.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            (Settings.NodeIp, "127.0.0.1"), (Settings.KubeApiserverArg, "v=1"));
        var identity = ServerIdentity.Prepare(config, NullLogger.Instance);
        var paths = new KubernetesPaths
        {
            TlsDir = identity.Certificates.Directory,
            CredDir = ServerIdentity.CredDir(_dir.Path),
            DatastoreServers = [$"http://127.0.0.1:{etcdPort}"],
            AdvertiseAddress = "127.0.0.1",
        };
        var args = ComponentArgs.Merge(ComponentArgs.ApiServerDefaults(config, paths), config.KubeApiserverArgs);
        var (apiserver, log) = Start(Path.Combine(KubernetesBinaries.Folder!, "kube-apiserver"), args);

        using var handler = new SocketsHttpHandler { SslOptions = Coracle.Core.Join.AgentJoin.TrustOnly(File.ReadAllBytes(identity.Certificates.CertFile("server-ca"))) };
        handler.SslOptions.ClientCertificates = [System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPemFile(
            identity.Certificates.CertFile("client-admin"), identity.Certificates.KeyFile("client-admin"))];
        using var client = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(5) };
        var deadline = DateTime.UtcNow.AddSeconds(90);
        string readyz = "";
        while (DateTime.UtcNow < deadline && !apiserver.HasExited)
        {
            try
            {
                using var response = await client.GetAsync(new Uri($"https://127.0.0.1:{apiPort}/readyz"));
                readyz = await response.Content.ReadAsStringAsync();
                if (response.IsSuccessStatusCode)
                {
                    break;
                }
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException)
            {
            }

            await Task.Delay(500);
        }

        Assert.True(readyz == "ok", $"kube-apiserver did not become ready ({readyz}):\n{log}");
        var (code, stdout, stderr) = Run.Tool("kubectl", "--kubeconfig", config.WriteKubeconfig, "--server", $"https://127.0.0.1:{apiPort}", "auth", "can-i", "create", "namespaces");
        Assert.True(code == 0, stderr);
        Assert.Equal("yes\n", stdout);
    }

    public void Dispose()
    {
        foreach (var process in _processes)
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit(5000);
            }

            process.Dispose();
        }

        _dir.Dispose();
    }
}
