using Coracle.Core.Identity;
using Coracle.Core.Tests.Support;

namespace Coracle.Core.Tests.Identity;

public sealed class KubeconfigTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    public static bool HasKubectl => File.Exists("/usr/bin/kubectl");

    [Fact]
    public void Prepare_EveryKubeconfig_IsAcceptedByKubectl()
    {
        Assert.True(HasKubectl, "kubectl is not installed: apt-get install kubernetes-client");
        var config = TestConfig.Server(_dir.Path, (Coracle.Core.Configuration.Settings.WriteKubeconfigMode, "0640"));
        ServerIdentity.Prepare(config, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);

        var files = ServerIdentity.ComponentKubeconfigs.Select(k => Path.Combine(ServerIdentity.CredDir(_dir.Path), k.File)).Append(config.WriteKubeconfig).ToList();
        foreach (var file in files)
        {
            var (code, stdout, stderr) = Run.Tool("kubectl", "config", "view", "--kubeconfig", file, "-o", "jsonpath={.clusters[0].cluster.server} {.current-context} {.users[0].name}");
            Assert.True(code == 0, $"kubectl rejected {file}: {stderr}");
            Assert.StartsWith("https://127.0.0.1:6443 coracle ", stdout, StringComparison.Ordinal);
        }

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead, File.GetUnixFileMode(config.WriteKubeconfig));
        var (_, user, _) = Run.Tool("kubectl", "config", "view", "--kubeconfig", Path.Combine(ServerIdentity.CredDir(_dir.Path), "kubelet.kubeconfig"), "-o", "jsonpath={.users[0].name}");
        Assert.Equal("system:node:node-a", user);
    }

    [Fact]
    public void Prepare_AdminKubeconfig_EmbedsTheAdminCertificate()
    {
        var config = TestConfig.Server(_dir.Path);
        var identity = ServerIdentity.Prepare(config, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);

        var text = File.ReadAllText(config.WriteKubeconfig);
        Assert.Contains("client-certificate-data: " + Convert.ToBase64String(File.ReadAllBytes(identity.Certificates.CertFile("client-admin"))), text, StringComparison.Ordinal);
        Assert.Contains("certificate-authority-data: " + Convert.ToBase64String(File.ReadAllBytes(identity.Certificates.CertFile("server-ca"))), text, StringComparison.Ordinal);
    }
}
