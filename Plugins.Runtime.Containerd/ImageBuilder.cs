using System.Formats.Tar;
using System.IO.Compression;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text.Json;

namespace Coracle.Plugins.Runtime.Containerd;

/// <summary>
/// Builds single-layer image tarballs from static binaries on this machine (Debian's busybox-static, add-on binaries):
/// a docker archive (manifest.json with RepoTags, which <c>ctr images import</c> names the image after) that is also an
/// OCI layout (oci-layout, index.json with the name annotations, blobs/sha256). Used for the sandbox (pause) image a
/// node provides itself when none was imported, and by the tests for every image they run, since no registry is
/// reachable. The output is byte-for-byte reproducible (fixed timestamps).
/// </summary>
public static class ImageBuilder
{
    /// <summary>Where Debian's busybox-static installs its binary.</summary>
    public const string Busybox = "/bin/busybox";

    /// <summary>The busybox applets linked into <c>/bin</c>.</summary>
    public static IReadOnlyList<string> Applets { get; } =
        ["sh", "echo", "sleep", "cat", "ls", "httpd", "ping", "wget", "nc", "hostname", "ip", "mkdir", "true", "nslookup", "env", "date"];

    /// <summary>
    /// True when <paramref name="path"/> is an ELF executable without a program interpreter (statically linked), so it
    /// runs in an image that holds no C library; false for a dynamic executable or anything that is not ELF.
    /// </summary>
    public static bool IsStaticElf(string path)
    {
        using var file = File.OpenRead(path);
        Span<byte> header = stackalloc byte[64];
        if (file.Read(header) < 52 || header[0] != 0x7f || header[1] != (byte)'E' || header[2] != (byte)'L' || header[3] != (byte)'F' || header[5] != 1)
        {
            return false;
        }

        var is64 = header[4] == 2;
        long phoff = is64 ? BitConverter.ToInt64(header[32..40]) : BitConverter.ToUInt32(header[28..32]);
        int phentsize = BitConverter.ToUInt16(is64 ? header[54..56] : header[42..44]);
        int phnum = BitConverter.ToUInt16(is64 ? header[56..58] : header[44..46]);
        var entry = new byte[phentsize];
        for (var i = 0; i < phnum; i++)
        {
            file.Position = phoff + ((long)i * phentsize);
            if (file.Read(entry) < 4)
            {
                return false;
            }

            const uint ProgramInterpreter = 3;
            if (BitConverter.ToUInt32(entry, 0) == ProgramInterpreter)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>A busybox image with the given entrypoint and command.</summary>
    public static void WriteArchive(string path, string repoTag, string[] entrypoint, string[] cmd) =>
        WriteArchive(path, new ImageLayout { RepoTag = repoTag, Entrypoint = entrypoint, Cmd = cmd });

    /// <summary>Writes <paramref name="image"/> to <paramref name="path"/> (gzip-compressed when it ends in .gz).</summary>
    public static void WriteArchive(string path, ImageLayout image)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (image.Busybox is { } busybox && !File.Exists(busybox))
        {
            throw new FileNotFoundException($"{busybox} is missing: apt-get install -y busybox-static", busybox);
        }

        foreach (var source in image.Files.Values.Where(f => !File.Exists(f)))
        {
            throw new FileNotFoundException($"{source} is missing", source);
        }

        var repoTag = image.RepoTag;
        var layer = BuildLayer(image);
        var diffId = "sha256:" + Sha(layer);
        var arch = RuntimeInformation.OSArchitecture switch
        {
            Architecture.Arm64 => "arm64",
            Architecture.Arm => "arm",
            _ => "amd64",
        };
        var config = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
        {
            ["architecture"] = arch,
            ["os"] = "linux",
            ["config"] = new Dictionary<string, object>
            {
                ["Env"] = image.Env,
                ["Entrypoint"] = image.Entrypoint,
                ["Cmd"] = image.Cmd,
                ["WorkingDir"] = "/",
                ["Labels"] = image.Labels,
            },
            ["rootfs"] = new Dictionary<string, object> { ["type"] = "layers", ["diff_ids"] = new[] { diffId } },
        });
        var configSha = Sha(config);
        var layerSha = Sha(layer);
        var manifest = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = "application/vnd.oci.image.manifest.v1+json",
            ["config"] = Descriptor("application/vnd.oci.image.config.v1+json", configSha, config.Length),
            ["layers"] = new[] { Descriptor("application/vnd.oci.image.layer.v1.tar", layerSha, layer.Length) },
        });
        var manifestSha = Sha(manifest);
        var tag = repoTag[(repoTag.LastIndexOf(':') + 1)..];
        var index = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
        {
            ["schemaVersion"] = 2,
            ["manifests"] = new[]
            {
                new Dictionary<string, object>
                {
                    ["mediaType"] = "application/vnd.oci.image.manifest.v1+json",
                    ["digest"] = "sha256:" + manifestSha,
                    ["size"] = manifest.Length,
                    ["platform"] = new Dictionary<string, string> { ["architecture"] = arch, ["os"] = "linux" },
                    ["annotations"] = new Dictionary<string, string>
                    {
                        ["io.containerd.image.name"] = repoTag,
                        ["org.opencontainers.image.ref.name"] = tag,
                    },
                },
            },
        });
        var dockerManifest = JsonSerializer.SerializeToUtf8Bytes(new[]
        {
            new Dictionary<string, object>
            {
                ["Config"] = $"blobs/sha256/{configSha}",
                ["RepoTags"] = new[] { repoTag },
                ["Layers"] = new[] { $"blobs/sha256/{layerSha}" },
            },
        });

        using var file = File.Create(path);
        Stream target = path.EndsWith(".gz", StringComparison.Ordinal) ? new GZipStream(file, CompressionLevel.Fastest) : file;
        using (var writer = new TarWriter(target, TarEntryFormat.Pax, leaveOpen: true))
        {
            AddDir(writer, "blobs/");
            AddDir(writer, "blobs/sha256/");
            AddFile(writer, "oci-layout", """{"imageLayoutVersion":"1.0.0"}"""u8.ToArray());
            AddFile(writer, "index.json", index);
            AddFile(writer, "manifest.json", dockerManifest);
            AddFile(writer, $"blobs/sha256/{configSha}", config);
            AddFile(writer, $"blobs/sha256/{layerSha}", layer);
            AddFile(writer, $"blobs/sha256/{manifestSha}", manifest);
        }

        if (target != file)
        {
            target.Dispose();
        }
    }

    private static Dictionary<string, object> Descriptor(string mediaType, string sha, long size) =>
        new() { ["mediaType"] = mediaType, ["digest"] = "sha256:" + sha, ["size"] = size };

    private static byte[] BuildLayer(ImageLayout image)
    {
        using var ms = new MemoryStream();
        using (var writer = new TarWriter(ms, TarEntryFormat.Pax, leaveOpen: true))
        {
            var dirs = new SortedSet<string>(StringComparer.Ordinal) { "bin/", "tmp/", "proc/", "sys/", "dev/", "etc/", "www/" };
            foreach (var target in image.Files.Keys)
            {
                var parts = target.TrimStart('/').Split('/');
                for (var i = 1; i < parts.Length; i++)
                {
                    dirs.Add(string.Join('/', parts[..i]) + "/");
                }
            }

            foreach (var dir in dirs)
            {
                AddDir(writer, dir);
            }

            if (image.Busybox is { } busybox)
            {
                AddExecutable(writer, "bin/busybox", busybox);
                foreach (var applet in Applets)
                {
                    writer.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, $"bin/{applet}") { LinkName = "busybox", ModificationTime = DateTimeOffset.UnixEpoch });
                }
            }

            foreach (var (target, source) in image.Files.OrderBy(f => f.Key, StringComparer.Ordinal))
            {
                AddExecutable(writer, target.TrimStart('/'), source);
            }
        }

        return ms.ToArray();
    }

    private static void AddExecutable(TarWriter writer, string name, string source)
    {
        using var data = File.OpenRead(source);
        writer.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, name)
        {
            Mode = (UnixFileMode)0b111_101_101,
            DataStream = data,
            ModificationTime = DateTimeOffset.UnixEpoch,
        });
    }

    private static void AddDir(TarWriter writer, string name) =>
        writer.WriteEntry(new PaxTarEntry(TarEntryType.Directory, name)
        {
            Mode = (UnixFileMode)0b111_101_101,
            ModificationTime = DateTimeOffset.UnixEpoch,
        });

    private static void AddFile(TarWriter writer, string name, byte[] content) =>
        writer.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, name)
        {
            Mode = (UnixFileMode)0b110_100_100,
            DataStream = new MemoryStream(content),
            ModificationTime = DateTimeOffset.UnixEpoch,
        });

    private static string Sha(byte[] data) => Convert.ToHexStringLower(SHA256.HashData(data));
}
