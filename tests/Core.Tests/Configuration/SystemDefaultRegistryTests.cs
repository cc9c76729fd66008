using Coracle.Core.Configuration;
using Coracle.Core.Kubernetes;
using Coracle.Plugins;

namespace Coracle.Core.Tests.Configuration;

/// <summary>K3s's <c>--system-default-registry</c>: the setting, its checks, the SDK's image rewrite and the pause image it implies.</summary>
public sealed class SystemDefaultRegistryTests : IDisposable
{
    private static readonly Dictionary<string, string> Env = new() { ["HOME"] = "/home/test", ["CORACLE_CONFIG_FILE"] = "" };
    private readonly TempDir _dir = new("coracle-registry");

    public void Dispose() => _dir.Dispose();

    private static (CoracleConfig Config, List<string> Errors) Load(
        Dictionary<Setting, IReadOnlyList<string>>? flags = null, Dictionary<string, string>? env = null, string? file = null, string role = "server")
    {
        var environment = new Dictionary<string, string>(env ?? Env);
        if (role == "agent")
        {
            environment["CORACLE_SERVER"] = "https://server:9345";
            environment["CORACLE_TOKEN"] = "K10abc::server:secret";
        }

        var (config, errors) = ConfigLoader.LoadAll(role, file, environment, flags ?? []);
        return (config, errors.Select(e => e.ToString()).ToList());
    }

    [Theory]
    [InlineData("registry.local:5000", "docker.io/rancher/mirrored-coredns-coredns:1.12.0", "registry.local:5000/rancher/mirrored-coredns-coredns:1.12.0")]
    [InlineData("registry.local:5000", "rancher/mirrored-pause:3.6", "registry.local:5000/rancher/mirrored-pause:3.6")]
    [InlineData("registry.local:5000", "busybox:1.36", "registry.local:5000/busybox:1.36")]
    [InlineData("registry.local:5000", "quay.io/tigera/operator:v1.36.5", "registry.local:5000/tigera/operator:v1.36.5")]
    [InlineData("registry.local:5000", "localhost/rancher/x:1", "registry.local:5000/rancher/x:1")]
    [InlineData("registry.local:5000", "localhost:5000/x@sha256:0123", "registry.local:5000/x@sha256:0123")]
    [InlineData("mirror.corp/k3s", "docker.io/rancher/local-path-provisioner:v0.0.24", "mirror.corp/k3s/rancher/local-path-provisioner:v0.0.24")]
    [InlineData("registry.local:5000", "registry.local:5000/rancher/mirrored-pause:3.6", "registry.local:5000/rancher/mirrored-pause:3.6")]
    [InlineData("", "docker.io/rancher/mirrored-pause:3.6", "docker.io/rancher/mirrored-pause:3.6")]
    public void WithRegistry_ReplacesTheHostOrPrefixesAName(string registry, string image, string expected) =>
        Assert.Equal(expected, NodeSettings.WithRegistry(registry, image));

    [Fact]
    public void SystemImage_UsesTheNodesRegistry_AndLeavesImagesAloneWithoutOne()
    {
        var node = new CoracleConfigBuilder().Node;

        Assert.Equal("docker.io/rancher/mirrored-metrics-server:v0.6.4", node.SystemImage("docker.io/rancher/mirrored-metrics-server:v0.6.4"));
        Assert.Equal("10.0.0.5:5000/rancher/mirrored-metrics-server:v0.6.4",
            (node with { SystemDefaultRegistry = "10.0.0.5:5000" }).SystemImage("docker.io/rancher/mirrored-metrics-server:v0.6.4"));
    }

    [Fact]
    public void Load_Registry_FromFlagEnvironmentAndFile_ReachesThePlugins()
    {
        var file = _dir.Combine("appliance.toml");
        File.WriteAllText(file, "system-default-registry = \"mirror.corp:443/k3s\"\n");

        var (fromFlag, flagErrors) = Load(new() { [Settings.SystemDefaultRegistry] = ["registry.local:5000"] });
        var (fromEnv, envErrors) = Load(env: new(Env) { ["CORACLE_SYSTEM_DEFAULT_REGISTRY"] = "[fd00::1]:5000" });
        var (fromFile, fileErrors) = Load(file: file);

        Assert.Empty(flagErrors.Concat(envErrors).Concat(fileErrors));
        Assert.Equal("registry.local:5000", fromFlag.ToNodeSettings().SystemDefaultRegistry);
        Assert.Equal("[fd00::1]:5000", fromEnv.ToNodeSettings().SystemDefaultRegistry);
        Assert.Equal("mirror.corp:443/k3s", fromFile.ToNodeSettings().SystemDefaultRegistry);
        Assert.Equal("", Load().Config.ToNodeSettings().SystemDefaultRegistry);
    }

