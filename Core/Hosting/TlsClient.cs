using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace Coracle.Core.Hosting;

/// <summary>HTTP handlers that trust only a given CA and present a client certificate (PEM files), as kubeconfigs do.</summary>
internal static class TlsClient
{
    /// <summary>Sets <paramref name="handler"/>'s TLS options: trust <paramref name="caFile"/> alone, present the client pair.</summary>
    public static SocketsHttpHandler Configure(SocketsHttpHandler handler, string? caFile, string? certFile, string? keyFile)
    {
        ArgumentNullException.ThrowIfNull(handler);
        if (caFile is null && certFile is null)
        {
            return handler;
        }

        var ssl = new SslClientAuthenticationOptions();
        if (certFile is not null && keyFile is not null)
        {
            ssl.ClientCertificates = [X509Certificate2.CreateFromPemFile(certFile, keyFile)];
        }

        if (caFile is not null)
        {
            var roots = new X509Certificate2Collection();
            roots.ImportFromPemFile(caFile);
            ssl.CertificateChainPolicy = new X509ChainPolicy
            {
                TrustMode = X509ChainTrustMode.CustomRootTrust,
                RevocationMode = X509RevocationMode.NoCheck,
            };
            ssl.CertificateChainPolicy.CustomTrustStore.AddRange(roots);
        }

        handler.SslOptions = ssl;
        return handler;
    }
}
