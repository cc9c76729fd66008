using Coracle.Core.Composition;
using Coracle.Core.Configuration;
using Coracle.Integration.Tests.Support;
using Coracle.Plugins;

namespace Coracle.Integration.Tests.Composition;

/// <summary>Discovery, loading and selection against real plugin assemblies built by the test build.</summary>
[Trait("Category", "Integration")]
public sealed class PluginCompositionTests : IDisposable
{
    private readonly TempDir _temp = new("coracle-plugins");

    public void Dispose() => _temp.Dispose();

    private static CoracleConfig Config(params (Setting Setting, string[] Values)[] flags) =>
        ConfigLoader.Load("server", null, new Dictionary<string, string> { ["HOME"] = "/tmp" },
            flags.ToDictionary(f => f.Setting, f => (IReadOnlyList<string>)f.Values));

    private PluginCatalog Load(params string[] plugins)
    {
        var root = _temp.Combine("plugins");
        TestPlugins.Install(root, plugins);
        return PluginCatalog.Load(PluginDiscovery.Discover([root], []));
    }

    private CompositionException LoadFails(params string[] plugins) =>
        Assert.Throws<CompositionException>(() => Load(plugins));

    private string Normalize(string message) => message.Replace(_temp.Path, "TMP", StringComparison.Ordinal);

    [Fact]
    public void Load_BasicAndCalico_ListsEveryExportWithItsFolder()
    {
        var catalog = Load(TestPlugins.Basic, TestPlugins.Calico);

        Assert.Equal(
            ["calico", "containerd", "flannel", "memdb", "servicelb", "sqlite", "test-handler", "traefik"],
            catalog.Entries.Select(e => e.Name).Order(StringComparer.Ordinal));
        var calico = catalog.Entries.Single(e => e.Name == "calico");
        Assert.Equal(ExtensionPoints.Cni, calico.Point);
        Assert.Equal(["flannel"], calico.Metadata.Conflicts);
        Assert.EndsWith("/plugins/Coracle.TestPlugins.Calico", calico.Folder, StringComparison.Ordinal);
    }

