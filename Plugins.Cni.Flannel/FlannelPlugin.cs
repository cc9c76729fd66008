using Coracle.Plugins;

namespace Coracle.Plugins.Cni.Flannel;

/// <summary>
/// Flannel node networking: VXLAN (default), host-gw or none. Placeholder: the metadata is real (selection, conflicts, listing), the implementation is not
/// there yet, so the host reports it as not implemented and never constructs it.
/// </summary>
[CoraclePlugin("flannel", ExtensionPoints.Cni, typeof(ICniPlugin), Description = "Flannel node networking: VXLAN (default), host-gw or none", Implemented = false)]
public sealed class FlannelPlugin : ICniPlugin
{
    /// <inheritdoc />
    public CniSettings Configure(IPluginContext context) =>
        throw new NotSupportedException("flannel is not implemented in this build");
}
