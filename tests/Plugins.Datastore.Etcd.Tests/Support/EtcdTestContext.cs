using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Coracle.Core.Hosting;
using Coracle.Core.Identity;
using Coracle.Plugins;
using Microsoft.Extensions.Logging;

namespace Coracle.Plugins.Datastore.Etcd.Tests.Support;

/// <summary>Node settings, the cluster's real etcd certificate layout (Core's <see cref="ClusterCertificates"/>) and a plugin context, for one member.</summary>
internal static class EtcdTest
{
    public static NodeSettings Node(string root, string name, string? ip = null, IReadOnlyDictionary<string, string>? join = null, string endpoint = "") => new()
    {
        Role = "server",
        NodeName = name,
        NodeIps = ip is null ? [] : [ip],
        DataDir = Path.Combine(root, "data"),
        RunDir = Path.Combine(root, "run"),
        ComponentsDir = Path.Combine(root, "components"),
        Architecture = "x64",
        ClusterCidr = "10.42.0.0/16",
        ServiceCidr = "10.43.0.0/16",
        ClusterDns = "10.43.0.10",
        ClusterDomain = "cluster.local",
        PauseImage = "pause",
        DatastoreEndpoint = endpoint,
        DatastoreJoin = join ?? new Dictionary<string, string>(),
    };

    /// <summary>
    /// The etcd part of the server's certificate layout in <c>DATA/server/tls</c>: both etcd CAs (copied from
    /// <paramref name="casFrom"/> when given, so members share them), the datastore serving certificate, the
    /// datastore-client certificate and the etcd-peer certificate for <paramref name="ip"/>.
    /// </summary>
    public static NodeCertificates Certificates(NodeSettings node, string? casFrom = null)
    {
        var dir = ClusterCertificates.TlsDir(node.DataDir);
        Directory.CreateDirectory(dir);
        if (casFrom is not null)
        {
            foreach (var ca in new[] { ClusterCertificates.EtcdServerCa, ClusterCertificates.EtcdPeerCa })
            {
                File.Copy(Path.Combine(casFrom, ca + ".crt"), Path.Combine(dir, ca + ".crt"), overwrite: true);
                File.Copy(Path.Combine(casFrom, ca + ".key"), Path.Combine(dir, ca + ".key"), overwrite: true);
            }
        }

        IPAddress[] ips = [IPAddress.Loopback, .. node.NodeIps.Select(IPAddress.Parse)];
        var subject = new CertSubject("coracle-datastore", [], ["localhost", node.NodeName], ips.Distinct().ToList());
        CertSpec[] specs =
        [
            new(ClusterCertificates.EtcdServerCa, "", CertSubject.Named("coracle-etcd-server-ca"), CertUsage.Ca, "etcd server CA"),
            new(ClusterCertificates.EtcdPeerCa, "", CertSubject.Named("coracle-etcd-peer-ca"), CertUsage.Ca, "etcd peer CA"),
            new("datastore", ClusterCertificates.EtcdServerCa, subject, CertUsage.ServerAndClient, "datastore"),
            new("datastore-client", ClusterCertificates.EtcdServerCa, CertSubject.Named("system:apiserver-etcd-client"), CertUsage.Client, "client"),
            new("etcd-peer", ClusterCertificates.EtcdPeerCa, subject with { CommonName = "coracle-etcd-peer" }, CertUsage.ServerAndClient, "peer"),
        ];
        _ = new ClusterCertificates(dir, specs, TimeSpan.FromDays(30), TimeSpan.FromDays(300)).Ensure();
        return new NodeCertificates(dir);
    }

    public static Dictionary<string, string> Ports(int client) => new()
    {
        ["client-port"] = client.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["peer-port"] = FreePorts.Next().ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["metrics-port"] = FreePorts.Next().ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    public static PluginContext Context(NodeSettings node, IReadOnlyDictionary<string, string> options, INodeCertificates certificates, ISupervisor supervisor, ILoggerFactory logs) =>
        new(node, options, FileUtil.PrivateDirectory(Path.Combine(node.DataDir, "plugins", "etcd")),
            PluginFolderAttribute.Resolve(typeof(EtcdPlugin), node.DataDir).ToDictionary(f => f.Key, f => FileUtil.PrivateDirectory(f.Value)),
            logs.CreateLogger("etcd-plugin"), logs, supervisor, new ManifestSink(Path.Combine(node.DataDir, "server", "manifests")), certificates);

    /// <summary>Runs etcdctl (v3) and returns exit code and output.</summary>
    public static (int Exit, string Output) Etcdctl(params string[] args)
    {
        var start = new ProcessStartInfo("/usr/bin/etcdctl") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        start.Environment["ETCDCTL_API"] = "3";
        using var p = Process.Start(start)!;
        var err = p.StandardError.ReadToEndAsync();
        var output = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(TimeSpan.FromSeconds(60)))
        {
            p.Kill(true);
        }

        return (p.ExitCode, output + err.Result);
    }

    public static string[] Tls(TlsFiles tls) => ["--cacert=" + tls.CaFile, "--cert=" + tls.CertFile, "--key=" + tls.KeyFile, "--command-timeout=10s", "--dial-timeout=5s"];

    /// <summary>Polls <paramref name="check"/> until true; fails with <paramref name="what"/> after <paramref name="seconds"/>.</summary>
    public static async Task UntilAsync(Func<Task<bool>> check, string what, int seconds = 60)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (true)
        {
            try
            {
                if (await check())
                {
                    return;
                }
            }
            catch (Exception) when (DateTime.UtcNow < deadline)
            {
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"waited {seconds}s for {what}");
            }

            await Task.Delay(250);
        }
    }
}
