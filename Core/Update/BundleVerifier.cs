using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.Pkcs;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;

namespace Coracle.Core.Update;

/// <summary>What the device runs now: the checks a bundle must pass are against these.</summary>
internal sealed record RunningImage(string Version, string Profile, string Rid);

/// <summary>
/// Checks a bundle before anything is written: the detached CMS signature over manifest.json, the signer's chain to
/// the update CA (custom root trust: only the CA file counts, not the system store; validity at the current time; the
/// signer needs the code-signing extended key usage), then RID, profile and version, then the payload's size and SHA-256.
/// </summary>
internal static class BundleVerifier
{
    /// <summary>The code-signing extended key usage every signer certificate must carry.</summary>
    public const string CodeSigningOid = "1.3.6.1.5.5.7.3.3";

    public static (BundleManifest Manifest, string Signer) Verify(string bundle, string caFile, RunningImage running, bool allowDowngrade, DateTimeOffset now)
    {
        var (manifestBytes, signature) = BundleFile.ReadHead(bundle);
        var signer = CheckSignature(bundle, manifestBytes, signature, caFile, now);
        BundleManifest manifest;
        try
        {
            manifest = JsonSerializer.Deserialize(manifestBytes, UpdateJson.Default.BundleManifest)
                ?? throw new JsonException("empty");
        }
        catch (JsonException ex)
        {
            throw new UpdateException(bundle, $"the signed manifest.json is not valid: {ex.Message}", "the vendor's bundle tool is broken; ask for a new bundle", ExitCodes.InvalidConfig, ex);
        }

        CheckTarget(bundle, manifest, running, allowDowngrade);
        CheckPayload(bundle, manifest);
        return (manifest, signer);
    }

