using Coracle.Packaging.Tests.Support;

namespace Coracle.Packaging.Tests.Images;

/// <summary>
/// packaging/build.sh's checks, which run before anything is published: each bad input is one line
/// (<c>coracle: error: WHERE: WHAT; FIX</c>) and exit 2, and no tarball is written.
/// </summary>
[Trait("Category", "Integration")]
public sealed class BuildTests : IDisposable
{
    private readonly TempDir _temp = new("pkg-build");

    public void Dispose() => _temp.Dispose();

    private static string Build => Path.Combine(Sh.RepoRoot, "packaging", "build.sh");

    private async Task<(int Code, string Stdout, string Stderr)> BuildAsync(params string[] args) =>
        await Sh.RunAsync(Build, [.. args, "--out", _temp.Combine("out")], new Dictionary<string, string?> { ["CORACLE_COMPONENTS_CACHE"] = _temp.Combine("none") });

    private void AssertNothingWritten() =>
        Assert.False(Directory.Exists(_temp.Combine("out")) && Directory.EnumerateFileSystemEntries(_temp.Combine("out")).Any(), "nothing is written on a bad input");

    [Fact]
    public async Task Build_UnknownProfile_OneLineExit2()
    {
        var (code, _, stderr) = await BuildAsync("pi-riscv-tiny");

        Assert.Equal(2, code);
        Assert.Equal("coracle: error: packaging/build.sh: unknown profile 'pi-riscv-tiny'; choose one of gateway-x64-full, pi-arm64-minimal, pi-armv7-agent (packaging/profiles/)\n", stderr);
        AssertNothingWritten();
    }

    [Fact]
    public async Task Build_PluginNotBuiltForTheRid_NamesThePluginExit2()
    {
        var profile = _temp.Write("armv7-gpu.toml", "rid = \"linux-arm\"\nplugins = [\"containerd\", \"nvidia\"]\n");

        var (code, _, stderr) = await BuildAsync(profile, "--check");

        Assert.Equal(2, code);
        Assert.Equal($"coracle: error: {profile}: plugin 'nvidia' does not support linux-arm (it is built for x64/arm64); remove it from plugins\n", stderr);
    }

    [Fact]
    public async Task Build_UnknownPlugin_ListsThePluginsExit2()
    {
        var profile = _temp.Write("typo.toml", "rid = \"linux-x64\"\nplugins = [\"containerd\", \"flanel\"]\n");

        var (code, _, stderr) = await BuildAsync(profile, "--check");

        Assert.Equal(2, code);
        Assert.StartsWith($"coracle: error: {profile}: plugin 'flanel' does not exist; the plugins are calico, containerd, coredns, etcd, flannel, ", stderr, StringComparison.Ordinal);
        Assert.Single(stderr.TrimEnd('\n').Split('\n'));
    }

    [Fact]
    public async Task Build_OverrideOfAnUnknownApplianceKey_Exit2()
    {
        var profile = _temp.Write("bad-key.toml", "rid = \"linux-x64\"\nplugins = [\"containerd\"]\n[appliance.supervisor]\nmax-backoff = \"60s\"\n");

        var (code, _, stderr) = await BuildAsync(profile, "--check", "--no-components");

        Assert.Equal(2, code);
        Assert.Equal($"coracle: error: {profile}: [appliance.supervisor] max-backoff is not a key of appliance.toml; see 'coracle config default' for the keys\n", stderr);
    }

    [Fact]
    public async Task Build_MissingComponent_NamesTheFileExit2()
    {
        var components = _temp.Combine("components");
        Directory.CreateDirectory(components);

        var (code, _, stderr) = await Sh.RunAsync(Build, ["gateway-x64-full", "--components", components, "--out", _temp.Combine("out")]);

        Assert.Equal(2, code);
        Assert.Equal($"coracle: error: {components}/kubernetes-v1.32.13/kube-apiserver: missing: component kube-apiserver v1.32.13 for linux-x64 in packaging/components.lock; "
            + "run scripts/test.sh or scripts/server.sh once to unpack ../shared/components, pass --components DIR, or build with --no-components\n", stderr);
        AssertNothingWritten();
    }

    [Fact]
    public async Task Build_ComponentWithTheWrongChecksum_NamesBothSumsExit2()
    {
        var components = _temp.Combine("components");
        var bad = _temp.Write("components/kubernetes-v1.32.13/kube-apiserver", "not kube-apiserver\n");
        var actual = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(bad)));

        var (code, _, stderr) = await Sh.RunAsync(Build, ["gateway-x64-full", "--components", components, "--out", _temp.Combine("out")]);

        Assert.Equal(2, code);
        Assert.Equal($"coracle: error: {bad}: sha256 {actual} does not match packaging/components.lock (db0b5904383f4473f8c147f58c99af7f0298dde22e24ce0f56f56f6263cebb2b); "
            + "replace the file with the locked kube-apiserver v1.32.13 or update the lock\n", stderr);
        AssertNothingWritten();
    }

    [Fact]
    public async Task Build_ArmProfileWithoutArmComponents_RefusedUnlessNoComponentsIsSaid()
    {
        var (code, _, stderr) = await BuildAsync("pi-arm64-minimal", "--check");

        Assert.Equal(2, code);
        Assert.Equal("coracle: error: packaging/components.lock: no kube-apiserver for linux-arm64 (profile packaging/profiles/pi-arm64-minimal.toml needs it); "
            + "add it to the lock and the components folder, or build with --no-components\n", stderr);

        var (ok, stdout, _) = await BuildAsync("pi-arm64-minimal", "--check", "--no-components");
        Assert.Equal(0, ok);
        Assert.Contains("==> WITHOUT components (--no-components): kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy, kubectl are not in this image", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Build_ArmV7AgentProfile_ChecksWithItsPluginSet()
    {
        // The linux-arm .NET runtime pack is not served by this machine's NuGet, so the armv7 image cannot be
        // published here (docs/packaging.md); what can be proved is that its profile is valid for linux-arm.
        var (code, stdout, stderr) = await BuildAsync("pi-armv7-agent", "--check", "--no-components");

        Assert.True(code == 0, stderr);
        Assert.Contains("==> profile pi-armv7-agent: linux-arm, role agent", stdout, StringComparison.Ordinal);
        Assert.Contains("==> plugins: containerd, flannel, servicelb\n", stdout, StringComparison.Ordinal);
    }
}
