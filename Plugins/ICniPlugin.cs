namespace Coracle.Plugins;

/// <summary>The CNI extension point: node networking. Zero or one is active.</summary>
public interface ICniPlugin
{
    /// <summary>Returns the folders the runtime must use; registers the plugin's components.</summary>
    CniSettings Configure(IPluginContext context);
}

/// <summary>The CNI folders the runtime hands to the kubelet's pods.</summary>
/// <param name="BinDir">CNI plugin binaries.</param>
/// <param name="ConfDir">CNI configuration (conflist).</param>
public sealed record CniSettings(string BinDir, string ConfDir);