    [Fact]
    public void Select_Defaults_ConstructsOnlyTheSelectedPlugins()
    {
        var catalog = Load(TestPlugins.Basic, TestPlugins.Calico);

        var selection = PluginSelector.Select(catalog.Entries, Config(), "x64");
        var cni = (ICniPlugin)selection.Single(ExtensionPoints.Cni)!.Create();

        Assert.Equal("flannel", selection.Single(ExtensionPoints.Cni)!.Name);
        Assert.Equal("Coracle.TestPlugins.Basic.TestCni", cni.GetType().FullName);
        // The contracts are shared with the host: the cast above worked, and the type identity is the host's.
        Assert.Same(typeof(ICniPlugin).Assembly, cni.GetType().GetInterfaces().Single(i => i.Name == "ICniPlugin").Assembly);
        var calico = catalog.Entries.Single(e => e.Name == "calico");
        var ex = Assert.ThrowsAny<Exception>(calico.Create);
        Assert.Contains("calico was constructed although it was not selected", ex.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Select_UnknownName_ListsInstalledPlugins()
    {
        var catalog = Load(TestPlugins.Basic);

        var ex = Assert.Throws<CompositionException>(() => PluginSelector.Select(catalog.Entries, Config((Settings.Disable, ["trafik"])), "x64"));

        Assert.Equal(2, ex.ExitCode);
        Assert.Equal("--disable: unknown plugin 'trafik'; installed plugins: containerd, flannel, memdb, servicelb, sqlite, test-handler, traefik", ex.Message);
    }

    [Fact]
    public void Select_TwoActiveCnis_IsRejected()
    {
        var catalog = Load(TestPlugins.Basic, TestPlugins.Calico);

        var ex = Assert.Throws<CompositionException>(() => PluginSelector.Select(catalog.Entries, Config((Settings.Enable, ["calico"])), "x64"));

        Assert.Equal(2, ex.ExitCode);
        Assert.Equal("2 cni plugins are selected (flannel, calico) but at most one may be active; keep one: set plugins.cni to the one you want, or --disable the other", ex.Message);
    }

    [Fact]
    public void Select_MissingRequiredDatastore_IsRejected()
    {
        var catalog = Load(TestPlugins.Calico);

        var ex = Assert.Throws<CompositionException>(() => PluginSelector.Select(catalog.Entries, Config(), "x64"));

        Assert.Equal(2, ex.ExitCode);
        Assert.Equal("server.datastore-endpoint: no installed datastore serves the default (empty) endpoint; give --datastore-endpoint for one of the installed datastores: none", ex.Messages[0]);
    }

    [Fact]
    public void Select_PluginBuiltForAnotherArchitecture_IsRejected()
    {
        var catalog = Load(TestPlugins.Basic, TestPlugins.OtherArch);

        var ex = Assert.Throws<CompositionException>(() => PluginSelector.Select(catalog.Entries, Config((Settings.LoadBalancer, ["riscv-lb"])), "x64"));

        Assert.Equal(2, ex.ExitCode);
        Assert.Equal("plugin 'riscv-lb' is built for riscv64 but this node is x64; install the x64 image's plugin or --disable riscv-lb", ex.Message);
    }

    [Fact]
    public void Discover_WorldWritableRoot_IsRefused()
    {
        var root = _temp.Combine("plugins");
        TestPlugins.Install(root, TestPlugins.Basic);
        File.SetUnixFileMode(root, (UnixFileMode)0x1FF);

        var ex = Assert.Throws<CompositionException>(() => PluginDiscovery.Discover([root], []));

        Assert.Equal(3, ex.ExitCode);
        Assert.Equal("plugin path 'TMP/plugins' is world-writable (mode 777); run 'chmod o-w TMP/plugins' so only root can change plugins", Normalize(ex.Message));
    }

    [Fact]
    public void Discover_WorldWritablePluginFolder_IsRefused()
    {
        var root = _temp.Combine("plugins");
        TestPlugins.Install(root, TestPlugins.Basic);
        File.SetUnixFileMode(Path.Combine(root, TestPlugins.Basic), (UnixFileMode)0x1FF);

        var ex = Assert.Throws<CompositionException>(() => PluginDiscovery.Discover([root], []));

        Assert.Equal("plugin path 'TMP/plugins/Coracle.TestPlugins.Basic' is world-writable (mode 777); run 'chmod o-w TMP/plugins/Coracle.TestPlugins.Basic' so only root can change plugins", Normalize(ex.Message));
    }

    [Fact]
    public void Load_AssemblyThatIsNotAnAssembly_FailsWithItsName()
    {
        var root = _temp.Combine("plugins");
        TestPlugins.Install(root, TestPlugins.Basic);
        var broken = Path.Combine(root, "Coracle.TestPlugins.Garbage");
        Directory.CreateDirectory(broken);
        File.WriteAllText(Path.Combine(broken, "Coracle.TestPlugins.Garbage.dll"), "this is not a PE file");

        var ex = Assert.Throws<CompositionException>(() => PluginCatalog.Load(PluginDiscovery.Discover([root], [])));

        Assert.Equal(3, ex.ExitCode);
        Assert.StartsWith("plugin 'Coracle.TestPlugins.Garbage' failed to load from TMP/plugins/Coracle.TestPlugins.Garbage/Coracle.TestPlugins.Garbage.dll: ", Normalize(ex.Message), StringComparison.Ordinal);
        Assert.EndsWith("; reinstall it or remove its folder", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_PluginWithoutItsDependency_FailsWithTheMissingAssembly()
    {
        var root = _temp.Combine("plugins");
        TestPlugins.Install(root, TestPlugins.MissingDependency);
        File.Delete(Path.Combine(root, TestPlugins.MissingDependency, "Coracle.TestPlugins.Dependency.dll"));

        var ex = Assert.Throws<CompositionException>(() => PluginCatalog.Load(PluginDiscovery.Discover([root], [])));

        Assert.Equal(3, ex.ExitCode);
        Assert.StartsWith("plugin 'Coracle.TestPlugins.MissingDependency' failed to load from ", ex.Message, StringComparison.Ordinal);
        Assert.Contains("Coracle.TestPlugins.Dependency", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_PluginWithItsDependency_Loads()
    {
        var catalog = Load(TestPlugins.MissingDependency);

        Assert.Equal(["dependent"], catalog.Entries.Select(e => e.Name));
    }

    [Fact]
    public void Load_TwoFoldersExportingOneName_IsRefused()
    {
        var ex = LoadFails(TestPlugins.Basic, TestPlugins.Duplicate);

        Assert.Equal(3, ex.ExitCode);
        Assert.Equal(
            "plugin name 'flannel' is exported 2 times (by TMP/plugins/Coracle.TestPlugins.Basic and TMP/plugins/Coracle.TestPlugins.Duplicate); remove one of the plugin folders",
            Normalize(ex.Message));
    }

    [Fact]
    public void Discover_FolderWithoutItsAssembly_IsRefused()
    {
        var root = _temp.Combine("plugins");
        TestPlugins.Install(root, TestPlugins.Basic);
        Directory.CreateDirectory(Path.Combine(root, "Empty"));

        var ex = Assert.Throws<CompositionException>(() => PluginDiscovery.Discover([root], []));

        Assert.Equal("plugin folder 'TMP/plugins/Empty' has no Empty.dll; reinstall the plugin or remove the folder", Normalize(ex.Message));
    }

    [Fact]
    public void Discover_ExplicitDirThatDoesNotExist_IsAConfigError()
    {
        var missing = _temp.Combine("nope");

        var ex = Assert.Throws<CompositionException>(() => PluginDiscovery.Discover([missing], [missing]));

        Assert.Equal(2, ex.ExitCode);
        Assert.Equal("plugin-dir 'TMP/nope' does not exist; create it or remove it from plugin-dir", Normalize(ex.Message));
    }
}
