using System.Formats.Tar;
using System.IO.Compression;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text.Json;

namespace Coracle.TestSupport;

/// <summary>
/// Builds image tarballs from Debian's busybox-static: one layer with /bin/busybox and applet symlinks, written as a
/// docker archive (manifest.json with RepoTags, which ctr images import names the image after) that also carries an OCI
/// layout (oci-layout, index.json with the name annotations, blobs/sha256).
/// </summary>
public static class ImageBuilder
{
    public const string Busybox = "/bin/busybox";

    public static void WriteArchive(string path, string repoTag, string[] entrypoint, string[] cmd)
    {
        if (!File.Exists(Busybox))
        {
            throw new InvalidOperationException("/bin/busybox is missing: apt-get install -y busybox-static");
        }

        var layer = BuildLayer();
        var diffId = "sha256:" + Sha(layer);
        var arch = RuntimeInformation.OSArchitecture == Architecture.Arm64 ? "arm64" : "amd64";
        var config = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
        {
            ["architecture"] = arch,
            ["os"] = "linux",
            ["config"] = new Dictionary<string, object>
            {
                ["Env"] = new[] { "PATH=/bin" },
                ["Entrypoint"] = entrypoint,
                ["Cmd"] = cmd,
                ["WorkingDir"] = "/",
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

    private static byte[] BuildLayer()
    {
        using var ms = new MemoryStream();
        using (var writer = new TarWriter(ms, TarEntryFormat.Pax, leaveOpen: true))
        {
            foreach (var dir in new[] { "bin/", "tmp/", "proc/", "sys/", "dev/", "etc/", "www/" })
            {
                AddDir(writer, dir);
            }

            var busybox = new PaxTarEntry(TarEntryType.RegularFile, "bin/busybox")
            {
                Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead
                    | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute,
                DataStream = File.OpenRead(Busybox),
                ModificationTime = DateTimeOffset.UnixEpoch,
            };
            writer.WriteEntry(busybox);
            busybox.DataStream.Dispose();
            foreach (var applet in new[] { "sh", "echo", "sleep", "cat", "ls", "httpd", "ping", "wget", "nc", "hostname", "ip", "mkdir", "true" })
            {
                writer.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, $"bin/{applet}") { LinkName = "busybox", ModificationTime = DateTimeOffset.UnixEpoch });
            }
        }

        return ms.ToArray();
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
