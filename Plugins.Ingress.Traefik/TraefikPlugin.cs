using Coracle.Plugins;

namespace Coracle.Plugins.Ingress.Traefik;

/// <summary>
/// Traefik ingress controller (--disable traefik). Placeholder: the metadata is real (selection, conflicts, listing), the implementation is not
/// there yet, so the host reports it as not implemented and never constructs it.
/// </summary>
[CoraclePlugin("traefik", ExtensionPoints.Ingress, typeof(IIngressController), Description = "Traefik ingress controller (--disable traefik)", Implemented = false, IsDefault = true)]
public sealed class TraefikPlugin : IIngressController
{
    /// <inheritdoc />
    public void Configure(IPluginContext context) =>
        throw new NotSupportedException("traefik is not implemented in this build");
}
