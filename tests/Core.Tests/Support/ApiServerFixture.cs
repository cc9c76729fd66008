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
    private readonly ChildProcesses _children = new();

    public string? WhyNot { get; } = KubernetesBinaries.WhyNot(["kube-apiserver"]);

    internal Uri Server { get; private set; } = new("https://127.0.0.1:1");

    internal string CaFile { get; private set; } = "";

    internal string CertFile { get; private set; } = "";

    internal string KeyFile { get; private set; } = "";

    /// <summary>The admin kubeconfig (its server must be overridden with <c>--server</c> <see cref="Server"/>).</summary>
    internal string Kubeconfig { get; private set; } = "";

    /// <summary>etcd's and kube-apiserver's output so far.</summary>
    public string Output => _children.Output;

    internal KubeApi Api() => new(Server, CaFile, CertFile, KeyFile, TimeSpan.FromSeconds(15));

    public async Task InitializeAsync()
    {
        if (WhyNot is not null)
        {
            return;
        }

        var etcdPort = FreePorts.Next();
        var apiPort = FreePorts.Next();
        Start("etcd", ["--data-dir", Path.Combine(_dir.Path, "etcd"), "--listen-client-urls", $"http://127.0.0.1:{etcdPort}",
            "--advertise-client-urls", $"http://127.0.0.1:{etcdPort}", "--listen-peer-urls", $"http://127.0.0.1:{FreePorts.Next()}"]);
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

        // Ready, and the namespaces kube-apiserver creates itself (default, kube-system) exist.
        using var api = Api();
        await _children.WaitForApiServerAsync(api, apiserver, "/api/v1/namespaces/kube-system");
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

    private Process Start(string file, IEnumerable<string> args)
    {
        var process = _children.Start(file, args);
        _processes.Add(process);
        return process;
    }
}
