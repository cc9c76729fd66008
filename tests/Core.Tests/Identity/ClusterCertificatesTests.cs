using Coracle.Core.Configuration;
using Coracle.Core.Identity;
using Coracle.Core.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace Coracle.Core.Tests.Identity;

public sealed class ClusterCertificatesTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private ClusterCertificates Certs(TimeProvider? time = null, params (Setting, string)[] flags) =>
        ClusterCertificates.ForServer(TestConfig.Server(_dir.Path, flags), time);

    [Fact]
    public void Ensure_FirstStart_EveryLeafVerifiesAgainstItsCaWithOpenssl()
    {
        var certs = Certs();
        var outcomes = certs.Ensure();

        Assert.All(outcomes, o => Assert.Equal("created", o.Action));
        foreach (var spec in certs.Specs)
        {
            var ca = certs.CertFile(spec.IsCa ? spec.Name : spec.Issuer);
            var verify = Run.OpenSsl("verify", "-CAfile", ca, certs.CertFile(spec.Name));
            Assert.Equal($"{certs.CertFile(spec.Name)}: OK\n", verify);
        }
    }

    [Fact]
    public void Ensure_FirstStart_KeyUsagesAndBasicConstraintsMatchEachCertificatesPurpose()
    {
        var certs = Certs();
        certs.Ensure();

        foreach (var spec in certs.Specs)
        {
            var text = Run.OpenSsl("x509", "-noout", "-text", "-in", certs.CertFile(spec.Name));
            if (spec.IsCa)
            {
                Assert.Contains("CA:TRUE", text, StringComparison.Ordinal);
                Assert.Contains("Certificate Sign, CRL Sign", text, StringComparison.Ordinal);
                continue;
            }

            Assert.Contains("CA:FALSE", text, StringComparison.Ordinal);
            Assert.Contains("Digital Signature", text, StringComparison.Ordinal);
            Assert.Contains("ASN1 OID: prime256v1", text, StringComparison.Ordinal);
            var eku = spec.Usage switch
            {
                CertUsage.Server => "TLS Web Server Authentication\n",
                CertUsage.Client => "TLS Web Client Authentication\n",
                _ => "TLS Web Server Authentication, TLS Web Client Authentication\n",
            };
            Assert.Contains("X509v3 Extended Key Usage: \n                " + eku, text, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Ensure_ApiServerCertificate_CarriesEveryKubernetesNameNodeAddressAndTlsSan()
    {
        var certs = Certs(null, (Settings.TlsSan, "api.example.com"), (Settings.TlsSan, "203.0.113.7"));
        certs.Ensure();

        var text = Run.OpenSsl("x509", "-noout", "-ext", "subjectAltName", "-in", certs.CertFile("serving-kube-apiserver"));
        Assert.Equal(
            "X509v3 Subject Alternative Name: \n    DNS:localhost, DNS:node-a, DNS:kubernetes, DNS:kubernetes.default, DNS:kubernetes.default.svc, DNS:kubernetes.default.svc.cluster.local, DNS:api.example.com, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, IP Address:10.43.0.1, IP Address:192.168.50.10, IP Address:203.0.113.7\n",
            text);
        Run.OpenSsl("verify", "-CAfile", certs.CertFile("server-ca"), "-purpose", "sslserver", "-verify_hostname", "kubernetes.default.svc", certs.CertFile("serving-kube-apiserver"));
    }

    [Fact]
    public void Ensure_ClientCertificates_HaveKubernetesIdentities()
    {
        var certs = Certs();
        certs.Ensure();

        string Subject(string name) => Run.OpenSsl("x509", "-noout", "-subject", "-nameopt", "RFC2253", "-in", certs.CertFile(name)).Trim();
        Assert.Equal("subject=O=system:masters,CN=system:admin", Subject("client-admin"));
        Assert.Equal("subject=CN=system:kube-controller-manager", Subject("client-controller"));
        Assert.Equal("subject=CN=system:kube-scheduler", Subject("client-scheduler"));
        Assert.Equal("subject=CN=system:kube-proxy", Subject("client-kube-proxy"));
        Assert.Equal("subject=CN=system:coracle-controller", Subject("client-coracle-controller"));
        Assert.Equal("subject=O=system:nodes,CN=system:node:node-a", Subject("client-kubelet"));
        Run.OpenSsl("verify", "-CAfile", certs.CertFile("client-ca"), "-purpose", "sslclient", certs.CertFile("client-admin"));
    }

    [Fact]
    public void Ensure_FileModes_KeysArePrivateAndCertificatesReadable()
    {
        var certs = Certs();
        certs.Ensure();

        foreach (var spec in certs.Specs)
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(certs.KeyFile(spec.Name)));
            Assert.Equal(ClusterCertificates.CertMode, File.GetUnixFileMode(certs.CertFile(spec.Name)));
        }

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(certs.ServiceAccountKeyFile));
    }

    [Fact]
    public void Ensure_DatastoreIdentity_IsWhatTheSdkNodeCertificatesReads()
    {
        var certs = Certs();
        certs.Ensure();

        var files = new Coracle.Core.Hosting.NodeCertificates(certs.Directory).Get("datastore");
        Assert.NotNull(files);
        Run.OpenSsl("verify", "-CAfile", files.CaFile, "-purpose", "sslserver", files.CertFile);
        Assert.Equal(File.ReadAllText(certs.CertFile("etcd-server-ca")), File.ReadAllText(files.CaFile));
    }

    [Fact]
    public void Ensure_Restart_ReusesEveryValidFile()
    {
        Certs().Ensure();
        var before = Directory.GetFiles(_dir.Path, "*.crt", SearchOption.AllDirectories).ToDictionary(f => f, File.ReadAllText);

        var outcomes = Certs().Ensure();

        Assert.All(outcomes, o => Assert.Equal("reused", o.Action));
        Assert.All(before, kv => Assert.Equal(kv.Value, File.ReadAllText(kv.Key)));
    }

    [Fact]
    public void Ensure_NewTlsSan_RenewsOnlyTheServingCertificatesThatCarryIt()
    {
        Certs().Ensure();

        var outcomes = Certs(null, (Settings.TlsSan, "new.example.com")).Ensure().Where(o => o.Action != "reused").ToList();

        Assert.Equal(["serving-kube-apiserver", "supervisor"], outcomes.Select(o => o.Name));
        Assert.All(outcomes, o => Assert.Equal("renewed (names changed)", o.Action));
    }

    [Fact]
    public void Ensure_Within120DaysOfExpiry_RenewsLeavesButNotCas()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2030, 1, 1, 0, 0, 0, TimeSpan.Zero));
        Certs(time).Ensure();

        time.Advance(TimeSpan.FromDays(365 - 121));
        Assert.All(Certs(time).Ensure(), o => Assert.Equal("reused", o.Action));

        time.Advance(TimeSpan.FromDays(2));
        var outcomes = Certs(time).Ensure();

        Assert.All(outcomes.Where(o => ClusterCertificates.CaNames.Contains(o.Name)), o => Assert.Equal("reused", o.Action));
        Assert.All(outcomes.Where(o => !ClusterCertificates.CaNames.Contains(o.Name)), o => Assert.Equal("renewed (expiring)", o.Action));
        Assert.Equal(time.GetUtcNow().AddDays(365).UtcDateTime, outcomes.Single(o => o.Name == "client-admin").NotAfter.UtcDateTime, TimeSpan.FromSeconds(1));
    }

    [Fact]
    public void Check_NearExpiry_ReportsDueForRenewal()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2030, 1, 1, 0, 0, 0, TimeSpan.Zero));
        Certs(time).Ensure();
        time.Advance(TimeSpan.FromDays(300));

        var rows = Certs(time).Check();

        Assert.Equal("ok", rows.Single(r => r.Name == "server-ca").Status);
        Assert.Equal("due for renewal", rows.Single(r => r.Name == "serving-kube-apiserver").Status);
    }

    [Fact]
    public void Ensure_BrokenCertificate_FailsNamingTheFileAndKeepsIt()
    {
        var certs = Certs();
        certs.Ensure();
        var file = certs.CertFile("client-admin");
        File.WriteAllText(file, "not a certificate");

        var ex = Assert.Throws<CertificateFileException>(() => Certs().Ensure());

        Assert.StartsWith($"{file} is not a readable PEM certificate (", ex.Message, StringComparison.Ordinal);
        Assert.EndsWith("); restore it or remove it to have it re-created", ex.Message, StringComparison.Ordinal);
        Assert.Equal("not a certificate", File.ReadAllText(file));
    }

    [Fact]
    public void Ensure_CaKeyMissing_FailsInsteadOfCreatingANewCa()
    {
        var certs = Certs();
        certs.Ensure();
        File.Delete(certs.KeyFile("server-ca"));

        var ex = Assert.Throws<CertificateFileException>(() => Certs().Ensure());

        Assert.Equal(
            $"{certs.KeyFile("server-ca")} is missing but {certs.CertFile("server-ca")} exists; restore the CA key (or remove both files to create a new CA, which invalidates every issued certificate and the token)",
            ex.Message);
    }

    [Fact]
    public void Ensure_RequestedRenewal_RenewsOnlyTheNamedLeaf()
    {
        Certs().Ensure();

        var outcomes = Certs().Ensure(new HashSet<string> { "client-admin" });

        Assert.Equal("renewed (requested)", outcomes.Single(o => o.Name == "client-admin").Action);
        Assert.All(outcomes.Where(o => o.Name != "client-admin"), o => Assert.Equal("reused", o.Action));
    }

    [Fact]
    public void ReplaceCas_UserSuppliedOpensslCa_ReissuesItsLeavesAndChangesTheTokenHash()
    {
        var config = TestConfig.Server(_dir.Path);
        var certs = ClusterCertificates.ForServer(config);
        certs.Ensure();
        var oldToken = ServerToken.Ensure(config.DataDir, certs.CertFile("server-ca"), "");
        var user = Directory.CreateDirectory(Path.Combine(_dir.Path, "user-ca")).FullName;
        Run.OpenSsl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650", "-subj", "/CN=acme-root",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout", Path.Combine(user, "server-ca.key"), "-out", Path.Combine(user, "server-ca.crt"));

        var replaced = certs.ReplaceCas(user);
        var outcomes = certs.Ensure();
        var newToken = ServerToken.Ensure(config.DataDir, certs.CertFile("server-ca"), "");

        Assert.Equal(["server-ca"], replaced);
        Assert.Equal("renewed (CA changed)", outcomes.Single(o => o.Name == "serving-kube-apiserver").Action);
        Assert.Equal("reused", outcomes.Single(o => o.Name == "client-admin").Action);
        Run.OpenSsl("verify", "-CAfile", Path.Combine(user, "server-ca.crt"), certs.CertFile("serving-kube-apiserver"));
        Assert.NotEqual(oldToken.CaHash, newToken.CaHash);
        Assert.Equal(oldToken.Password, newToken.Password);
    }

    [Fact]
    public void ReplaceCas_CaWithoutSubjectKeyIdentifier_ItsLeavesAreIssuedAndVerify()
    {
        // OpenSSL 3 adds a subject key identifier unless told not to; older tools and hand-written configurations do not.
        var certs = Certs();
        certs.Ensure();
        var user = Directory.CreateDirectory(Path.Combine(_dir.Path, "user-ca")).FullName;
        Run.OpenSsl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "3650", "-subj", "/CN=plain-root",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-addext", "subjectKeyIdentifier=none", "-addext", "authorityKeyIdentifier=none",
            "-keyout", Path.Combine(user, "client-ca.key"), "-out", Path.Combine(user, "client-ca.crt"));
        Assert.DoesNotContain("Subject Key Identifier", Run.OpenSsl("x509", "-noout", "-text", "-in", Path.Combine(user, "client-ca.crt")), StringComparison.Ordinal);

        Assert.Equal(["client-ca"], certs.ReplaceCas(user));
        var outcomes = certs.Ensure();

        Assert.Equal("renewed (CA changed)", outcomes.Single(o => o.Name == "client-admin").Action);
        Run.OpenSsl("verify", "-CAfile", Path.Combine(user, "client-ca.crt"), certs.CertFile("client-admin"));
        Assert.Equal("reused", Certs().Ensure().Single(o => o.Name == "client-admin").Action); // and it is accepted as signed at the next start
    }

    [Fact]
    public void ReplaceCas_NotACa_IsRejected()
    {
        var certs = Certs();
        certs.Ensure();
        var user = Directory.CreateDirectory(Path.Combine(_dir.Path, "user-ca")).FullName;
        File.Copy(certs.CertFile("client-admin"), Path.Combine(user, "client-ca.crt"));
        File.Copy(certs.KeyFile("client-admin"), Path.Combine(user, "client-ca.key"));

        var ex = Assert.Throws<CertificateFileException>(() => certs.ReplaceCas(user));

        Assert.Equal($"{Path.Combine(user, "client-ca.crt")} is not a CA certificate (basic constraints CA:TRUE missing)", ex.Message);
    }
}
