using Coracle.Core.Composition;
using Coracle.Plugins;

namespace Coracle.Core.Tests.Composition;

/// <summary>Folders plugins declare: checked when the plugins load, resolved the same way by host and plugin.</summary>
public sealed class PluginFoldersTests
{
    [PluginFolder("root", "agent/store")]
    [PluginFolder("images", "agent/images")]
    private sealed class Store;

    private static PluginEntry Entry(string name, string folder, params PluginFolderAttribute[] folders) =>
        new(new PluginMetadata(name, ExtensionPoints.ContainerRuntime), folder, "1.0.0", PluginCatalog.Contracts[ExtensionPoints.ContainerRuntime],
            () => throw new InvalidOperationException("not constructed")) { Folders = folders };

    [Fact]
    public void Resolve_GivesAbsolutePathsUnderTheDataDir()
    {
        var folders = PluginFolderAttribute.Resolve(typeof(Store), "/var/lib/coracle");

        Assert.Equal("/var/lib/coracle/agent/store", folders["root"]);
        Assert.Equal("/var/lib/coracle/agent/images", folders["images"]);
    }

    [Fact]
    public void Check_FolderOutsideTheDataDirOrSharedByTwoPlugins_IsAnError()
    {
        var errors = PluginSettings.Check(
        [
            Entry("a", "/plugins/A", new PluginFolderAttribute("ok", "agent/images"), new PluginFolderAttribute("up", "../etc")),
            Entry("b", "/plugins/B", new PluginFolderAttribute("abs", "/etc/b"), new PluginFolderAttribute("same", "agent/images/")),
            Entry("c", "/plugins/A", new PluginFolderAttribute("sibling", "agent/images")), // same assembly: one of them runs
        ]);

        Assert.Equal(
        [
            "plugin 'a' in /plugins/A declares folder 'up' as '../etc'; a folder is a relative path inside the data dir, like agent/images; fix its [PluginFolder] attribute",
            "plugin 'b' in /plugins/B declares folder 'abs' as '/etc/b'; a folder is a relative path inside the data dir, like agent/images; fix its [PluginFolder] attribute",
            "plugins 'a' and 'b' both declare the folder agent/images; one of them must use another",
        ], errors);
    }
}
