using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Coracle.Core.Addons;
using Coracle.Core.Configuration;
using Coracle.Core.Identity;
using Coracle.Core.Kubernetes;
using Microsoft.Extensions.Logging.Abstractions;

namespace Coracle.Core.Tests.Support;

/// <summary>
/// Debian's etcd and the real kube-apiserver (CORACLE_K8S_BIN) with Coracle's certificates and arguments, started once
/// for a test class, as <c>Kubernetes/KubeApiServerTests.cs</c> runs them. Nothing starts when the binary is missing
/// (the class's <see cref="K8sFactAttribute"/> tests are skipped then).
/// </summary>
public sealed class ApiServerFixture : IAsyncLifetime, IDisposable
{
    private readonly TempDir _dir = new("kas");
    private readonly List<Process> _processes = [];
    private readonly StringBuilder _output = new();

    public string? WhyNot { get; } = KubernetesBinaries.WhyNot(["kube-apiserver"]);

    internal Uri Server { get; private set; } = new("https://127.0.0.1:1");

    internal string CaFile { get; private set; } = "";

    internal string CertFile { get; private set; } = "";

    internal string KeyFile { get; private set; } = "";

    /// <summary>The admin kubeconfig (its server must be overridden with <c>--server</c> <see cref="Server"/>).</summary>
    internal string Kubeconfig { get; private set; } = "";

    /// <summary>etcd's and kube-apiserver's output so far.</summary>
    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    internal KubeApi Api() => new(Server, CaFile, CertFile, KeyFile, TimeSpan.FromSeconds(15));

    public async Task InitializeAsync()
    {
        if (WhyNot is not null)
        {
            return;
        }

        var etcdPort = FreePort();
        var apiPort = FreePort();
        Start("etcd", ["--data-dir", Path.Combine(_dir.Path, "etcd"), "--listen-client-urls", $"http://127.0.0.1:{etcdPort}",
            "--advertise-client-urls", $"http://127.0.0.1:{etcdPort}", "--listen-peer-urls", $"http://127.0.0.1:{FreePort()}"]);
        var config = TestConfig.Server(_dir.Path, (Settings.HttpsListenPort, apiPort.ToString(CultureInfo.InvariantCulture)), (Settings.NodeIp, "127.0.0.1"));
        var identity = ServerIdentity.Prepare(config, NullLogger.Instance);
        var paths = new KubernetesPaths
        {
            TlsDir = identity.Certificates.Directory,
            CredDir = ServerIdentity.CredDir(_dir.Path),
            DatastoreServers = [$"http://127.0.0.1:{etcdPort}"],
            AdvertiseAddress = "127.0.0.1",
        };
        var apiserver = Start(Path.Combine(KubernetesBinaries.Folder!, "kube-apiserver"), ComponentArgs.Merge(ComponentArgs.ApiServerDefaults(config, paths), config.KubeApiserverArgs));
        Server = new Uri($"https://127.0.0.1:{apiPort}");
        CaFile = identity.Certificates.CertFile("server-ca");
        CertFile = identity.Certificates.CertFile("client-admin");
        KeyFile = identity.Certificates.KeyFile("client-admin");
        Kubeconfig = config.WriteKubeconfig;

        using var api = Api();
        var deadline = DateTime.UtcNow.AddSeconds(120);
        while (true)
        {
            try
            {
                // Ready, and the namespaces kube-apiserver creates itself (default, kube-system) exist.
                if ((await api.GetAsync("/readyz", CancellationToken.None)).IsSuccess
                    && (await api.GetAsync("/api/v1/namespaces/kube-system", CancellationToken.None)).IsSuccess)
                {
                    return;
                }
            }
            catch (KubeApiUnavailableException)
            {
            }

            if (DateTime.UtcNow > deadline || apiserver.HasExited)
            {
                throw new InvalidOperationException($"kube-apiserver did not become ready:\n{Output}");
            }

            await Task.Delay(500);
        }
    }

    public Task DisposeAsync() => Task.CompletedTask;

    public void Dispose()
    {
        foreach (var process in Enumerable.Reverse(_processes))
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

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private Process Start(string file, IEnumerable<string> args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _processes.Add(process);
        return process;
    }

    private void Append(string? line)
    {
        lock (_output)
        {
            _output.AppendLine(line);
        }
    }
}
