using Coracle.Packaging.Tests.Support;

namespace Coracle.Packaging.Tests.Images;

/// <summary>
/// install.sh with an image on disk: into a fresh root (INSTALL_CORACLE_ROOT), then run from that root as a chroot in its
/// own mount and network namespace (Support/fresh-root.sh), as a device boots it.
/// </summary>
[Trait("Category", "Integration")]
[Collection(ImagesCollection.Name)]
public sealed class InstallTests(ImagesFixture images) : IDisposable
{
    private readonly TempDir _temp = new("pkg-inst");

    public void Dispose() => _temp.Dispose();

    private string Install => Path.Combine(images.OutDir, "install.sh");

    private static List<string> Tree(string root) =>
        [.. Directory.EnumerateFileSystemEntries(root, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 })
            .Select(p => Path.GetRelativePath(root, p)).Order(StringComparer.Ordinal)];

    private Task<(int Code, string Stdout, string Stderr)> InstallAsync(string root, string tarball, string? exec = null) =>
        Sh.RunAsync("bash", [Install, tarball], new Dictionary<string, string?>
        {
            ["INSTALL_CORACLE_ROOT"] = root, ["INSTALL_CORACLE_SKIP_START"] = "true", ["INSTALL_CORACLE_EXEC"] = exec,
        });

    /// <summary>A copy of the (small) arm64 image and its checksum file, for tests that change or break them.</summary>
    private string CopyOfArmImage()
    {
        var copy = _temp.Combine("coracle-pi-arm64-minimal.tar.zst");
        File.Copy(images.Tarball("pi-arm64-minimal"), copy);
        File.Copy(images.Tarball("pi-arm64-minimal") + ".sha256", copy + ".sha256");
        return copy;
    }

    [Fact]
    public async Task Install_TamperedTarball_OneLineExit2NothingWritten()
    {
        var tarball = CopyOfArmImage();
        using (var stream = File.Open(tarball, FileMode.Open))
        {
            stream.Position = stream.Length / 2;
            var b = stream.ReadByte();
            stream.Position = stream.Length / 2;
            stream.WriteByte((byte)(b ^ 0xff));
        }

        var root = _temp.Combine("root");
        Directory.CreateDirectory(root);
        var (code, _, stderr) = await InstallAsync(root, tarball);

        Assert.Equal(2, code);
        Assert.Matches($"^coracle: error: install.sh: {tarball}: sha256 [0-9a-f]{{64}} does not match {tarball}.sha256 \\([0-9a-f]{{64}}\\); "
            + "the tarball is damaged or tampered with, copy it again\n$", stderr);
        Assert.Empty(Tree(root));
    }

    [Fact]
    public async Task Install_NotServerOrAgent_OneLineExit2NothingWritten()
    {
        var root = _temp.Combine("root");
        Directory.CreateDirectory(root);

        var (code, _, stderr) = await InstallAsync(root, images.Tarball("pi-arm64-minimal"), "serve --debug");
        Assert.Equal(2, code);
        Assert.Equal("coracle: error: install.sh: INSTALL_CORACLE_EXEC: 'serve' is not server or agent; set INSTALL_CORACLE_EXEC=\"server ...\" or \"agent --server URL --token T\"\n", stderr);

        (code, _, stderr) = await InstallAsync(root, images.Tarball("pi-arm64-minimal"), "agent --token abc");
        Assert.Equal(2, code);
        Assert.StartsWith("coracle: error: install.sh: INSTALL_CORACLE_EXEC: agent needs --server URL and --token T; ", stderr, StringComparison.Ordinal);
        Assert.Empty(Tree(root));
    }

    [Fact]
    public async Task Install_Twice_ReplacesSlotAKeepsConfigurationAndTokenStaysOutOfTheUnit()
    {
        var root = _temp.Combine("root");
        Directory.CreateDirectory(root);
        var exec = "agent --server https://10.0.0.1:9345 --token K10secret --node-label a=b";

        var first = await InstallAsync(root, images.Tarball("pi-arm64-minimal"), exec);
        Assert.True(first.Code == 0, first.Stderr);
        File.WriteAllText(Path.Combine(root, "usr/lib/coracle/slots/a/stale-file"), "from the first install");
        File.AppendAllText(Path.Combine(root, "etc/coracle/appliance.toml"), "# edited by the operator\n");
        var manifest = File.ReadAllText(Path.Combine(root, "usr/lib/coracle/install.manifest"));

        var second = await InstallAsync(root, images.Tarball("pi-arm64-minimal"), exec);
        Assert.True(second.Code == 0, second.Stderr);

        Assert.False(File.Exists(Path.Combine(root, "usr/lib/coracle/slots/a/stale-file")), "slot a is replaced whole");
        Assert.EndsWith("# edited by the operator\n", File.ReadAllText(Path.Combine(root, "etc/coracle/appliance.toml")), StringComparison.Ordinal);
        Assert.Equal(manifest, File.ReadAllText(Path.Combine(root, "usr/lib/coracle/install.manifest")));
        Assert.Equal("slots/a", new FileInfo(Path.Combine(root, "usr/lib/coracle/current")).LinkTarget);
        Assert.Equal("current/bin", new FileInfo(Path.Combine(root, "usr/lib/coracle/bin")).LinkTarget);
        Assert.Equal("/usr/lib/coracle/current/coracle", new FileInfo(Path.Combine(root, "usr/local/bin/coracle")).LinkTarget);
        Assert.Equal(["a"], Directory.GetFileSystemEntries(Path.Combine(root, "usr/lib/coracle/slots")).Select(Path.GetFileName));
        Assert.Equal(["coracle"], Directory.GetFileSystemEntries(Path.Combine(root, "usr/lib")).Select(Path.GetFileName)); // no staging left
        var unit = File.ReadAllText(Path.Combine(root, "etc/systemd/system/coracle-agent.service"));
        Assert.Contains("ExecStart=/usr/local/bin/coracle agent --server https://10.0.0.1:9345 --node-label a=b\n", unit, StringComparison.Ordinal);
        Assert.DoesNotContain("K10secret", unit, StringComparison.Ordinal);
        Assert.Contains("Environment=DOTNET_GCgen0size=0x400000\nEnvironmentFile=-/etc/default/coracle-agent\n", unit, StringComparison.Ordinal); // the smaller gen0 budget, overridable
        var env = Path.Combine(root, "etc/systemd/system/coracle-agent.service.env");
        Assert.Equal("CORACLE_TOKEN=K10secret\n", File.ReadAllText(env));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(env));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(root, "etc/coracle/appliance.toml")));
        // The OTA boot guard sits outside the slots and runs before every start (docs/updates.md).
        Assert.True(File.Exists(Path.Combine(root, "usr/lib/coracle/update/boot-guard")), "boot guard outside the slots");
        Assert.Contains("ExecStartPre=/usr/lib/coracle/update/boot-guard /usr/lib/coracle\n",
            File.ReadAllText(Path.Combine(root, "etc/systemd/system/coracle-agent.service.d/update.conf")), StringComparison.Ordinal);
    }

    [Fact]
    public async Task GatewayImage_InstalledIntoFreshRoot_ServerAnswersThroughTheSymlinksAndUninstallLeavesNothing()
    {
        var root = _temp.Combine("root");
        Directory.CreateDirectory(root);
        Assert.Equal(0, (await Sh.RunAsync("bash", [Sh.FreshRootScript, "prepare", root])).Code);
        var before = Tree(root);

        var install = await InstallAsync(root, images.Tarball("gateway-x64-full"));
        Assert.True(install.Code == 0, install.Stderr);
        Assert.Contains("unit coracle.service runs: coracle server", install.Stdout, StringComparison.Ordinal);
        Assert.Contains("ExecStart=/usr/local/bin/coracle server\n", File.ReadAllText(Path.Combine(root, "etc/systemd/system/coracle.service")), StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(root, "usr/lib/coracle/bin/kubelet")), "components reachable through /usr/lib/coracle/bin -> current/bin");

        // Start the installed coracle as the unit would (its default appliance.toml, its default data dir), without the
        // Kubernetes components (a full node is not this test's subject) and without touching the network.
        var pidFile = _temp.Combine("server.pid");
        using var server = Sh.Start("unshare", ["-m", "-n", "--", "bash", Sh.FreshRootScript, "enter", root, pidFile,
            "/usr/local/bin/coracle", "server", "--components-dir", "/nonexistent", "--flannel-backend=none", "--disable", "servicelb,traefik"]);
        var pid = "";
        var status = (Code: -1, Stdout: "", Stderr: "");
        var deadline = DateTime.UtcNow.AddMinutes(3);
        while (DateTime.UtcNow < deadline && !server.HasExited)
        {
            if (pid.Length == 0 && File.Exists(pidFile))
            {
                pid = File.ReadAllText(pidFile).Trim();
            }

            if (pid.Length > 0)
            {
                status = await Sh.RunAsync("nsenter", ["-t", pid, "-m", "-n", "-r", "-w", "/usr/local/bin/coracle", "status"]);
                if (status.Code == 0 && System.Text.RegularExpressions.Regex.IsMatch(status.Stdout, @"(?m)^datastore\s+ready"))
                {
                    break;
                }
            }

            await Task.Delay(500);
        }

        try
        {
            Assert.True(status.Code == 0, $"coracle status in the fresh root: {status.Stdout}{status.Stderr}\n{server.Output}");
            Assert.Matches(@"(?m)^datastore\s+ready", status.Stdout);
            var health = await Sh.RunAsync("nsenter", ["-t", pid, "-m", "-n", "-r", "-w", "etcdctl", "--endpoints", "unix:///var/lib/coracle/server/db/etcd.sock", "endpoint", "health"],
                new Dictionary<string, string?> { ["ETCDCTL_API"] = "3" });
            Assert.True(health.Code == 0, health.Stdout + health.Stderr);

            // /usr/local/bin/coracle -> /usr/lib/coracle/current/coracle -> slots/a: the host resolves its real folder and
            // finds its plugins there.
            var plugins = await Sh.RunAsync("nsenter", ["-t", pid, "-m", "-n", "-r", "-w", "/usr/local/bin/coracle", "plugins", "list"]);
            Assert.True(plugins.Code == 0, plugins.Stderr);
            var lines = plugins.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.StartsWith("plugins of the running server (pid ", lines[0], StringComparison.Ordinal);
            Assert.Equal(["calico", "containerd", "coredns", "etcd", "flannel", "local-storage", "metrics-server", "mysql", "nvidia", "postgres", "servicelb", "sqlite", "traefik", "yarp"],
                lines.Skip(2).Select(l => l.Split(' ')[0]).Order(StringComparer.Ordinal).ToArray());
            var exe = await Sh.RunAsync("readlink", [$"/proc/{pid}/exe"]);
            Assert.EndsWith("/usr/lib/coracle/slots/a/coracle\n", exe.Stdout, StringComparison.Ordinal);
        }
        finally
        {
            if (pid.Length > 0)
            {
                await Sh.RunAsync("kill", ["-TERM", pid]);
            }

            await server.WaitForExitAsync(120);
        }

        var uninstall = await Sh.RunAsync("unshare", ["-m", "-n", "--", "bash", Sh.FreshRootScript, "enter", root, _temp.Combine("uninstall.pid"), "/usr/local/bin/coracle-uninstall.sh"]);
        Assert.True(uninstall.Code == 0, uninstall.Stdout + uninstall.Stderr);
        Assert.Contains("coracle uninstalled", uninstall.Stdout, StringComparison.Ordinal);
        Assert.Equal(before, Tree(root));
    }
}
