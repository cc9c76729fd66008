namespace Coracle.Plugins;

/// <summary>
/// A plugin that checks its <c>[plugins.NAME]</c> options before anything starts. The host calls this while it plans
/// the start-up, for every selected plugin, and reports every problem together (exit 2) before it changes anything on
/// disk; <c>coracle config check</c> runs the same plan. Must have no side effects: read files if needed, write none.
/// </summary>
public interface IValidatesOptions
{
    /// <summary>Checks the options; throws <see cref="PluginConfigException"/> for the first problem found.</summary>
    /// <param name="node">The node-wide settings.</param>
    /// <param name="options">The plugin's <c>[plugins.NAME]</c> table.</param>
    /// <param name="pluginDataDir">The folder the plugin will get as <see cref="IPluginContext.PluginDataDir"/> (not created yet).</param>
    void ValidateOptions(NodeSettings node, IReadOnlyDictionary<string, string> options, string pluginDataDir);
}
