using Coracle.Plugins;
using Coracle.TestPlugins.Dependency;

namespace Coracle.TestPlugins.MissingDependency;

/// <summary>A plugin whose type needs another assembly of its folder.</summary>
[CoraclePlugin("dependent", ExtensionPoints.Ingress, typeof(IIngressController), Description = "needs its dependency")]
public sealed class DependentPlugin : HelperBase, IIngressController
{
    /// <inheritdoc />
    public void Configure(IPluginContext context)
    {
    }
}
