using System.Composition;

namespace Coracle.Plugins;

/// <summary>
/// Exports a class as a Coracle plugin and describes it. The host reads this metadata to list and select
/// plugins without constructing the ones it does not use.
/// </summary>
/// <example><code>
/// [CoraclePlugin("flannel", ExtensionPoints.Cni, typeof(ICniPlugin), Description = "VXLAN / host-gw node networking")]
/// public sealed class FlannelPlugin : ICniPlugin { ... }
/// </code></example>
[MetadataAttribute]
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false, Inherited = false)]
public sealed class CoraclePluginAttribute : ExportAttribute
{
    /// <summary>Exports the class under the given contract.</summary>
    /// <param name="name">The plugin's name as users type it (<c>--disable NAME</c>); compared case-insensitively.</param>
    /// <param name="extensionPoint">One of <see cref="ExtensionPoints"/>.</param>
    /// <param name="contractType">The extension point's interface, for example <see cref="ICniPlugin"/>.</param>
    public CoraclePluginAttribute(string name, string extensionPoint, Type contractType)
        : base(contractType)
    {
        Name = name;
        ExtensionPoint = extensionPoint;
    }

    /// <summary>The plugin's name as users type it.</summary>
    public string Name { get; }

    /// <summary>The extension point the plugin fills.</summary>
    public string ExtensionPoint { get; }

    /// <summary>
    /// The architectures the plugin runs on, as .NET names them (<c>x64</c>, <c>arm64</c>, <c>arm</c>).
    /// Empty means every architecture.
    /// </summary>
    public string[] Architectures { get; set; } = [];

    /// <summary>One line that <c>coracle plugins list</c> shows.</summary>
    public string Description { get; set; } = "";

    /// <summary>Names of plugins that cannot be active together with this one.</summary>
    public string[] Conflicts { get; set; } = [];

    /// <summary>
    /// False while the plugin is a placeholder: the host reports it as not implemented instead of starting it.
    /// </summary>
    public bool Implemented { get; set; } = true;

    /// <summary>
    /// The extension point's default: selected when the point's setting (<c>plugins.cni</c>, <c>plugins.runtime</c>,
    /// <c>plugins.ingress</c>, <c>plugins.load-balancer</c>) is left empty, as the shipped appliance.toml leaves it. An
    /// image without the default simply leaves the point empty. Among several installed defaults the lowest
    /// <see cref="Order"/> wins, then the name.
    /// </summary>
    public bool IsDefault { get; set; }

    /// <summary>Lower runs first among plugins of the same extension point (runtime handlers).</summary>
    public int Order { get; set; }

    /// <summary>
    /// Datastore plugins: the <c>--datastore-endpoint</c> URL schemes the plugin serves (<c>postgres</c> serves
    /// <c>postgres://...</c>); an empty string serves the empty endpoint, i.e. the default datastore. The host picks
    /// the datastore by these alone.
    /// </summary>
    public string[] EndpointSchemes { get; set; } = [];

    /// <summary>
    /// The plugin implements <see cref="IPluginCleanup"/>: <c>coracle killall</c> constructs it (even when it was not
    /// selected) and runs its cleanup. Plugins without it are never constructed by killall.
    /// </summary>
    public bool HasCleanup { get; set; }
}
