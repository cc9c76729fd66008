using System.Security.Cryptography;
using System.Text.Json;
using Coracle.Packaging.Tests.Support;

namespace Coracle.Packaging.Tests.Images;

/// <summary>What packaging/build.sh writes: the tarball and its checksum, image.json, the SBOM, the size report.</summary>
[Trait("Category", "Integration")]
[Collection(ImagesCollection.Name)]
public sealed class ImageTests(ImagesFixture images)
{
    private static readonly string[] GatewayPlugins =
        ["calico", "containerd", "coredns", "etcd", "flannel", "local-storage", "metrics-server", "mysql", "nvidia", "postgres", "servicelb", "sqlite", "traefik", "yarp"];

    [Fact]
    public void GatewayImage_Tarball_MatchesItsSha256File()
    {
        var tarball = images.Tarball("gateway-x64-full");
        var line = File.ReadAllText(tarball + ".sha256");

        Assert.Equal($"{Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(tarball)))}  coracle-gateway-x64-full.tar.zst\n", line);
        Assert.True(File.Exists(Path.Combine(images.OutDir, "install.sh")), "install.sh is written beside the tarball");
    }

    [Fact]
    public void GatewayImage_ImageJson_ListsProfilePluginsAndLockedComponents()
    {
        using var image = images.ImageJson("gateway-x64-full");
        var root = image.RootElement;

        Assert.Equal("gateway-x64-full", root.GetProperty("profile").GetString());
        Assert.Equal("linux-x64", root.GetProperty("rid").GetString());
        Assert.Equal("server", root.GetProperty("role").GetString());
        Assert.Equal(GatewayPlugins, root.GetProperty("plugins").EnumerateArray().Select(p => p.GetProperty("name").GetString()!).ToArray());
        Assert.Empty(root.GetProperty("componentsOmitted").EnumerateArray());
        var lib = images.Unpacked("gateway-x64-full");
        foreach (var c in root.GetProperty("components").EnumerateArray())
        {
            var file = Path.Combine(lib, c.GetProperty("path").GetString()!);
            Assert.Equal(c.GetProperty("sha256").GetString(), Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(file))));
        }

        Assert.Equal(["kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "kubectl"],
            root.GetProperty("components").EnumerateArray().Select(c => c.GetProperty("name").GetString()!).ToArray());
        // The components sit in the folder coracle looks in by default (components-dir = /usr/lib/coracle/bin).
        Assert.True(File.Exists(Path.Combine(lib, "bin", "kubelet")));
        Assert.Equal(GatewayPlugins.Length - 2, Directory.GetDirectories(Path.Combine(lib, "plugins")).Length); // sqlite/postgres/mysql: one assembly
        Assert.Empty(Directory.GetFiles(lib, "*.pdb", SearchOption.AllDirectories));
    }

    [Fact]
    public void GatewayImage_SqlitePlugin_CarriesItsNativeLibraryInItsOwnFolderAndNoCopyOfTheContracts()
    {
        // The SQLite plugin loads libe_sqlite3 in its own load context (the failure mode of DotNetCorePlugins #84/#214):
        // the native library is published into the plugin's folder, and the contracts assembly only beside the host, so
        // host and plugin share one copy of its types. InstallTests starts this image's server on SQLite.
        var plugins = Path.Combine(images.Unpacked("gateway-x64-full"), "plugins");
        var sqlite = Path.Combine(plugins, "Coracle.Plugins.Datastore.Sql");

        Assert.True(File.Exists(Path.Combine(sqlite, "Coracle.Plugins.Datastore.Sql.dll")));
        Assert.True(File.Exists(Path.Combine(sqlite, "libe_sqlite3.so")) || Directory.Exists(Path.Combine(sqlite, "runtimes")),
            "the SQLite native library is published into the plugin's folder");
        Assert.Empty(Directory.GetFiles(plugins, "Coracle.Plugins.dll", SearchOption.AllDirectories));
        Assert.True(File.Exists(Path.Combine(images.Unpacked("gateway-x64-full"), "Coracle.Plugins.dll")), "the contracts sit beside the host");
    }

    [Fact]
    public void GatewayImage_RuntimeConfig_CarriesTheMeasuredRuntimeSettings()
    {
        // docs/benchmarks.md: workstation GC without the background thread, and the pool's spin limit of 10.
        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(images.Unpacked("gateway-x64-full"), "coracle.runtimeconfig.json")));
        var properties = config.RootElement.GetProperty("runtimeOptions").GetProperty("configProperties");

        Assert.False(properties.GetProperty("System.GC.Server").GetBoolean());
        Assert.False(properties.GetProperty("System.GC.Concurrent").GetBoolean());
        Assert.True(properties.TryGetProperty("System.Threading.ThreadPool.UnfairSemaphoreSpinLimit", out var spin),
            "coracle.runtimeconfig.json has no System.Threading.ThreadPool.UnfairSemaphoreSpinLimit (Core/Coracle.Core.csproj)");
        Assert.Equal("10", spin.ToString());
    }

    [Fact]
    public void GatewayImage_Sbom_IsCycloneDx15WithHostPluginsPackagesAndComponents()
    {
        using var sbom = JsonDocument.Parse(File.ReadAllText(Path.Combine(images.OutDir, "coracle-gateway-x64-full.cdx.json")));
        var root = sbom.RootElement;
        var components = root.GetProperty("components").EnumerateArray().ToList();
        string Ref(JsonElement c) => c.GetProperty("bom-ref").GetString()!;

        Assert.Equal("CycloneDX", root.GetProperty("bomFormat").GetString());
        Assert.Equal("1.5", root.GetProperty("specVersion").GetString());
        Assert.Contains(components, c => Ref(c) == "coracle");
        Assert.Contains(components, c => Ref(c) == "plugin:Coracle.Plugins.Datastore.Sql");
        Assert.Contains(components, c => Ref(c).StartsWith("pkg:nuget/Microsoft.Data.Sqlite.Core@", StringComparison.Ordinal));
        Assert.Contains(components, c => Ref(c).StartsWith("pkg:nuget/Microsoft.NETCore.App.Runtime.linux-x64@", StringComparison.Ordinal));
        var kubelet = components.Single(c => Ref(c) == "component:kubelet");
        Assert.Equal("b82945f7dc94d379f3afc63df80ef6dfa69c1a83215a6e6807990329edd6779d", kubelet.GetProperty("hashes")[0].GetProperty("content").GetString());
    }

    [Fact]
    public void GatewayImage_SizeReport_HasEveryPluginAndComponent()
    {
        var report = File.ReadAllLines(Path.Combine(images.OutDir, "coracle-gateway-x64-full.sizes.txt"));

        Assert.Single(report, l => l.StartsWith("host ", StringComparison.Ordinal));
        Assert.Equal(12, report.Count(l => l.StartsWith("plugin ", StringComparison.Ordinal)));
        Assert.Equal(6, report.Count(l => l.StartsWith("component ", StringComparison.Ordinal)));
        Assert.Single(report, l => l.StartsWith("compressed ", StringComparison.Ordinal));
    }

    [Fact]
    public void ArmImage_WithoutComponents_SaysSoInOutputAndImageJson()
    {
        using var image = images.ImageJson("pi-arm64-minimal");
        var root = image.RootElement;

        Assert.Contains("==> WITHOUT components (--no-components)", images.BuildOutput["pi-arm64-minimal"], StringComparison.Ordinal);
        Assert.Empty(root.GetProperty("components").EnumerateArray());
        Assert.Equal(6, root.GetProperty("componentsOmitted").GetArrayLength());
        Assert.Equal(["containerd", "coredns", "flannel", "local-storage", "mysql", "postgres", "servicelb", "sqlite"],
            root.GetProperty("plugins").EnumerateArray().Select(p => p.GetProperty("name").GetString()!).ToArray());
        // The image's appliance.toml carries the profile's override and no table of a plugin it does not carry.
        var toml = File.ReadAllText(Path.Combine(images.Unpacked("pi-arm64-minimal"), "appliance.toml"));
        Assert.Contains("restart-max-backoff = \"60s\"  # image default (profile pi-arm64-minimal)", toml, StringComparison.Ordinal);
        Assert.DoesNotContain("[plugins.traefik]", toml, StringComparison.Ordinal);
    }
}
