using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Coracle.Core.Identity;

/// <summary>What a certificate is for; decides key usages, extended key usages and basic constraints.</summary>
internal enum CertUsage
{
    Ca,
    Server,
    Client,
    ServerAndClient,
}

/// <summary>The subject and names of a certificate to issue.</summary>
internal sealed record CertSubject(string CommonName, IReadOnlyList<string> Organizations, IReadOnlyList<string> DnsNames, IReadOnlyList<IPAddress> IpAddresses)
{
    public static CertSubject Named(string commonName, params string[] organizations) => new(commonName, organizations, [], []);

    public X500DistinguishedName DistinguishedName()
    {
        var builder = new X500DistinguishedNameBuilder();
        foreach (var org in Organizations)
        {
            builder.AddOrganizationName(org);
        }

        builder.AddCommonName(CommonName);
        return builder.Build();
    }
}

/// <summary>A certificate with its private key, in memory.</summary>
internal sealed class CertificateWithKey(X509Certificate2 certificate, AsymmetricAlgorithm key) : IDisposable
{
    public X509Certificate2 Certificate { get; } = certificate;

    public AsymmetricAlgorithm Key { get; } = key;

    public string CertificatePem => Certificate.ExportCertificatePem() + "\n";

    public string KeyPem => KeyToPem(Key);

    public static string KeyToPem(AsymmetricAlgorithm key) => key switch
    {
        ECDsa ec => ec.ExportECPrivateKeyPem() + "\n",
        RSA rsa => rsa.ExportRSAPrivateKeyPem() + "\n",
        _ => throw new NotSupportedException($"unsupported key type {key.GetType().Name}"),
    };

    public X509SignatureGenerator SignatureGenerator() => Key switch
    {
        ECDsa ec => X509SignatureGenerator.CreateForECDsa(ec),
        RSA rsa => X509SignatureGenerator.CreateForRSA(rsa, RSASignaturePadding.Pkcs1),
        _ => throw new NotSupportedException($"unsupported CA key type {Key.GetType().Name}; use ECDSA or RSA"),
    };

    /// <summary>Loads a PEM certificate and its PEM key; throws <see cref="CertificateFileException"/> naming the bad file.</summary>
    public static CertificateWithKey Load(string certFile, string keyFile)
    {
        var cert = CertificateFactory.LoadCertificate(certFile);
        AsymmetricAlgorithm key;
        try
        {
            var pem = File.ReadAllText(keyFile);
            if (pem.Contains("RSA PRIVATE KEY", StringComparison.Ordinal) || cert.GetKeyAlgorithm() == "1.2.840.113549.1.1.1")
            {
                var rsa = RSA.Create();
                rsa.ImportFromPem(pem);
                key = rsa;
            }
            else
            {
                var ec = ECDsa.Create();
                ec.ImportFromPem(pem);
                key = ec;
            }
        }
        catch (Exception ex) when (ex is CryptographicException or ArgumentException)
        {
            throw new CertificateFileException(keyFile, $"{keyFile} is not a readable PEM private key ({ex.Message}); restore it or remove it and its certificate to have it re-created");
        }

        var matches = key switch
        {
            ECDsa ec => cert.GetECDsaPublicKey()?.ExportSubjectPublicKeyInfo().AsSpan().SequenceEqual(ec.ExportSubjectPublicKeyInfo()) == true,
            RSA rsa => cert.GetRSAPublicKey()?.ExportSubjectPublicKeyInfo().AsSpan().SequenceEqual(rsa.ExportSubjectPublicKeyInfo()) == true,
            _ => false,
        };
        if (!matches)
        {
            key.Dispose();
            throw new CertificateFileException(keyFile, $"{keyFile} does not belong to the certificate {certFile}");
        }

        return new CertificateWithKey(cert, key);
    }

    public void Dispose()
    {
        Certificate.Dispose();
        Key.Dispose();
    }
}

/// <summary>A certificate or key file that exists but cannot be used. Never silently overwritten.</summary>
internal sealed class CertificateFileException(string path, string message) : Exception(message)
{
    public string Path { get; } = path;
}

