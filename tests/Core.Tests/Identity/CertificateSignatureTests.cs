using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Coracle.Core.Identity;

namespace Coracle.Core.Tests.Identity;

/// <summary>
/// <see cref="CertificateFactory.IsSignedBy"/>: ECDSA signatures checked directly on the signed bytes, anything else
/// through the chain engine. The ECDSA cases of a leaf and a CA also ask the chain engine, so the two answers are seen to
/// agree; a self-signed certificate is asked of the direct check only (its callers check leaves against their CA).
/// </summary>
public sealed class CertificateSignatureTests
{
    private static readonly DateTimeOffset Now = DateTimeOffset.UtcNow;

    [Fact]
    public void IsSignedBy_EcdsaLeafAndItsCa_TrueAsTheChainEngineSays()
    {
        using var ca = CertificateFactory.CreateCa("coracle-server-ca", Now, TimeSpan.FromDays(10));
        using var leaf = CertificateFactory.CreateLeaf(ca, CertSubject.Named("kube-apiserver"), CertUsage.Server, Now, TimeSpan.FromDays(1));

        Assert.True(CertificateFactory.IsSignedBy(leaf.Certificate, ca.Certificate));
        Assert.True(CertificateFactory.IsSignedByChain(leaf.Certificate, ca.Certificate));
        Assert.True(CertificateFactory.IsSignedBy(ca.Certificate, ca.Certificate)); // self-signed
    }

    [Fact]
    public void IsSignedBy_AnotherCaOfTheSameNameOrAnotherName_False()
    {
        // A CA re-created under the same name (a new key): the leaf's issuer name still matches, its signature does not.
        using var ca = CertificateFactory.CreateCa("coracle-server-ca", Now, TimeSpan.FromDays(10));
        using var sameName = CertificateFactory.CreateCa("coracle-server-ca", Now, TimeSpan.FromDays(10));
        using var otherName = CertificateFactory.CreateCa("coracle-client-ca", Now, TimeSpan.FromDays(10));
        using var leaf = CertificateFactory.CreateLeaf(ca, CertSubject.Named("kubelet"), CertUsage.Client, Now, TimeSpan.FromDays(1));

        Assert.False(CertificateFactory.IsSignedBy(leaf.Certificate, sameName.Certificate));
        Assert.False(CertificateFactory.IsSignedByChain(leaf.Certificate, sameName.Certificate));
        Assert.False(CertificateFactory.IsSignedBy(leaf.Certificate, otherName.Certificate));
        Assert.False(CertificateFactory.IsSignedByChain(leaf.Certificate, otherName.Certificate));
    }

    [Fact]
    public void IsSignedBy_SignatureOrSignedBytesChanged_False()
    {
        using var ca = CertificateFactory.CreateCa("coracle-server-ca", Now, TimeSpan.FromDays(10));
        using var leaf = CertificateFactory.CreateLeaf(ca, CertSubject.Named("kube-apiserver"), CertUsage.Server, Now, TimeSpan.FromDays(1));
        var raw = leaf.Certificate.RawData;

        // The last byte is the signature's; the serial number is in the signed part.
        var badSignature = (byte[])raw.Clone();
        badSignature[^1] ^= 0x01;
        var badBody = (byte[])raw.Clone();
        var serial = leaf.Certificate.SerialNumberBytes.Span;
        badBody[raw.AsSpan().IndexOf(serial) + serial.Length - 1] ^= 0x01;
        foreach (var tampered in new[] { badSignature, badBody })
        {
            using var cert = X509CertificateLoader.LoadCertificate(tampered);
            Assert.False(CertificateFactory.IsSignedBy(cert, ca.Certificate));
            Assert.False(CertificateFactory.IsSignedByChain(cert, ca.Certificate));
        }
    }

    [Fact]
    public void IsSignedBy_RsaCa_AnsweredByTheChainEngine()
    {
        // A user-supplied RSA CA (custom CA certificates): its signatures are not ECDSA, so the chain engine answers.
        using var ca = RsaCa("custom-server-ca");
        using var other = RsaCa("custom-server-ca");
        using var leaf = CertificateFactory.CreateLeaf(ca, CertSubject.Named("kube-apiserver"), CertUsage.Server, Now, TimeSpan.FromDays(1));

        Assert.True(CertificateFactory.IsSignedBy(leaf.Certificate, ca.Certificate));
        Assert.False(CertificateFactory.IsSignedBy(leaf.Certificate, other.Certificate));
    }

    private static CertificateWithKey RsaCa(string name)
    {
        var key = RSA.Create(2048);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        using var cert = request.CreateSelfSigned(Now.AddMinutes(-5), Now.AddDays(10));
        return new CertificateWithKey(X509CertificateLoader.LoadCertificate(cert.RawData), key);
    }
}
