using Coracle.Core.Configuration;
using Coracle.Core.Hosting;
using Coracle.Core.Logging;
using Microsoft.Extensions.Logging;

namespace Coracle.Core.Identity;

/// <summary>The server's identity after start-up: its certificates and its token.</summary>
internal sealed record ServerIdentity(ClusterCertificates Certificates, ClusterToken Token)
{
    public static string CredDir(string dataDir) => Path.Combine(dataDir, "server", "cred");

    /// <summary>The kubeconfigs <c>coracle server</c> writes: file name, client certificate, user.</summary>
    public static IReadOnlyList<(string File, string Cert, string User)> ComponentKubeconfigs { get; } =
    [
        ("admin.kubeconfig", "client-admin", "system:admin"),
        ("controller.kubeconfig", "client-controller", "system:kube-controller-manager"),
        ("scheduler.kubeconfig", "client-scheduler", "system:kube-scheduler"),
        ("kubeproxy.kubeconfig", "client-kube-proxy", "system:kube-proxy"),
        ("kubelet.kubeconfig", "client-kubelet", "system:node"),
        (ControllerKubeconfigFile, "client-coracle-controller", Kubernetes.ClusterRbac.ControllerUser),
    ];

    /// <summary>The kubeconfig of the node's in-process controllers, in <c>server/cred</c> or <c>agent/</c>.</summary>
    public const string ControllerKubeconfigFile = "coracle-controller.kubeconfig";

    /// <summary>Certificates (create, reuse, renew), the server token, then the admin and component kubeconfigs.</summary>
    public static ServerIdentity Prepare(CoracleConfig config, ILogger log, TimeProvider? time = null)
    {
        var (certs, outcomes) = EnsureCertificates(config, log, time);
        log.CertificatesReady(certs.Directory, outcomes.Count(o => o.Action == "created"), outcomes.Count(o => o.Action.StartsWith("renewed", StringComparison.Ordinal)), outcomes.Count(o => o.Action == "reused"));

        var token = ServerToken.Ensure(config.DataDir, certs.CertFile(ClusterCertificates.ServerCa), config.Token);
        log.TokenReady(ServerToken.PathFor(config.DataDir));

        WriteKubeconfigs(config, certs, log);
        return new ServerIdentity(certs, token);
    }

    /// <summary>
    /// While the server runs: renews the leaves that are due (the same rule as at start) and, when any was renewed,
    /// rewrites the kubeconfigs, which name or embed them; returns the names renewed. The CAs are never renewed here
    /// (<c>coracle certificate rotate-ca</c>).
    /// </summary>
    public static IReadOnlyList<string> RenewDue(CoracleConfig config, ILogger log, TimeProvider? time = null)
    {
        var (certs, outcomes) = EnsureCertificates(config, log, time);
        var renewed = outcomes.Where(o => o.Action != "reused").Select(o => o.Name).ToList();
        if (renewed.Count > 0)
        {
            WriteKubeconfigs(config, certs, log);
        }

        return renewed;
    }

    /// <summary>Creates, reuses or renews the server's certificates and logs each one that was not reused.</summary>
    private static (ClusterCertificates Certificates, IReadOnlyList<CertOutcome> Outcomes) EnsureCertificates(CoracleConfig config, ILogger log, TimeProvider? time)
    {
        var certs = ClusterCertificates.ForServer(config, time);
        var outcomes = certs.Ensure();
        foreach (var outcome in outcomes.Where(o => o.Action != "reused"))
        {
            log.CertificateAction(outcome.Name, outcome.Action, outcome.NotAfter);
        }

        return (certs, outcomes);
    }

    public static void WriteKubeconfigs(CoracleConfig config, ClusterCertificates certs, ILogger? log)
    {
        var server = $"https://127.0.0.1:{config.HttpsListenPort}";
        var ca = certs.CertFile(ClusterCertificates.ServerCa);
        var cred = FileUtil.PrivateDirectory(CredDir(config.DataDir));
        foreach (var (file, cert, user) in ComponentKubeconfigs)
        {
            var path = Path.Combine(cred, file);
            var name = user == "system:node" ? $"system:node:{config.NodeName}" : user;
            Kubeconfig.Write(path, server, ca, certs.CertFile(cert), certs.KeyFile(cert), name, false, ClusterCertificates.KeyMode);
        }

        if (config.WriteKubeconfig.Length > 0)
        {
            Kubeconfig.Write(config.WriteKubeconfig, server, ca, certs.CertFile("client-admin"), certs.KeyFile("client-admin"), "system:admin", true, config.WriteKubeconfigMode);
            log?.KubeconfigWritten(config.WriteKubeconfig);
        }
    }
}
