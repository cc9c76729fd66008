using Coracle.Core.Composition;
using Coracle.Core.Configuration;
using Coracle.Plugins;

namespace Coracle.Core.Tests.Support;

/// <summary>An add-on with a setting that switches it off; never constructed.</summary>
[PluginSetting("mode", "Test mode; off turns the add-on off", Default = "on", Choices = ["on", "off"], TurnsOff = ["off"])]
internal sealed class FakeAddon
{
    public static PluginEntry Entry { get; } = new(new PluginMetadata("fake-addon", ExtensionPoints.Addon), "/plugins/fake-addon", "1.0.0",
        PluginCatalog.Contracts[ExtensionPoints.Addon], () => throw new InvalidOperationException("not constructed"))
    {
        Settings = PluginSettings.Declared(typeof(FakeAddon), new PluginMetadata("fake-addon", ExtensionPoints.Addon)),
    };

    public static IReadOnlyList<Setting> Settings => Entry.Settings;

    public static Setting Mode => Settings.Single(s => s.Key == "mode");
}
