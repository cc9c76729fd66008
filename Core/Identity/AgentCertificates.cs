namespace Coracle.Core.Identity;

/// <summary>
/// An agent's certificates (<c>DATA/agent/*.crt</c>): issued by the server through the join API (the CAs
/// <c>server-ca</c> and <c>client-ca</c> are the server's, copied). Their renewal window follows each leaf's own
/// lifetime, as the server's does (<see cref="ClusterCertificates.RenewWindowFor"/>).
/// </summary>
internal static class AgentCertificates
{
    private static readonly string[] Cas = ["server-ca", "client-ca"];

    /// <summary>Every certificate in the agent's folder with its expiry and status (<c>ok</c>, <c>due for renewal</c>, <c>expired</c>).</summary>
    public static IReadOnlyList<CertCheck> Check(string directory, DateTimeOffset now)
    {
        var rows = new List<CertCheck>();
        if (!Directory.Exists(directory))
        {
            return rows;
        }

        foreach (var file in Directory.EnumerateFiles(directory, "*.crt").Order(StringComparer.Ordinal))
        {
            var name = Path.GetFileNameWithoutExtension(file);
            var isCa = Cas.Contains(name);
            try
            {
                using var cert = CertificateFactory.LoadCertificate(file);
                var notBefore = new DateTimeOffset(cert.NotBefore.ToUniversalTime());
                var notAfter = new DateTimeOffset(cert.NotAfter.ToUniversalTime());
                var status = ClusterCertificates.ExpiryStatus(notAfter, now, isCa, ClusterCertificates.RenewWindowFor(notAfter - notBefore));
                var issuer = isCa ? "server" : name.StartsWith("serving-", StringComparison.Ordinal) ? "server-ca" : "client-ca";
                rows.Add(new CertCheck("agent/" + name, issuer, cert.Subject, notAfter, status));
            }
            catch (CertificateFileException ex)
            {
                rows.Add(new CertCheck("agent/" + name, "-", "-", DateTimeOffset.MinValue, "unreadable: " + ex.Message));
            }
        }

        return rows;
    }

    /// <summary>The agent's leaves that are due for renewal (or expired, or unreadable).</summary>
    public static IReadOnlyList<string> Due(string directory, DateTimeOffset now) =>
        Check(directory, now).Where(r => r.Issuer != "server" && r.Status != "ok").Select(r => r.Name).ToList();
}
