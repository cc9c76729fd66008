namespace Coracle.Plugins;

/// <summary>
/// Collects Kubernetes manifests (YAML) that the node applies, like K3s's
/// <c>server/manifests</c> folder.
/// </summary>
public interface IManifestSink
{
    /// <summary>Adds or replaces the manifest file <paramref name="name"/> (for example <c>traefik.yaml</c>).</summary>
    void Write(string name, string yaml);

    /// <summary>Removes a manifest this plugin wrote earlier (the plugin was disabled).</summary>
    void Remove(string name);
}
