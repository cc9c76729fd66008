using Microsoft.Extensions.Logging;

namespace Coracle.Plugins;

/// <summary>
/// Everything a plugin gets from the host. Plugins never reach for statics: configuration, folders,
/// logging, supervision, manifests and certificates all come through here.
/// </summary>
public interface IPluginContext
{
    /// <summary>The node-wide settings resolved from appliance.toml, environment and flags.</summary>
    NodeSettings Node { get; }

    /// <summary>
    /// The plugin's own section, <c>[plugins.NAME]</c> in appliance.toml, as key/value strings.
    /// Plugins report bad values by throwing <see cref="PluginConfigException"/>.
    /// </summary>
    IReadOnlyDictionary<string, string> Options { get; }

    /// <summary>A folder under the data dir that belongs to this plugin alone (created, mode 0700).</summary>
    string PluginDataDir { get; }

    /// <summary>The folders the plugin declares with <see cref="PluginFolderAttribute"/>, by name, absolute and created.</summary>
    IReadOnlyDictionary<string, string> Folders { get; }

    /// <summary>A logger named after the plugin.</summary>
    ILogger Logger { get; }

    /// <summary>Creates further loggers (one per component is usual).</summary>
    ILoggerFactory LoggerFactory { get; }

    /// <summary>Where the plugin registers the processes and in-process services it runs.</summary>
    ISupervisor Supervisor { get; }

    /// <summary>Where the plugin drops Kubernetes manifests for the node to apply.</summary>
    IManifestSink Manifests { get; }

    /// <summary>The node's certificate material.</summary>
    INodeCertificates Certificates { get; }
}

/// <summary>A bad value in a plugin's configuration. The host reports it with the file and key, and exits 2.</summary>
public sealed class PluginConfigException : Exception
{
    /// <summary>Creates the error.</summary>
    /// <param name="key">The key under <c>[plugins.NAME]</c> (or the flag) that is wrong.</param>
    /// <param name="message">What is wrong and how to fix it, in one line.</param>
    public PluginConfigException(string key, string message)
        : base(message)
    {
        Key = key;
    }

    /// <summary>The offending key.</summary>
    public string Key { get; }
}
