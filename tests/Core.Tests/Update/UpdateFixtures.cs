using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Reflection;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Coracle.Core.Tests.Support;

namespace Coracle.Core.Tests.Update;

/// <summary>Certificates made by openssl for the update tests: the update CA, a vendor under it, a foreign CA and vendor, an expired vendor, an HTTPS server.</summary>
internal sealed class UpdatePki
{
    public UpdatePki(string dir)
    {
        Dir = dir;
        Directory.CreateDirectory(dir);
        BackdatedCa("ca", "Test Update CA");
        Leaf("vendor", "ca", "Test Vendor", "extendedKeyUsage=codeSigning");
        Ca("foreign-ca", "Foreign CA");
        Leaf("foreign", "foreign-ca", "Foreign Vendor", "extendedKeyUsage=codeSigning");
        Leaf("server", "ca", "127.0.0.1", "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1");
        Expired("expired", "ca", "Expired Vendor");
    }

    public string Dir { get; }

    public string Cert(string name) => Path.Combine(Dir, name + ".pem");

    public string Key(string name) => Path.Combine(Dir, name + ".key");

    private void Ca(string name, string cn) => Run.OpenSsl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", Key(name), "-out", Cert(name), "-days", "30", "-subj", "/CN=" + cn,
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign");

    /// <summary>
    /// The update CA: an openssl key, self-signed with .NET valid from 30 days ago (openssl 3.0 cannot backdate), so
    /// that the expired vendor certificate below can lie inside its validity.
    /// </summary>
    private void BackdatedCa(string name, string cn)
    {
        Run.OpenSsl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", Key(name));
        using var key = ECDsa.Create();
        key.ImportFromPem(File.ReadAllText(Key(name)));
        var request = new CertificateRequest("CN=" + cn, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        using var cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-30), DateTimeOffset.UtcNow.AddDays(30));
        File.WriteAllText(Cert(name), cert.ExportCertificatePem());
    }

    private void Leaf(string name, string ca, string cn, string extensions)
    {
        var csr = Path.Combine(Dir, name + ".csr");
        var ext = Path.Combine(Dir, name + ".ext");
        File.WriteAllText(ext, $"basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n{extensions}\n");
        Run.OpenSsl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", Key(name), "-out", csr, "-subj", "/CN=" + cn);
        Run.OpenSsl("x509", "-req", "-in", csr, "-CA", Cert(ca), "-CAkey", Key(ca), "-set_serial", RandomNumberGenerator.GetInt32(1000, int.MaxValue).ToString(System.Globalization.CultureInfo.InvariantCulture),
            "-days", "30", "-extfile", ext, "-out", Cert(name));
    }

    /// <summary>openssl 3.0 cannot date a certificate in the past; this one is made with .NET under the same openssl CA.</summary>
    private void Expired(string name, string ca, string cn)
    {
        using var issuer = X509Certificate2.CreateFromPemFile(Cert(ca), Key(ca));
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=" + cn, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.3")], false));
        using var cert = request.Create(issuer, DateTimeOffset.UtcNow.AddDays(-20), DateTimeOffset.UtcNow.AddDays(-1), [7, 7, 7, 7]);
        File.WriteAllText(Cert(name), cert.ExportCertificatePem());
        File.WriteAllText(Key(name), key.ExportPkcs8PrivateKeyPem());
    }
}

/// <summary>Image tarballs in the agreed layout (entries under usr/lib/coracle/, image.json), and the slots of an install root.</summary>
internal static class Images
{
    public const UnixFileMode Exec = (UnixFileMode)0x1ED; // 0755

    public static string ImageJson(string version, string rid = "linux-x64", string profile = "test") =>
        $"{{\"profile\":\"{profile}\",\"rid\":\"{rid}\",\"version\":\"{version}\",\"plugins\":[\"basic\"]}}";

