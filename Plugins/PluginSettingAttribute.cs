namespace Coracle.Plugins;

/// <summary>
/// Declares one setting a plugin owns. The host reads these from the plugin's class without constructing it and treats
/// them exactly like its own settings: a key in the plugin's <c>[plugins.NAME]</c> table of appliance.toml, a flag
/// (<c>--NAME-KEY</c> unless <see cref="Flag"/> says otherwise), an environment variable (<c>CORACLE_</c> and the flag
/// in upper case, <c>-</c> as <c>_</c>), a default, allowed values, a line in <c>coracle config default</c>,
/// <c>--help</c> and <c>coracle config check</c>, and errors with <c>file:line:column</c>. The plugin receives the
/// effective value of every declared setting in <see cref="IPluginContext.Options"/> (defaults included, as text: lists
/// comma-separated, durations like <c>5m</c>). A plugin that declares settings accepts no other key in its table.
/// </summary>
/// <example><code>
/// [CoraclePlugin("flannel", ExtensionPoints.Cni, typeof(ICniPlugin))]
/// [PluginSetting("backend", "Flannel backend", Default = "vxlan", Choices = ["vxlan", "host-gw", "none"], TurnsOff = ["none"], ClusterWide = true)]
/// public sealed class FlannelPlugin : ICniPlugin { ... }   // --flannel-backend, CORACLE_FLANNEL_BACKEND, [plugins.flannel] backend
/// </code></example>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class PluginSettingAttribute : Attribute
{
    /// <summary>Declares a setting.</summary>
    /// <param name="key">The key in <c>[plugins.NAME]</c>: lower case, words joined by <c>-</c>.</param>
    /// <param name="help">One line for <c>--help</c> and <c>coracle config default</c>.</param>
    public PluginSettingAttribute(string key, string help)
    {
        Key = key;
        Help = help;
    }

    /// <summary>The key in <c>[plugins.NAME]</c>.</summary>
    public string Key { get; }

    /// <summary>One line of help.</summary>
    public string Help { get; }

    /// <summary>The value type; the host checks and normalizes it before the plugin sees it.</summary>
    public PluginSettingType Type { get; set; } = PluginSettingType.String;

    /// <summary>The default, written as in appliance.toml without quotes (<c>vxlan</c>, <c>8472</c>, <c>true</c>, <c>5m</c>, <c>a,b</c>).</summary>
    public string Default { get; set; } = "";

    /// <summary>The allowed values of a string setting; empty when free-form.</summary>
    public string[] Choices { get; set; } = [];

    /// <summary>
    /// The flag without dashes. Empty: the plugin's name, <c>-</c> and the key, or the key alone when it already starts
    /// with the plugin's name and <c>-</c>. Set it to keep a K3s flag name.
    /// </summary>
    public string Flag { get; set; } = "";

    /// <summary>Further flag names that mean the same setting (older or K3s spellings).</summary>
    public string[] Aliases { get; set; } = [];

    /// <summary>Values that switch the plugin off, as K3s's <c>--flannel-backend=none</c> does.</summary>
    public string[] TurnsOff { get; set; } = [];

    /// <summary>
    /// Decided on the server for the whole cluster: agents receive the server's value when they join and offer no
    /// flag for it (K3s's <c>--flannel-backend</c>).
    /// </summary>
    public bool ClusterWide { get; set; }

    /// <summary>Set on <c>coracle server</c> only (settings of server-only plugins always are).</summary>
    public bool ServerOnly { get; set; }

    /// <summary>The value must not be printed (passwords, tokens).</summary>
    public bool Secret { get; set; }

    /// <summary>The keys <paramref name="pluginType"/> declares, in declaration order (a plugin's own list of its options).</summary>
    public static IReadOnlyList<string> KeysOf(Type pluginType)
    {
        ArgumentNullException.ThrowIfNull(pluginType);
        return pluginType.GetCustomAttributes(typeof(PluginSettingAttribute), false).Cast<PluginSettingAttribute>().Select(a => a.Key).ToList();
    }
}

/// <summary>The value types of a plugin setting.</summary>
public enum PluginSettingType
{
    /// <summary>Free text, or one of <see cref="PluginSettingAttribute.Choices"/>.</summary>
    String,

    /// <summary>A list of strings: repeated flags or comma-separated; a TOML array.</summary>
    StringList,

    /// <summary>A whole number.</summary>
    Integer,

    /// <summary><c>true</c> or <c>false</c>.</summary>
    Boolean,

    /// <summary>A duration like <c>30s</c>, <c>5m</c> or <c>1h30m</c>.</summary>
    Duration,
}
