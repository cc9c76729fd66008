namespace Coracle.Plugins;

/// <summary>
/// The add-on extension point: a cluster component the server deploys as Kubernetes objects, as K3s packages CoreDNS,
/// local-path storage and metrics-server. Server only; every installed add-on is active unless <c>--disable NAME</c>
/// turns it off (or one of its settings' <see cref="PluginSettingAttribute.TurnsOff"/> values does).
/// </summary>
public interface IAddon
{
    /// <summary>
    /// Renders the add-on's objects and writes them with <see cref="IPluginContext.Manifests"/> as one file,
    /// <c>NAME.yaml</c> (NAME = the plugin's name), which the server applies. The same settings must render the same bytes,
    /// so a restart changes nothing in the cluster. When the add-on is off, the host removes <c>NAME.yaml</c> at start
    /// and the server deletes the objects it had applied from it; turning it back on writes the file again.
    /// </summary>
    void Configure(IPluginContext context);
}