    /// <summary>Writes a .tar.gz of <paramref name="files"/> (path below usr/lib/coracle/ -> content, mode).</summary>
    public static string Tarball(string path, IEnumerable<(string Path, byte[] Content, UnixFileMode Mode)> files)
    {
        using var stream = File.Create(path);
        using var gzip = new GZipStream(stream, CompressionLevel.Fastest);
        using var tar = new TarWriter(gzip, TarEntryFormat.Pax);
        foreach (var dir in new[] { "usr/", "usr/lib/", "usr/lib/coracle/" })
        {
            tar.WriteEntry(new PaxTarEntry(TarEntryType.Directory, dir) { Mode = Exec });
        }

        var dirs = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (file, content, mode) in files)
        {
            var parent = Path.GetDirectoryName(file);
            if (!string.IsNullOrEmpty(parent) && dirs.Add(parent))
            {
                tar.WriteEntry(new PaxTarEntry(TarEntryType.Directory, $"usr/lib/coracle/{parent}/") { Mode = Exec });
            }

            tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "usr/lib/coracle/" + file) { Mode = mode, DataStream = new MemoryStream(content) });
        }

        return path;
    }

    /// <summary>A slot whose coracle is a shell script, with image.json of <paramref name="version"/>.</summary>
    public static List<(string, byte[], UnixFileMode)> Scripted(string version, string script, UnixFileMode mode = Exec, string rid = "linux-x64") =>
    [
        ("coracle", Encoding.UTF8.GetBytes(script), mode),
        ("image.json", Encoding.UTF8.GetBytes(ImageJson(version, rid)), (UnixFileMode)0x1A4),
        ("bin/README", Encoding.UTF8.GetBytes("components\n"), (UnixFileMode)0x1A4),
    ];

    /// <summary>The real host (the build output, its plugins left out) with the Basic test plugin, and image.json of <paramref name="version"/>.</summary>
    public static List<(string, byte[], UnixFileMode)> RealHost(string version)
    {
        var files = new List<(string, byte[], UnixFileMode)>();
        foreach (var file in Directory.GetFiles(HostDir))
        {
            files.Add((Path.GetFileName(file), File.ReadAllBytes(file), File.GetUnixFileMode(file)));
        }

        var plugin = Path.Combine(RepoRoot, "tests", "TestPlugins", "Coracle.TestPlugins.Basic", "bin", Configuration, "net10.0");
        foreach (var file in Directory.GetFiles(plugin))
        {
            files.Add(($"plugins/Coracle.TestPlugins.Basic/{Path.GetFileName(file)}", File.ReadAllBytes(file), (UnixFileMode)0x1A4));
        }

        files.Add(("image.json", Encoding.UTF8.GetBytes(ImageJson(version)), (UnixFileMode)0x1A4));
        return files;
    }

    /// <summary>
    /// The real host with some of the repo's real plugins (their build-output folders under Core/bin's plugins/), and
    /// image.json of <paramref name="version"/>: a slot whose server runs a real datastore.
    /// </summary>
    public static List<(string, byte[], UnixFileMode)> RealHostWithPlugins(string version, params string[] plugins)
    {
        var files = new List<(string, byte[], UnixFileMode)>();
        foreach (var file in Directory.GetFiles(HostDir))
        {
            files.Add((Path.GetFileName(file), File.ReadAllBytes(file), File.GetUnixFileMode(file)));
        }

        foreach (var plugin in plugins)
        {
            var dir = Path.Combine(HostDir, "plugins", plugin);
            foreach (var file in Directory.GetFiles(dir, "*", SearchOption.AllDirectories))
            {
                files.Add(($"plugins/{plugin}/{Path.GetRelativePath(dir, file)}", File.ReadAllBytes(file), (UnixFileMode)0x1A4));
            }
        }

        files.Add(("image.json", Encoding.UTF8.GetBytes(ImageJson(version)), (UnixFileMode)0x1A4));
        return files;
    }

    /// <summary>Writes <paramref name="files"/> (path below <paramref name="dir"/>, content, mode) into <paramref name="dir"/>.</summary>
    public static string LayOut(string dir, IEnumerable<(string Path, byte[] Content, UnixFileMode Mode)> files)
    {
        foreach (var (file, content, mode) in files)
        {
            var target = Path.Combine(dir, file);
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.WriteAllBytes(target, content);
            File.SetUnixFileMode(target, mode);
        }

        return dir;
    }

    /// <summary>A fresh install root: <paramref name="files"/> in slots/a, current -> slots/a, the boot guard in update/.</summary>
    public static string Install(string root, IEnumerable<(string Path, byte[] Content, UnixFileMode Mode)> files)
    {
        LayOut(Path.Combine(root, "slots", "a"), files);
        Directory.CreateDirectory(Path.Combine(root, "slots", "b"));
        File.CreateSymbolicLink(Path.Combine(root, "current"), "slots/a");
        Directory.CreateDirectory(Path.Combine(root, "update"));
        File.Copy(Path.Combine(RepoRoot, "packaging", "update", "boot-guard"), Path.Combine(root, "update", "boot-guard"));
        File.SetUnixFileMode(Path.Combine(root, "update", "boot-guard"), Exec);
        return root;
    }

    /// <summary>SHA-256 over every file path and content under <paramref name="dir"/>: proves a slot untouched.</summary>
    public static string TreeHash(string dir)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var file in Directory.GetFiles(dir, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            sha.AppendData(Encoding.UTF8.GetBytes(Path.GetRelativePath(dir, file) + ((int)File.GetUnixFileMode(file)).ToString(System.Globalization.CultureInfo.InvariantCulture)));
            sha.AppendData(File.ReadAllBytes(file));
        }

        return Convert.ToHexString(sha.GetHashAndReset());
    }

    public static string RepoRoot { get; } = typeof(Images).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().First(a => a.Key == "RepoRoot").Value!;

#if DEBUG
    public const string Configuration = "Debug";
#else
    public const string Configuration = "Release";
#endif

    public static string HostDir => Path.Combine(RepoRoot, "Core", "bin", Configuration, "net10.0");

    public static string Coracle => Path.Combine(HostDir, "coracle");

    /// <summary>A clean environment for a coracle under test: no /etc/coracle file, its run dir and HOME under <paramref name="home"/>, no CORACLE_K8S_BIN.</summary>
    public static void CleanEnvironment(ProcessStartInfo start, string home)
    {
        start.Environment["CORACLE_CONFIG_FILE"] = "";
        start.Environment["CORACLE_RUN_DIR"] = Path.Combine(home, "run");
        start.Environment["HOME"] = home;
        start.Environment.Remove("CORACLE_K8S_BIN");
    }

    /// <summary>Runs the built coracle with a clean environment (no /etc/coracle file, its own run dir).</summary>
    public static (int ExitCode, string Stdout, string Stderr) Cli(string home, IDictionary<string, string>? env, params string[] args)
    {
        var start = new ProcessStartInfo(Coracle) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        CleanEnvironment(start, home);
        foreach (var (key, value) in env ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEnd();
        if (!process.WaitForExit(TimeSpan.FromMinutes(3)))
        {
            process.Kill(entireProcessTree: true);
        }

        process.WaitForExit();
        return (process.ExitCode, stdout.Result, stderr);
    }

    /// <summary>The last line of <paramref name="stderr"/> that is an error line.</summary>
    public static string ErrorLine(string stderr) =>
        stderr.Split('\n').LastOrDefault(l => l.StartsWith("coracle: error:", StringComparison.Ordinal)) ?? $"(no error line in: {stderr})";
}
