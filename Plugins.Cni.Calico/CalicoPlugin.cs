using Coracle.Plugins;

namespace Coracle.Plugins.Cni.Calico;

/// <summary>
/// Calico networking through the tigera operator (instead of flannel). Placeholder: the metadata is real (selection, conflicts, listing), the implementation is not
/// there yet, so the host reports it as not implemented and never constructs it.
/// </summary>
[CoraclePlugin("calico", ExtensionPoints.Cni, typeof(ICniPlugin), Description = "Calico networking through the tigera operator (instead of flannel)", Implemented = false, Conflicts = new[] { "flannel" })]
public sealed class CalicoPlugin : ICniPlugin
{
    /// <inheritdoc />
    public CniSettings Configure(IPluginContext context) =>
        throw new NotSupportedException("calico is not implemented in this build");
}