/// <summary>Creates ECDSA P-256 keys, self-signed CAs, leaf certificates and certificates for CSRs.</summary>
internal static class CertificateFactory
{
    private static readonly Oid ServerAuth = new("1.3.6.1.5.5.7.3.1", "Server Authentication");
    private static readonly Oid ClientAuth = new("1.3.6.1.5.5.7.3.2", "Client Authentication");

    public static ECDsa NewKey() => ECDsa.Create(ECCurve.NamedCurves.nistP256);

    public static X509Certificate2 LoadCertificate(string path)
    {
        try
        {
            var pem = File.ReadAllText(path);
            return X509Certificate2.CreateFromPem(pem);
        }
        catch (Exception ex) when (ex is CryptographicException or ArgumentException)
        {
            throw new CertificateFileException(path, $"{path} is not a readable PEM certificate ({ex.Message}); restore it or remove it to have it re-created");
        }
    }

    public static CertificateWithKey CreateCa(string commonName, DateTimeOffset now, TimeSpan lifetime)
    {
        var key = NewKey();
        var request = new CertificateRequest(CertSubject.Named(commonName).DistinguishedName(), key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(
            X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign | X509KeyUsageFlags.DigitalSignature, true));
        var ski = new X509SubjectKeyIdentifierExtension(request.PublicKey, false);
        request.CertificateExtensions.Add(ski);
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromSubjectKeyIdentifier(ski));
        var cert = request.CreateSelfSigned(now.AddMinutes(-5), now + lifetime);
        return new CertificateWithKey(X509CertificateLoader.LoadCertificate(cert.RawData), key);
    }

    public static CertificateWithKey CreateLeaf(CertificateWithKey ca, CertSubject subject, CertUsage usage, DateTimeOffset now, TimeSpan lifetime)
    {
        var key = NewKey();
        var cert = Sign(ca, subject, new PublicKey(key), usage, now, lifetime);
        return new CertificateWithKey(cert, key);
    }

    /// <summary>Issues a certificate for a public key (from a CSR); the subject and usages are the issuer's choice.</summary>
    public static X509Certificate2 Sign(CertificateWithKey ca, CertSubject subject, PublicKey publicKey, CertUsage usage, DateTimeOffset now, TimeSpan lifetime)
    {
        var request = new CertificateRequest(subject.DistinguishedName(), publicKey, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        var keyUsage = X509KeyUsageFlags.DigitalSignature;
        if (publicKey.Oid.Value == "1.2.840.113549.1.1.1")
        {
            keyUsage |= X509KeyUsageFlags.KeyEncipherment;
        }

        request.CertificateExtensions.Add(new X509KeyUsageExtension(keyUsage, true));
        var eku = new OidCollection();
        if (usage is CertUsage.Server or CertUsage.ServerAndClient)
        {
            eku.Add(ServerAuth);
        }

        if (usage is CertUsage.Client or CertUsage.ServerAndClient)
        {
            eku.Add(ClientAuth);
        }

        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(eku, false));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        request.CertificateExtensions.Add(AuthorityKeyIdentifier(ca.Certificate));
        if (subject.DnsNames.Count > 0 || subject.IpAddresses.Count > 0)
        {
            var san = new SubjectAlternativeNameBuilder();
            foreach (var dns in subject.DnsNames)
            {
                san.AddDnsName(dns);
            }

            foreach (var ip in subject.IpAddresses)
            {
                san.AddIpAddress(ip);
            }

            request.CertificateExtensions.Add(san.Build());
        }

        var notAfter = now + lifetime;
        if (notAfter > ca.Certificate.NotAfter)
        {
            notAfter = ca.Certificate.NotAfter;
        }

        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F;
        serial[0] |= 0x01;
        return request.Create(ca.Certificate.SubjectName, ca.SignatureGenerator(), now.AddMinutes(-5), notAfter, serial);
    }

    /// <summary>
    /// The authority key identifier of what <paramref name="ca"/> signs: its subject key identifier, or for a CA that has
    /// none (a user-supplied one, <c>coracle certificate rotate-ca</c>) the SHA-1 of its public key, RFC 5280's method 1.
    /// </summary>
    private static X509AuthorityKeyIdentifierExtension AuthorityKeyIdentifier(X509Certificate2 ca) =>
        ca.Extensions.OfType<X509SubjectKeyIdentifierExtension>().Any()
            ? X509AuthorityKeyIdentifierExtension.CreateFromCertificate(ca, true, false)
            : X509AuthorityKeyIdentifierExtension.CreateFromSubjectKeyIdentifier(new X509SubjectKeyIdentifierExtension(ca.PublicKey, false));

    /// <summary>The DNS names and IP addresses in a certificate's subject alternative name.</summary>
    public static (List<string> Dns, List<IPAddress> Ips) AlternativeNames(X509Certificate2 cert)
    {
        var dns = new List<string>();
        var ips = new List<IPAddress>();
        foreach (var ext in cert.Extensions)
        {
            if (ext is X509SubjectAlternativeNameExtension san)
            {
                dns.AddRange(san.EnumerateDnsNames());
                ips.AddRange(san.EnumerateIPAddresses());
            }
        }

        return (dns, ips);
    }

    /// <summary>
    /// True when <paramref name="cert"/> names <paramref name="issuer"/>'s subject as its issuer and carries a valid
    /// signature by its key. ECDSA signatures with SHA-256/384 (every certificate Coracle issues) are checked directly on
    /// the signed bytes; anything else (a user-supplied RSA CA) through the platform's chain engine. The direct check
    /// is what a start costs for each of its ~20 certificates: a chain build takes milliseconds apiece.
    /// </summary>
    public static bool IsSignedBy(X509Certificate2 cert, X509Certificate2 issuer)
    {
        if (SignedBytes(cert) is var (tbs, algorithm, signature) && HashFor(algorithm) is { } hash && issuer.GetECDsaPublicKey() is { } key)
        {
            using (key)
            {
                // The chain engine matches names itself; the direct check must too.
                return cert.IssuerName.RawData.AsSpan().SequenceEqual(issuer.SubjectName.RawData)
                    && key.VerifyData(tbs, signature, hash, DSASignatureFormat.Rfc3279DerSequence);
            }
        }

        return IsSignedByChain(cert, issuer);
    }

    /// <summary>The chain engine's answer to <see cref="IsSignedBy"/> (any algorithm).</summary>
    internal static bool IsSignedByChain(X509Certificate2 cert, X509Certificate2 issuer)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.VerificationFlags = X509VerificationFlags.IgnoreNotTimeValid | X509VerificationFlags.IgnoreWrongUsage;
        chain.ChainPolicy.CustomTrustStore.Add(issuer);
        return chain.Build(cert) && chain.ChainElements.Count == 2 && chain.ChainElements[1].Certificate.RawData.AsSpan().SequenceEqual(issuer.RawData);
    }

    /// <summary>
    /// RFC 5280's <c>Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING }</c>:
    /// the signed bytes, the algorithm's OID and the signature; null when the encoding is not that.
    /// </summary>
    private static (byte[] Tbs, string Algorithm, byte[] Signature)? SignedBytes(X509Certificate2 cert)
    {
        try
        {
            var reader = new System.Formats.Asn1.AsnReader(cert.RawData, System.Formats.Asn1.AsnEncodingRules.DER);
            var certificate = reader.ReadSequence();
            reader.ThrowIfNotEmpty();
            var tbs = certificate.ReadEncodedValue().ToArray();
            var algorithm = certificate.ReadSequence().ReadObjectIdentifier();
            var signature = certificate.ReadBitString(out var unused);
            certificate.ThrowIfNotEmpty();
            return unused == 0 ? (tbs, algorithm, signature) : null;
        }
        catch (System.Formats.Asn1.AsnContentException)
        {
            return null;
        }
    }

    /// <summary>The hash of an ECDSA signature algorithm OID (RFC 5758), or null for any other algorithm.</summary>
    private static HashAlgorithmName? HashFor(string oid) => oid switch
    {
        "1.2.840.10045.4.3.2" => HashAlgorithmName.SHA256,
        "1.2.840.10045.4.3.3" => HashAlgorithmName.SHA384,
        _ => null,
    };
}