    [Theory]
    [InlineData("https://registry.local:5000", "--system-default-registry: 'https://registry.local:5000' has a scheme; give the registry as HOST[:PORT][/PATH] without one, like registry.local:5000")]
    [InlineData("registry .local", "--system-default-registry: 'registry .local' contains a space; give the registry as HOST[:PORT][/PATH], like registry.local:5000")]
    [InlineData("registry.local:99999", "--system-default-registry: 'registry.local:99999' has port 99999; use 1-65535, like registry.local:5000")]
    [InlineData("registry.local:", "--system-default-registry: 'registry.local:' is not a registry; give HOST[:PORT][/PATH] (a lower-case path), like registry.local:5000 or registry.local:5000/mirror")]
    [InlineData("registry.local/", "--system-default-registry: 'registry.local/' is not a registry; give HOST[:PORT][/PATH] (a lower-case path), like registry.local:5000 or registry.local:5000/mirror")]
    [InlineData("registry.local/Mirror", "--system-default-registry: 'registry.local/Mirror' is not a registry; give HOST[:PORT][/PATH] (a lower-case path), like registry.local:5000 or registry.local:5000/mirror")]
    [InlineData("-bad-.local", "--system-default-registry: '-bad-.local' is not a registry; give HOST[:PORT][/PATH] (a lower-case path), like registry.local:5000 or registry.local:5000/mirror")]
    public void Load_BadRegistry_IsOneLineNamingTheFlagAndAnExample(string registry, string expected)
    {
        var (config, errors) = Load(new() { [Settings.SystemDefaultRegistry] = [registry] });

        Assert.Equal([expected], errors);
        Assert.Equal(Settings.PauseImage.Default, config.PauseImage);
    }

    [Fact]
    public void Load_BadRegistryInFile_IsPositioned()
    {
        var file = _dir.Combine("appliance.toml");
        File.WriteAllText(file, "node-name = \"a\"\nsystem-default-registry = \"http://mirror\"\n");

        var (_, errors) = Load(file: file);

        Assert.Equal([$"{file}:2:1: 'http://mirror' has a scheme; give the registry as HOST[:PORT][/PATH] without one, like registry.local:5000"], errors);
    }

    [Theory]
    [InlineData("server")]
    [InlineData("agent")]
    public void Load_Registry_TakesTheDefaultPauseImageFromIt(string role)
    {
        var (config, errors) = Load(new() { [Settings.SystemDefaultRegistry] = ["registry.local:5000"] }, role: role);

        Assert.Empty(errors);
        Assert.Equal("registry.local:5000/rancher/mirrored-pause:3.6", config.PauseImage);
        Assert.Equal("registry.local:5000/rancher/mirrored-pause:3.6", config.ToNodeSettings().PauseImage);
        Assert.Equal("default with --system-default-registry", config.Sources[Settings.PauseImage].Source);
        var paths = new KubernetesPaths { TlsDir = "/d/tls", CredDir = "/d/cred", DatastoreServers = [], CriSocket = "/run/c.sock" };
        var kubelet = ComponentArgs.KubeletDefaults(config.NodeName, config.PauseImage, paths);
        Assert.Equal("registry.local:5000/rancher/mirrored-pause:3.6", kubelet["pod-infra-container-image"]);
    }

    [Fact]
    public void Load_ExplicitPauseImage_WinsOverTheRegistry()
    {
        var file = _dir.Combine("appliance.toml");
        File.WriteAllText(file, "system-default-registry = \"registry.local:5000\"\n[agent]\npause-image = \"docker.io/rancher/mirrored-pause:3.6\"\n");

        var (fromFlag, _) = Load(new() { [Settings.SystemDefaultRegistry] = ["registry.local:5000"], [Settings.PauseImage] = ["other.local/pause:3.10"] });
        var (fromEnv, _) = Load(env: new(Env) { ["CORACLE_SYSTEM_DEFAULT_REGISTRY"] = "registry.local:5000", ["CORACLE_PAUSE_IMAGE"] = "pause:3.10" });
        var (fromFile, errors) = Load(file: file);

        Assert.Empty(errors);
        Assert.Equal("other.local/pause:3.10", fromFlag.PauseImage);
        Assert.Equal("pause:3.10", fromEnv.PauseImage);
        Assert.Equal("docker.io/rancher/mirrored-pause:3.6", fromFile.PauseImage);
    }

    [Fact]
    public void Load_NoRegistry_KeepsK3sPauseImage()
    {
        var (config, _) = Load();

        Assert.Equal("docker.io/rancher/mirrored-pause:3.6", config.PauseImage);
        Assert.Equal("default", config.Sources[Settings.PauseImage].Source);
    }

    /// <summary>A node's settings from the defaults alone.</summary>
    private sealed class CoracleConfigBuilder
    {
        public NodeSettings Node { get; } = Load().Config.ToNodeSettings();
    }
}
