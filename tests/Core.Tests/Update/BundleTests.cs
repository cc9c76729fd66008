using System.Formats.Tar;
using System.Security.Cryptography;
using System.Text;
using Coracle.Core.Tests.Support;
using Coracle.Core.Update;

namespace Coracle.Core.Tests.Update;

/// <summary>
/// Bundles: signatures checked both ways against the real openssl, and every refusal of <c>coracle update apply</c>
/// (the real CLI) with its one-line error and exit code, the running slot untouched.
/// </summary>
public sealed class BundleTests : IDisposable
{
    private const string Exit0 = "#!/bin/sh\nexit 0\n";
    private readonly TempDir _temp = new("crt-ota");
    private readonly UpdatePki _pki;

    public BundleTests() => _pki = new UpdatePki(_temp.Combine("pki"));

    public void Dispose() => _temp.Dispose();

    private string MakeBundle(string name, string version, string signer = "vendor", string rid = "linux-x64")
    {
        var image = Images.Tarball(_temp.Combine(name + ".tar.gz"), Images.Scripted(version, Exit0, rid: rid));
        var bundle = _temp.Combine(name + ".cub");
        var (code, _, stderr) = Images.Cli(_temp.Path, null, "update", "bundle", "--image", image, "--key", _pki.Key(signer), "--cert", _pki.Cert(signer), "--version", version, "-o", bundle);
        Assert.True(code == 0, stderr);
        return bundle;
    }

    private static Dictionary<string, byte[]> Entries(string bundle)
    {
        var entries = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        using var stream = File.OpenRead(bundle);
        using var tar = new TarReader(stream);
        while (tar.GetNextEntry() is { } entry)
        {
            using var data = new MemoryStream();
            entry.DataStream!.CopyTo(data);
            entries[entry.Name] = data.ToArray();
        }

        return entries;
    }

