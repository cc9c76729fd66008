using Coracle.Plugins;

namespace Coracle.TestPlugins.Calico;

/// <summary>A second CNI that conflicts with flannel.</summary>
[CoraclePlugin("calico", ExtensionPoints.Cni, typeof(ICniPlugin), Description = "test calico", Conflicts = new[] { "flannel" })]
public sealed class CalicoPlugin : ICniPlugin
{
    /// <summary>Throws: the host must never construct a plugin it did not select.</summary>
    public CalicoPlugin() => throw new InvalidOperationException("calico was constructed although it was not selected");

    /// <inheritdoc />
    public CniSettings Configure(IPluginContext context) => new("/opt/cni/bin", "/etc/cni/net.d");
}
