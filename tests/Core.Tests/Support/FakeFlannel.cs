using Coracle.Core.Composition;
using Coracle.Core.Configuration;
using Coracle.Plugins;

namespace Coracle.Core.Tests.Support;

/// <summary>A CNI that declares settings the way the real flannel plugin does; never constructed.</summary>
[PluginSetting("backend", "Flannel backend; none turns flannel off", Default = "vxlan", Choices = ["vxlan", "host-gw", "none"], TurnsOff = ["none"], ClusterWide = true)]
[PluginSetting("iface", "Interface flannel uses")]
[PluginSetting("vni", "VXLAN id", Type = PluginSettingType.Integer, Default = "1")]
[PluginSetting("ip-masq", "Masquerade", Type = PluginSettingType.Boolean, Default = "true", Aliases = ["flannel-masq"])]
internal sealed class FakeFlannel
{
    public static PluginEntry Entry { get; } = new(new PluginMetadata("flannel", ExtensionPoints.Cni) { IsDefault = true }, "/plugins/flannel", "1.0.0",
        PluginCatalog.Contracts[ExtensionPoints.Cni], () => throw new InvalidOperationException("not constructed"))
    {
        Settings = PluginSettings.Declared(typeof(FakeFlannel), new PluginMetadata("flannel", ExtensionPoints.Cni)),
    };

    public static IReadOnlyList<Setting> Settings => Entry.Settings;

    public static Setting Backend => Settings.Single(s => s.Key == "backend");
}
