using System.Text.Json;
using Coracle.Packaging.Tests.Support;

namespace Coracle.Packaging.Tests.Images;

/// <summary>
/// The pi-arm64-minimal image, unpacked, run as an aarch64 device would run it: under qemu-user
/// (<c>qemu-aarch64-static</c>, Debian's qemu-user-static, called explicitly; the aarch64 loader and libc come from
/// Debian's arm64 multiarch packages, scripts/prereqs.sh). What emulation cannot show: the Kubernetes components (there
/// are no arm64 builds here), containerd and the CNI on arm64 (the host's x64 containerd is what the emulated coracle
/// starts), real start-up times on a Pi.
/// </summary>
[Trait("Category", "Integration")]
[Collection(ImagesCollection.Name)]
public sealed class QemuTests(ImagesFixture images) : IDisposable
{
    private const string Qemu = "/usr/bin/qemu-aarch64-static";
    private readonly TempDir _temp = new("pkg-qemu");

    public void Dispose() => _temp.Dispose();

    private string Coracle => Path.Combine(images.Unpacked("pi-arm64-minimal"), "coracle");

    private Dictionary<string, string?> Env => new() { ["CORACLE_RUN_DIR"] = _temp.Combine("run"), ["QEMU_LD_PREFIX"] = "/" };

    [Fact]
    public void Arm64Image_EveryNativeFile_IsAarch64Elf()
    {
        var elves = Directory.EnumerateFiles(images.Unpacked("pi-arm64-minimal"), "*", SearchOption.AllDirectories)
            .Where(f => !new FileInfo(f).Attributes.HasFlag(FileAttributes.ReparsePoint))
            .Select(f => (File: f, Header: ReadHeader(f)))
            .Where(f => f.Header.Length >= 20 && f.Header[0] == 0x7f && f.Header[1] == (byte)'E' && f.Header[2] == (byte)'L' && f.Header[3] == (byte)'F')
            .ToList();

        Assert.Contains(elves, e => e.File == Coracle);
        Assert.Contains(elves, e => Path.GetFileName(e.File) == "libcoreclr.so");
        Assert.Contains(elves, e => Path.GetFileName(e.File) == "libe_sqlite3.so");
        // e_machine 183 = EM_AARCH64, 64-bit class.
        Assert.All(elves, e => Assert.True(e.Header[4] == 2 && BitConverter.ToUInt16(e.Header, 18) == 183, $"{e.File} is not an aarch64 ELF"));
    }

    [Fact]
    public async Task Arm64Image_UnderQemu_VersionPluginsListAndConfigCheck()
    {
        Assert.True(File.Exists(Qemu), "qemu-user-static is installed by scripts/prereqs.sh");
        var (code, stdout, stderr) = await Sh.RunAsync(Qemu, [Coracle, "version"], Env, 300);
        Assert.True(code == 0, stderr);
        Assert.Matches(@"^coracle version 0\.1\.0 \(\.NET 10\.[0-9.]+, arm64\)\n$", stdout);

        (code, stdout, stderr) = await Sh.RunAsync(Qemu, [Coracle, "plugins", "list", "--data-dir", _temp.Combine("data")], Env, 300);
        Assert.True(code == 0, stderr);
        using var image = images.ImageJson("pi-arm64-minimal");
        var expected = image.RootElement.GetProperty("plugins").EnumerateArray().Select(p => p.GetProperty("name").GetString()!).Order().ToArray();
        var listed = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(l => l.Split(' ')[0]).Order().ToArray();
        Assert.Equal(expected, listed);

        // The image's own appliance.toml (its baked defaults) passes the start-up plan on arm64.
        (code, stdout, stderr) = await Sh.RunAsync(Qemu,
            [Coracle, "config", "check", "--config", Path.Combine(images.Unpacked("pi-arm64-minimal"), "appliance.toml"), "--data-dir", _temp.Combine("data")], Env, 300);
        Assert.True(code == 0, stdout + stderr);
        Assert.Contains("restart-max-backoff", stdout, StringComparison.Ordinal);
        Assert.False(Directory.Exists(_temp.Combine("data")), "config check changes nothing on disk");
    }

    [Fact]
    public async Task Arm64Image_UnderQemu_ServerDatastoreAnswersEtcdctl()
    {
        var data = _temp.Combine("data");
        var script = $"ip link set lo up && ip link add pkgv0 type veth peer name pkgv1 && ip addr add 10.252.0.2/24 dev pkgv0 && ip link set pkgv1 up && ip link set pkgv0 up "
            + $"&& ip route add default via 10.252.0.1 && exec {Qemu} {Coracle} server --data-dir {data} --write-kubeconfig {data}/admin.yaml "
            + "--components-dir /nonexistent --flannel-backend=none --disable servicelb";
        // Own mount and network namespaces: whatever the node sets up (containerd's mounts, links) ends with it.
        using var server = Sh.Start("unshare", ["-m", "-n", "--", "bash", "-c", script], Env);
        var socket = Path.Combine(data, "server", "db", "etcd.sock");
        var deadline = DateTime.UtcNow.AddMinutes(5);
        var health = (Code: -1, Stdout: "", Stderr: "");
        while (DateTime.UtcNow < deadline && !server.HasExited)
        {
            if (File.Exists(socket))
            {
                health = await Sh.RunAsync("etcdctl", ["--endpoints", "unix://" + socket, "endpoint", "health"], new Dictionary<string, string?> { ["ETCDCTL_API"] = "3" });
                if (health.Code == 0)
                {
                    break;
                }
            }

            await Task.Delay(500);
        }

        Assert.True(health.Code == 0, $"etcdctl endpoint health on the arm64 datastore: {health.Stdout}{health.Stderr}\n{server.Output}");
        var etcdEnv = new Dictionary<string, string?> { ["ETCDCTL_API"] = "3" };
        Assert.Equal(0, (await Sh.RunAsync("etcdctl", ["--endpoints", "unix://" + socket, "put", "/pkg/arm64", "from-qemu"], etcdEnv)).Code);
        var get = await Sh.RunAsync("etcdctl", ["--endpoints", "unix://" + socket, "get", "/pkg/arm64", "--print-value-only"], etcdEnv);
        Assert.Equal("from-qemu\n", get.Stdout);

        var status = await Sh.RunAsync(Qemu, [Coracle, "status", "--data-dir", data], Env, 300);
        Assert.True(status.Code == 0, status.Stderr);
        Assert.Matches(@"(?m)^datastore\s+ready", status.Stdout);

        Assert.Equal(0, (await Sh.RunAsync("kill", ["-TERM", server.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture)])).Code);
        Assert.Equal(0, await server.WaitForExitAsync(120));
    }

    private static byte[] ReadHeader(string file)
    {
        using var stream = File.OpenRead(file);
        var header = new byte[20];
        var read = stream.Read(header, 0, header.Length);
        return header[..read];
    }
}
