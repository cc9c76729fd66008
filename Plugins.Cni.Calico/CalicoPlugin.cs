using Microsoft.Extensions.Logging;

namespace Coracle.Plugins.Cni.Calico;

/// <summary>
/// Calico instead of flannel, through the tigera operator: contributes the operator and an <c>Installation</c> for the
/// cluster CIDR as manifests, and returns the CNI folders calico-node installs its plugins and config into. Selected
/// with <c>cni = "calico"</c>; conflicts with flannel.
/// </summary>
[CoraclePlugin("calico", ExtensionPoints.Cni, typeof(ICniPlugin),
    Description = "Calico networking through the tigera operator (instead of flannel)", Conflicts = new[] { "flannel" })]
[PluginSetting("encapsulation", "IP pool encapsulation: VXLAN, IPIP or None", Default = "VXLAN")]
[PluginSetting("mtu", "Pod MTU (default: 1450 for VXLAN, 1480 for IPIP, 1500 for None)")]
[PluginSetting("block-size", "IP pool block size", Type = PluginSettingType.Integer, Default = "26")]
[PluginSetting("iface", "Interface calico-node autodetects its address on (default: the one holding --node-ip, else the first found)")]
[PluginSetting("bin-dir", "CNI plugin binaries calico-node installs", Default = "/opt/cni/bin")]
[PluginSetting("conf-dir", "CNI configuration calico-node writes", Default = "/etc/cni/net.d")]
[PluginSetting("operator-image", "The tigera operator image", Default = CalicoSettings.DefaultOperatorImage)]
public sealed class CalicoPlugin : ICniPlugin, IValidatesOptions
{
    /// <inheritdoc />
    public void ValidateOptions(NodeSettings node, IReadOnlyDictionary<string, string> options, string pluginDataDir) =>
        _ = CalicoSettings.Resolve(node, options);

    /// <inheritdoc />
    public CniSettings Configure(IPluginContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var settings = CalicoSettings.Resolve(context.Node, context.Options);
        context.Manifests.Write(CalicoManifests.OperatorFile, CalicoManifests.RenderOperator(settings));
        context.Manifests.Write(CalicoManifests.InstallationFile, CalicoManifests.RenderInstallation(settings));
        Log.Configured(context.Logger, settings.ClusterCidr, settings.Encapsulation, settings.Mtu, settings.BinDir, settings.ConfDir);
        return new CniSettings(settings.BinDir, settings.ConfDir);
    }
}

/// <summary>The plugin's log messages; event ids 4350-4399 belong to this plugin.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 4350, Level = LogLevel.Information, Message = "calico: pool {Cidr}, encapsulation {Encapsulation}, mtu {Mtu}; CNI bin {BinDir}, conf {ConfDir}")]
    public static partial void Configured(ILogger logger, string cidr, string encapsulation, int mtu, string binDir, string confDir);
}