    private static void WriteBundle(string bundle, Dictionary<string, byte[]> entries)
    {
        using var stream = File.Create(bundle);
        using var tar = new TarWriter(stream, TarEntryFormat.Pax);
        foreach (var name in new[] { BundleFile.ManifestName, BundleFile.SignatureName, BundleFile.PayloadName })
        {
            tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(entries[name]) });
        }
    }

    private string InstallV2()
    {
        var root = Images.Install(_temp.Combine("root"), Images.Scripted("2.0.0", Exit0));
        return root;
    }

    [Fact]
    public void Bundle_SignedByCoracle_OpensslCmsVerifyAccepts()
    {
        var entries = Entries(MakeBundle("v3", "3.0.0"));
        var manifest = _temp.Combine("manifest.json");
        var signature = _temp.Combine("manifest.json.p7s");
        File.WriteAllBytes(manifest, entries[BundleFile.ManifestName]);
        File.WriteAllBytes(signature, entries[BundleFile.SignatureName]);

        // The vendor certificate carries code signing, not S/MIME: openssl's default purpose check is S/MIME, hence -purpose any.
        var (code, _, stderr) = Run.Tool("openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", signature, "-content", manifest,
            "-CAfile", _pki.Cert("ca"), "-purpose", "any", "-out", "/dev/null");
        Assert.True(code == 0, stderr);
        Assert.Contains("Verification successful", stderr, StringComparison.Ordinal);

        // And openssl refuses it under the foreign CA: the check is real.
        var (foreign, _, _) = Run.Tool("openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", signature, "-content", manifest,
            "-CAfile", _pki.Cert("foreign-ca"), "-purpose", "any", "-out", "/dev/null");
        Assert.NotEqual(0, foreign);
    }

    [Fact]
    public void Verify_SignatureMadeByOpenssl_Accepted()
    {
        var bundle = MakeBundle("v3", "3.0.0");
        var entries = Entries(bundle);
        var manifest = _temp.Write("manifest.json", "");
        File.WriteAllBytes(manifest, entries[BundleFile.ManifestName]);
        var signature = _temp.Combine("openssl.p7s");
        Run.OpenSsl("cms", "-sign", "-binary", "-in", manifest, "-signer", _pki.Cert("vendor"), "-inkey", _pki.Key("vendor"), "-md", "sha256", "-outform", "DER", "-out", signature);
        entries[BundleFile.SignatureName] = File.ReadAllBytes(signature);
        WriteBundle(bundle, entries);

        var (checkedManifest, signer) = BundleVerifier.Verify(bundle, _pki.Cert("ca"), new RunningImage("2.0.0", "test", "linux-x64"), allowDowngrade: false, DateTimeOffset.UtcNow);

        Assert.Equal("CN=Test Vendor", signer);
        Assert.Equal("3.0.0", checkedManifest.Version);
    }

    [Fact]
    public void Verify_OpensslSignatureByForeignVendor_Refused()
    {
        var bundle = MakeBundle("v3", "3.0.0");
        var entries = Entries(bundle);
        var manifest = _temp.Combine("manifest.json");
        File.WriteAllBytes(manifest, entries[BundleFile.ManifestName]);
        var signature = _temp.Combine("openssl.p7s");
        Run.OpenSsl("cms", "-sign", "-binary", "-in", manifest, "-signer", _pki.Cert("foreign"), "-inkey", _pki.Key("foreign"), "-md", "sha256", "-outform", "DER", "-out", signature);
        entries[BundleFile.SignatureName] = File.ReadAllBytes(signature);
        WriteBundle(bundle, entries);

        var ex = Assert.Throws<UpdateException>(() => BundleVerifier.Verify(bundle, _pki.Cert("ca"), new RunningImage("2.0.0", "test", "linux-x64"), false, DateTimeOffset.UtcNow));

        Assert.Equal($"{bundle}: the signer CN=Foreign Vendor (issuer CN=Foreign CA) does not chain to the update CA {_pki.Cert("ca")}; only bundles signed by a current vendor certificate under update-ca are applied; ask the vendor for a correctly signed bundle", ex.Message);
    }

    public static TheoryData<string> Refusals => ["tampered-payload", "tampered-manifest", "wrong-signer", "expired", "wrong-rid", "downgrade", "not-a-bundle"];

    [Theory]
    [MemberData(nameof(Refusals))]
    public void Apply_BadBundle_RefusedWithOneLineAndSlotUntouched(string scenario)
    {
        var root = InstallV2();
        var before = Images.TreeHash(Path.Combine(root, "slots", "a"));
        var ca = _pki.Cert("ca");
        string bundle;
        string expected;
        switch (scenario)
        {
            case "tampered-payload":
            {
                bundle = MakeBundle("v3", "3.0.0");
                var entries = Entries(bundle);
                var signedHash = Convert.ToHexStringLower(SHA256.HashData(entries[BundleFile.PayloadName]));
                entries[BundleFile.PayloadName][^1] ^= 0x55;
                WriteBundle(bundle, entries);
                var size = entries[BundleFile.PayloadName].Length;
                var hash = Convert.ToHexStringLower(SHA256.HashData(entries[BundleFile.PayloadName]));
                expected = $"{bundle}: payload.tar.gz ({size} bytes, SHA-256 {hash[..16]}…) differs from the signed manifest ({size} bytes, {signedHash[..16]}…); the payload was altered or cut short: download the bundle again";
                break;
            }

            case "tampered-manifest":
            {
                bundle = MakeBundle("v3", "3.0.0");
                var entries = Entries(bundle);
                entries[BundleFile.ManifestName] = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(entries[BundleFile.ManifestName]).Replace("\"3.0.0\"", "\"3.0.1\"", StringComparison.Ordinal));
                WriteBundle(bundle, entries);
                var (_, _, stderr0) = Images.Cli(_temp.Path, null, "update", "apply", bundle, "--install-root", root, "--update-ca", ca, "--no-restart");
                // The CMS library's reason is its own text; the line's frame is ours.
                var line = Images.ErrorLine(stderr0);
                Assert.StartsWith($"coracle: error: {bundle}: the signature by CN=Test Vendor does not match manifest.json (", line, StringComparison.Ordinal);
                Assert.EndsWith("); the bundle was altered after signing: download it again from the vendor", line, StringComparison.Ordinal);
                expected = line["coracle: error: ".Length..];
                break;
            }

            case "wrong-signer":
                bundle = MakeBundle("v3", "3.0.0", signer: "foreign");
                expected = $"{bundle}: the signer CN=Foreign Vendor (issuer CN=Foreign CA) does not chain to the update CA {ca}; only bundles signed by a current vendor certificate under update-ca are applied; ask the vendor for a correctly signed bundle";
                break;
            case "expired":
            {
                bundle = MakeBundle("v3", "3.0.0", signer: "expired");
                var cert = System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPem(File.ReadAllText(_pki.Cert("expired")));
                expected = $"{bundle}: the signer certificate CN=Expired Vendor (or one above it) is not valid now: valid {cert.NotBefore.ToUniversalTime():yyyy-MM-dd} to {cert.NotAfter.ToUniversalTime():yyyy-MM-dd}; only bundles signed by a current vendor certificate under update-ca are applied; ask the vendor for a correctly signed bundle";
                break;
            }

            case "wrong-rid":
                bundle = MakeBundle("v3", "3.0.0", rid: "linux-arm64");
                expected = $"{bundle}: the bundle is for linux-arm64, this device runs linux-x64; use the linux-x64 bundle of version 3.0.0";
                break;
            case "downgrade":
                bundle = MakeBundle("v1", "1.0.0");
                expected = $"{bundle}: the bundle's version 1.0.0 is not newer than the running 2.0.0; pass --allow-downgrade to install it anyway";
                break;
            default:
                bundle = _temp.Write("junk.cub", "not a tar at all, just text that is long enough to fill a header block? no.");
                expected = "";
                break;
        }

        var (code, _, stderr) = Images.Cli(_temp.Path, null, "update", "apply", bundle, "--install-root", root, "--update-ca", ca, "--no-restart");

        Assert.Equal(ExitCodes.InvalidConfig, code);
        var errorLines = stderr.Split('\n').Where(l => l.StartsWith("coracle: error:", StringComparison.Ordinal)).ToList();
        Assert.Single(errorLines);
        if (expected.Length > 0)
        {
            Assert.Equal("coracle: error: " + expected, errorLines[0]);
        }
        else
        {
            Assert.StartsWith($"coracle: error: {bundle}: not a complete Coracle bundle (", errorLines[0], StringComparison.Ordinal);
        }

        Assert.Equal("slots/a", new FileInfo(Path.Combine(root, "current")).LinkTarget);
        Assert.Equal(before, Images.TreeHash(Path.Combine(root, "slots", "a")));
        Assert.Equal("", UpdateState.Read(Path.Combine(root, "update", "state"))?.Trial ?? "");
    }

    [Fact]
    public void Apply_DowngradeWithAllowDowngrade_Applied()
    {
        var root = InstallV2();
        var bundle = MakeBundle("v1", "1.0.0");

        var (code, stdout, stderr) = Images.Cli(_temp.Path, null, "update", "apply", bundle, "--install-root", root, "--update-ca", _pki.Cert("ca"), "--no-restart", "--allow-downgrade");

        Assert.True(code == 0, stderr);
        Assert.Contains("version 1.0.0 is in slot b", stdout, StringComparison.Ordinal);
        Assert.Equal("slots/b", new FileInfo(Path.Combine(root, "current")).LinkTarget);
    }

    [Fact]
    public void Bundle_ImageWithoutImageJson_ExitCode2()
    {
        var image = Images.Tarball(_temp.Combine("bare.tar.gz"), [("coracle", Encoding.UTF8.GetBytes(Exit0), Images.Exec)]);

        var (code, _, stderr) = Images.Cli(_temp.Path, null, "update", "bundle", "--image", image, "--key", _pki.Key("vendor"), "--cert", _pki.Cert("vendor"), "--version", "1.0.0", "-o", _temp.Combine("x.cub"));

        Assert.Equal(ExitCodes.InvalidConfig, code);
        Assert.Equal($"coracle: error: --image: {image} has no usr/lib/coracle/image.json with a rid; build the image with packaging/build-image.sh, which writes it", Images.ErrorLine(stderr));
    }

    [Fact]
    public void Apply_NoUpdateCa_ExitCode2()
    {
        var root = InstallV2();
        var bundle = MakeBundle("v3", "3.0.0");
        var missing = _temp.Combine("nope.pem");

        var (code, _, stderr) = Images.Cli(_temp.Path, null, "update", "apply", bundle, "--install-root", root, "--update-ca", missing, "--no-restart");

        Assert.Equal(ExitCodes.InvalidConfig, code);
        Assert.StartsWith($"coracle: error: update-ca: cannot read the update CA {missing}: ", Images.ErrorLine(stderr), StringComparison.Ordinal);
        Assert.EndsWith("; set update-ca (appliance.toml [update], --update-ca) to the vendor's CA certificate PEM file", Images.ErrorLine(stderr), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("1.2.3", "1.2.10", -1)]
    [InlineData("2.0.0", "2.0.0-rc1", 1)]
    [InlineData("2.0.0-rc1", "2.0.0-rc2", -1)]
    [InlineData("1.10", "1.9.9", 1)]
    public void Compare_Versions_Ordered(string a, string b, int sign) => Assert.Equal(sign, Math.Sign(Versions.Compare(a, b)));

    [Fact]
    public void ImagePath_EntryOutsidePrefix_Refused()
    {
        Assert.Null(BundleFile.ImagePath("./usr/lib/", "x"));
        Assert.Equal("bin/kubelet", BundleFile.ImagePath("usr/lib/coracle/bin/kubelet", "x"));
        var ex = Assert.Throws<UpdateException>(() => BundleFile.ImagePath("usr/lib/coracle/../../etc/passwd", "img"));
        Assert.Equal("img: payload entry 'usr/lib/coracle/../../etc/passwd' is outside usr/lib/coracle/; an image holds only files below usr/lib/coracle/", ex.Message);
    }
}
