using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace Coracle.Plugins;

/// <summary>
/// Certificate checks for clients of the cluster's own services (the datastore, etcd): the peer must chain to one CA
/// alone, not to the machine's trust store. Revocation is not checked (the cluster's CAs publish no CRLs).
/// </summary>
public static class TlsTrust
{
    /// <summary>A validation callback that accepts a server certificate only when it chains to <paramref name="ca"/>.</summary>
    /// <param name="ca">The only trusted root.</param>
    public static RemoteCertificateValidationCallback Only(X509Certificate2 ca)
    {
        ArgumentNullException.ThrowIfNull(ca);
        return (_, certificate, _, _) =>
        {
            if (certificate is null)
            {
                return false;
            }

            using var chain = new X509Chain();
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.Add(ca);
            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            using var leaf = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
            return chain.Build(leaf);
        };
    }
}
