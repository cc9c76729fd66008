using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Coracle.Plugins;
using Xunit;

namespace Coracle.Core.Tests.Sdk;

public sealed class TlsTrustTests
{
    [Fact]
    public void Only_LeafOfTheCa_AcceptedLeafOfAnotherCaOrNoneRefused()
    {
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var ca = SelfSigned("CN=cluster-ca", caKey);
        using var otherKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var other = SelfSigned("CN=other-ca", otherKey);
        using var leaf = Leaf("CN=datastore", ca, caKey);
        using var stranger = Leaf("CN=datastore", other, otherKey);

        var check = TlsTrust.Only(ca);

        Assert.True(check(this, leaf, null, SslPolicyErrors.RemoteCertificateChainErrors));
        Assert.False(check(this, stranger, null, SslPolicyErrors.None));
        Assert.False(check(this, null, null, SslPolicyErrors.RemoteCertificateNotAvailable));
        Assert.False(check(this, other, null, SslPolicyErrors.None)); // another CA itself is not trusted either
    }

    private static X509Certificate2 SelfSigned(string subject, ECDsa key)
    {
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
    }

    private static X509Certificate2 Leaf(string subject, X509Certificate2 issuer, ECDsa issuerKey)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        var serial = RandomNumberGenerator.GetBytes(8);
        Assert.True(issuer.HasPrivateKey && issuerKey is not null);
        return request.Create(issuer, DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddHours(1), serial);
    }
}
