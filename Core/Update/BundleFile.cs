using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Security.Cryptography.Pkcs;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;

namespace Coracle.Core.Update;

/// <summary>
/// A bundle: an uncompressed tar of exactly three entries, in order: <c>manifest.json</c>, <c>manifest.json.p7s</c>
/// (a detached CMS SignedData over manifest.json, DER) and <c>payload.tar.gz</c> (the image tarball unchanged).
/// </summary>
internal static class BundleFile
{
    public const string ManifestName = "manifest.json";
    public const string SignatureName = "manifest.json.p7s";
    public const string PayloadName = "payload.tar.gz";

    /// <summary>Where the image's files are in the payload; a slot holds what is below it.</summary>
    public const string ImagePrefix = "usr/lib/coracle/";

    private const int MaxSmallEntry = 16 << 20;

    /// <summary>
    /// Builds a bundle from an image tarball: every file hashed, the manifest signed with <paramref name="certFile"/>
    /// and <paramref name="keyFile"/> (PEM; further certificates in the certificate file travel as the chain).
    /// </summary>
    public static BundleManifest Build(string image, string keyFile, string certFile, string version, string minVersion, string output)
    {
        if (!Versions.TryParse(version, out _))
        {
            throw new UpdateException("--version", $"'{version}' is not a version", "use MAJOR.MINOR.PATCH[-PRERELEASE], like 1.4.0", ExitCodes.InvalidConfig);
        }

        if (minVersion.Length > 0 && !Versions.TryParse(minVersion, out _))
        {
            throw new UpdateException("--min-version", $"'{minVersion}' is not a version", "use MAJOR.MINOR.PATCH[-PRERELEASE], like 1.2.0", ExitCodes.InvalidConfig);
        }

        var (files, info) = ScanImage(image);
        if (info.Version.Length > 0 && info.Version != version)
        {
            throw new UpdateException("--version", $"{image} says version {info.Version} in {ImagePrefix}image.json, not {version}",
                "pass the image's own version, or rebuild the image with this one", ExitCodes.InvalidConfig);
        }

        byte[] payloadHash;
        long payloadSize;
        using (var payload = File.OpenRead(image))
        {
            payloadHash = SHA256.HashData(payload);
            payloadSize = payload.Length;
        }

        var manifest = new BundleManifest
        {
            Version = version,
            Profile = info.Profile,
            Rid = info.Rid,
            MinVersion = minVersion,
            Created = Versions.Now(),
            PayloadSize = payloadSize,
            PayloadSha256 = Versions.Hex(payloadHash),
            Files = files,
        };
        var manifestBytes = JsonSerializer.SerializeToUtf8Bytes(manifest, UpdateJson.Default.BundleManifest);
        var signature = Sign(manifestBytes, keyFile, certFile);

        var temp = output + ".tmp";
        using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write))
        {
            using (var tar = new TarWriter(stream, TarEntryFormat.Pax, leaveOpen: true))
            {
                Add(tar, ManifestName, new MemoryStream(manifestBytes));
                Add(tar, SignatureName, new MemoryStream(signature));
                using var payload = File.OpenRead(image);
                Add(tar, PayloadName, payload);
            }

            stream.Flush(flushToDisk: true);
        }

        File.Move(temp, output, overwrite: true);
        return manifest;
    }

    private static void Add(TarWriter tar, string name, Stream data)
    {
        var entry = new PaxTarEntry(TarEntryType.RegularFile, name)
        {
            DataStream = data,
            Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead,
            ModificationTime = DateTimeOffset.UnixEpoch,
        };
        tar.WriteEntry(entry);
    }

    /// <summary>A detached CMS SignedData (DER) over <paramref name="content"/>, SHA-256, with the signer's chain.</summary>
    public static byte[] Sign(byte[] content, string keyFile, string certFile)
    {
        X509Certificate2 signerCert;
        var chain = new X509Certificate2Collection();
        try
        {
            chain.ImportFromPemFile(certFile);
            signerCert = X509Certificate2.CreateFromPemFile(certFile, keyFile);
        }
        catch (Exception ex) when (ex is CryptographicException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            throw new UpdateException("--key/--cert", $"cannot load the signing key {keyFile} with certificate {certFile}: {ex.Message}",
                "give the vendor's PEM private key and its PEM certificate (first in the file, then any intermediates)", ExitCodes.InvalidConfig, ex);
        }

        using (signerCert)
        {
            // An ephemeral copy: the PEM key is not persisted anywhere.
            var signer = new CmsSigner(SubjectIdentifierType.IssuerAndSerialNumber, signerCert)
            {
                DigestAlgorithm = new Oid("2.16.840.1.101.3.4.2.1"),
                IncludeOption = X509IncludeOption.EndCertOnly,
            };
            foreach (var extra in chain.Skip(1))
            {
                signer.Certificates.Add(extra);
            }

            var cms = new SignedCms(new ContentInfo(content), detached: true);
            cms.ComputeSignature(signer, silent: true);
            return cms.Encode();
        }
    }

    /// <summary>The payload files of an image tarball with their hashes, and its <c>image.json</c>.</summary>
    private static (List<BundleEntry> Files, ImageInfo Info) ScanImage(string image)
    {
        var files = new List<BundleEntry>();
        ImageInfo? info = null;
        try
        {
            using var stream = File.OpenRead(image);
            using var gzip = new GZipStream(stream, CompressionMode.Decompress);
            using var tar = new TarReader(gzip);
            while (tar.GetNextEntry() is { } entry)
            {
                var path = ImagePath(entry.Name, image);
                if (path is null)
                {
                    continue;
                }

                switch (entry.EntryType)
                {
                    case TarEntryType.Directory:
                        break;
                    case TarEntryType.RegularFile or TarEntryType.V7RegularFile:
                        using (var data = new MemoryStream())
                        {
                            entry.DataStream?.CopyTo(data);
                            var bytes = data.ToArray();
                            files.Add(new BundleEntry { Path = path, Size = bytes.Length, Sha256 = Versions.Hex(SHA256.HashData(bytes)), Mode = Versions.Mode(entry.Mode) });
                            if (path == "image.json")
                            {
                                info = ImageInfo.Parse(bytes);
                            }
                        }

                        break;
                    case TarEntryType.SymbolicLink:
                        files.Add(new BundleEntry { Path = path, Link = entry.LinkName, Mode = "0777" });
                        break;
                    default:
                        throw new UpdateException("--image", $"{image}: entry {entry.Name} is a {entry.EntryType}",
                            "an image holds only folders, regular files and symlinks", ExitCodes.InvalidConfig);
                }
            }
        }
        catch (Exception ex) when (ex is InvalidDataException or IOException or JsonException && ex is not UpdateException)
        {
            throw new UpdateException("--image", $"cannot read {image} as a .tar.gz image: {ex.Message}", "give the tarball packaging/build-image.sh makes", ExitCodes.InvalidConfig, ex);
        }

        if (info is null || info.Rid.Length == 0)
        {
            throw new UpdateException("--image", $"{image} has no {ImagePrefix}image.json with a rid", "build the image with packaging/build-image.sh, which writes it", ExitCodes.InvalidConfig);
        }

        if (!files.Any(f => f.Path == "coracle"))
        {
            throw new UpdateException("--image", $"{image} has no {ImagePrefix}coracle", "build the image with packaging/build-image.sh", ExitCodes.InvalidConfig);
        }

        return (files, info);
    }

    /// <summary>The path below <see cref="ImagePrefix"/> of a tar entry, null for the prefix's own folders; throws for anything else.</summary>
    public static string? ImagePath(string name, string where)
    {
        var path = name.StartsWith("./", StringComparison.Ordinal) ? name[2..] : name;
        path = path.TrimEnd('/');
        if (path.Length == 0 || ImagePrefix.StartsWith(path + "/", StringComparison.Ordinal))
        {
            return null;
        }

        if (!path.StartsWith(ImagePrefix, StringComparison.Ordinal) || path.Split('/').Any(p => p is ".." or "." or ""))
        {
            throw new UpdateException(where, $"payload entry '{name}' is outside {ImagePrefix}", "an image holds only files below usr/lib/coracle/", ExitCodes.InvalidConfig);
        }

        return path[ImagePrefix.Length..];
    }

    /// <summary>The manifest and signature of a bundle file, and whether it has a payload entry after them.</summary>
    public static (byte[] Manifest, byte[] Signature) ReadHead(string bundle)
    {
        try
        {
            using var stream = File.OpenRead(bundle);
            using var tar = new TarReader(stream);
            var manifest = Small(tar.GetNextEntry(), ManifestName, bundle);
            var signature = Small(tar.GetNextEntry(), SignatureName, bundle);
            return (manifest, signature);
        }
        catch (Exception ex) when (ex is InvalidDataException or IOException or FormatException or ArgumentException)
        {
            throw Malformed(bundle, ex.Message, ex);
        }
    }

    /// <summary>Opens the payload entry of a bundle (the third entry) and hands its stream to <paramref name="read"/>.</summary>
    public static T ReadPayload<T>(string bundle, Func<Stream, T> read)
    {
        try
        {
            using var stream = File.OpenRead(bundle);
            using var tar = new TarReader(stream);
            _ = tar.GetNextEntry();
            _ = tar.GetNextEntry();
            var payload = tar.GetNextEntry();
            if (payload is null || payload.Name != PayloadName || payload.DataStream is null)
            {
                throw Malformed(bundle, $"its third entry is not {PayloadName}", null);
            }

            return read(payload.DataStream);
        }
        catch (Exception ex) when (ex is InvalidDataException or IOException or FormatException or ArgumentException or EndOfStreamException)
        {
            throw Malformed(bundle, ex.Message, ex);
        }
    }

    private static byte[] Small(TarEntry? entry, string name, string bundle)
    {
        if (entry is null || entry.Name != name || entry.DataStream is null || entry.Length > MaxSmallEntry)
        {
            throw Malformed(bundle, $"expected {name} as the {(name == ManifestName ? "first" : "second")} entry", null);
        }

        using var data = new MemoryStream();
        entry.DataStream.CopyTo(data);
        return data.ToArray();
    }

    private static UpdateException Malformed(string bundle, string what, Exception? inner) =>
        new(bundle, $"not a complete Coracle bundle ({what})", "download it again; a bundle is made by 'coracle update bundle'", ExitCodes.InvalidConfig, inner);
}