    /// <summary>Verifies the detached signature and the signer's chain; returns the signer's subject.</summary>
    public static string CheckSignature(string where, byte[] content, byte[] signature, string caFile, DateTimeOffset now)
    {
        var roots = new X509Certificate2Collection();
        try
        {
            roots.ImportFromPemFile(caFile);
        }
        catch (Exception ex) when (ex is CryptographicException or IOException or UnauthorizedAccessException)
        {
            throw new UpdateException("update-ca", $"cannot read the update CA {caFile}: {ex.Message}",
                "set update-ca (appliance.toml [update], --update-ca) to the vendor's CA certificate PEM file", ExitCodes.InvalidConfig, ex);
        }

        if (roots.Count == 0)
        {
            throw new UpdateException("update-ca", $"{caFile} holds no certificate", "put the vendor's CA certificate (PEM) in it", ExitCodes.InvalidConfig);
        }

        var cms = new SignedCms(new ContentInfo(content), detached: true);
        try
        {
            cms.Decode(signature);
        }
        catch (CryptographicException ex)
        {
            throw new UpdateException(where, $"manifest.json.p7s is not a CMS signature: {ex.Message}", "download the bundle again from the vendor", ExitCodes.InvalidConfig, ex);
        }

        if (cms.SignerInfos.Count != 1 || cms.SignerInfos[0].Certificate is not { } cert)
        {
            throw new UpdateException(where, $"the signature has {cms.SignerInfos.Count} signers or no signer certificate", "sign with exactly one vendor certificate (coracle update bundle, or openssl cms -sign -signer)", ExitCodes.InvalidConfig);
        }

        try
        {
            cms.CheckSignature(verifySignatureOnly: true);
        }
        catch (CryptographicException ex)
        {
            throw new UpdateException(where, $"the signature by {cert.Subject} does not match manifest.json ({ex.Message})", "the bundle was altered after signing: download it again from the vendor", ExitCodes.InvalidConfig, ex);
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(roots);
        chain.ChainPolicy.ExtraStore.AddRange(cms.Certificates);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.VerificationTime = now.UtcDateTime;
        chain.ChainPolicy.VerificationTimeIgnored = false;
        chain.ChainPolicy.ApplicationPolicy.Add(new Oid(CodeSigningOid));
        if (!chain.Build(cert))
        {
            var flags = chain.ChainStatus.Aggregate(X509ChainStatusFlags.NoError, (all, s) => all | s.Status);
            var what = flags.HasFlag(X509ChainStatusFlags.NotTimeValid)
                ? $"the signer certificate {cert.Subject} (or one above it) is not valid now: valid {cert.NotBefore.ToUniversalTime().ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)} to {cert.NotAfter.ToUniversalTime().ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)}"
                : flags.HasFlag(X509ChainStatusFlags.UntrustedRoot) || flags.HasFlag(X509ChainStatusFlags.PartialChain)
                    ? $"the signer {cert.Subject} (issuer {cert.Issuer}) does not chain to the update CA {caFile}"
                    : flags.HasFlag(X509ChainStatusFlags.NotValidForUsage)
                        ? $"the signer certificate {cert.Subject} lacks the code-signing extended key usage"
                        : $"the signer certificate {cert.Subject} is not trusted: {string.Join(", ", chain.ChainStatus.Select(s => s.Status))}";
            throw new UpdateException(where, what, "only bundles signed by a current vendor certificate under update-ca are applied; ask the vendor for a correctly signed bundle", ExitCodes.InvalidConfig);
        }

        return cert.Subject;
    }

    private static void CheckTarget(string where, BundleManifest manifest, RunningImage running, bool allowDowngrade)
    {
        if (manifest.Format != 1)
        {
            throw new UpdateException(where, $"bundle format {manifest.Format} is unknown to this Coracle", "update in steps through a release that knows it", ExitCodes.InvalidConfig);
        }

        if (!string.Equals(manifest.Rid, running.Rid, StringComparison.Ordinal))
        {
            throw new UpdateException(where, $"the bundle is for {manifest.Rid}, this device runs {running.Rid}", $"use the {running.Rid} bundle of version {manifest.Version}", ExitCodes.InvalidConfig);
        }

        if (running.Profile.Length > 0 && !string.Equals(manifest.Profile, running.Profile, StringComparison.Ordinal))
        {
            throw new UpdateException(where, $"the bundle is of profile '{manifest.Profile}', this device runs profile '{running.Profile}'", $"use the '{running.Profile}' bundle of version {manifest.Version}", ExitCodes.InvalidConfig);
        }

        if (running.Version.Length > 0 && manifest.MinVersion.Length > 0 && Versions.Compare(running.Version, manifest.MinVersion) < 0)
        {
            throw new UpdateException(where, $"version {manifest.Version} updates only from {manifest.MinVersion} or later, this device runs {running.Version}", $"apply a bundle of version {manifest.MinVersion} first", ExitCodes.InvalidConfig);
        }

        if (running.Version.Length > 0 && !allowDowngrade && Versions.Compare(manifest.Version, running.Version) <= 0)
        {
            throw new UpdateException(where, $"the bundle's version {manifest.Version} is not newer than the running {running.Version}", "pass --allow-downgrade to install it anyway", ExitCodes.InvalidConfig);
        }
    }

    private static void CheckPayload(string where, BundleManifest manifest)
    {
        var (size, hash) = BundleFile.ReadPayload(where, payload =>
        {
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var buffer = new byte[1 << 16];
            long total = 0;
            int n;
            while ((n = payload.Read(buffer)) > 0)
            {
                sha.AppendData(buffer, 0, n);
                total += n;
            }

            return (total, Versions.Hex(sha.GetHashAndReset()));
        });
        if (size != manifest.PayloadSize || hash != manifest.PayloadSha256)
        {
            throw new UpdateException(where, $"payload.tar.gz ({size} bytes, SHA-256 {hash[..16]}…) differs from the signed manifest ({manifest.PayloadSize} bytes, {manifest.PayloadSha256[..Math.Min(16, manifest.PayloadSha256.Length)]}…)",
                "the payload was altered or cut short: download the bundle again", ExitCodes.InvalidConfig);
        }
    }
}
