using Coracle.Plugins;

namespace Coracle.TestPlugins.Duplicate;

/// <summary>Exports a name another plugin folder already exports.</summary>
[CoraclePlugin("flannel", ExtensionPoints.Cni, typeof(ICniPlugin), Description = "duplicate flannel")]
public sealed class DuplicatePlugin : ICniPlugin
{
    /// <inheritdoc />
    public CniSettings Configure(IPluginContext context) => new("/opt/cni/bin", "/etc/cni/net.d");
}
