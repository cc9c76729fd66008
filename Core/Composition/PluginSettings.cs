using System.Reflection;
using Coracle.Core.Configuration;
using Coracle.Plugins;

namespace Coracle.Core.Composition;

/// <summary>Turns a plugin's <see cref="PluginSettingAttribute"/> declarations into settings of the host's table.</summary>
internal static class PluginSettings
{
    /// <summary>The settings <paramref name="pluginType"/> declares, as the plugin <paramref name="metadata"/> names them.</summary>
    public static IReadOnlyList<Setting> Declared(Type pluginType, PluginMetadata metadata)
    {
        ArgumentNullException.ThrowIfNull(pluginType);
        ArgumentNullException.ThrowIfNull(metadata);
        var name = metadata.Name.ToLowerInvariant();
        var serverOnlyPoint = PluginSelector.ServerOnlyPoints.Contains(metadata.ExtensionPoint);
        return pluginType.GetCustomAttributes<PluginSettingAttribute>()
            .Select(a =>
            {
                var kind = a.Type switch
                {
                    PluginSettingType.StringList => SettingKind.StringList,
                    PluginSettingType.Integer => SettingKind.Integer,
                    PluginSettingType.Boolean => SettingKind.Boolean,
                    PluginSettingType.Duration => SettingKind.Duration,
                    _ => SettingKind.String,
                };
                object defaultValue = kind == SettingKind.StringList
                    ? SettingParser.SplitList([a.Default])
                    : a.Default;
                var flag = a.Flag.Length > 0 ? a.Flag
                    : a.Key.StartsWith(name + "-", StringComparison.Ordinal) ? a.Key
                    : $"{name}-{a.Key}";
                return new Setting("plugins." + name, a.Key, kind, defaultValue, a.Help)
                {
                    Flag = flag,
                    Aliases = a.Aliases,
                    Choices = a.Choices,
                    ServerOnly = a.ServerOnly || a.ClusterWide || serverOnlyPoint,
                    Secret = a.Secret,
                    Plugin = name,
                    TurnsOff = a.TurnsOff,
                    ClusterWide = a.ClusterWide,
                };
            })
            .ToList();
    }

    /// <summary>
    /// Problems with the declarations themselves (a flag or key used twice, a default that does not parse); each names
    /// the plugin and its folder. Empty when the table is sound.
    /// </summary>
    public static IReadOnlyList<string> Check(IReadOnlyList<PluginEntry> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        var errors = new List<string>();
        var flags = Settings.All.SelectMany(s => s.Aliases.Prepend(s.Flag).Select(f => (Flag: f, Owner: "coracle")))
            .Concat(new[] { "config", "help", "version" }.Select(f => (Flag: f, Owner: "coracle")))
            .ToDictionary(x => x.Flag, x => x.Owner, StringComparer.Ordinal);
        foreach (var entry in entries)
        {
            var keys = new HashSet<string>(StringComparer.Ordinal);
            foreach (var setting in entry.Settings)
            {
                if (!keys.Add(setting.Key))
                {
                    errors.Add($"plugin '{entry.Name}' in {entry.Folder} declares setting '{setting.Key}' twice; fix its [PluginSetting] attributes");
                }

                foreach (var flag in setting.Aliases.Prepend(setting.Flag))
                {
                    if (!flags.TryAdd(flag, "plugin " + entry.Name))
                    {
                        errors.Add($"plugin '{entry.Name}' in {entry.Folder} declares flag --{flag}, which {flags[flag]} already has; rename the flag in its [PluginSetting] attribute");
                    }
                }

                if (setting.Kind != SettingKind.String && setting.Kind != SettingKind.StringList && setting.Default is string text)
                {
                    _ = SettingParser.ParseScalar(setting, text, out var error);
                    if (error is not null && text.Length > 0)
                    {
                        errors.Add($"plugin '{entry.Name}' in {entry.Folder}: the default of setting '{setting.Key}' is wrong: {error}; fix its [PluginSetting] attribute");
                    }
                }
            }
        }

        // Declared folders: inside the data dir, and no two plugins of different assemblies' sharing one (the three SQL
        // datastores of one assembly may, as only one of them runs).
        var owners = new Dictionary<string, PluginEntry>(StringComparer.Ordinal);
        foreach (var entry in entries)
        {
            foreach (var folder in entry.Folders)
            {
                var path = folder.Path.Replace('\\', '/').Trim('/');
                if (path.Length == 0 || Path.IsPathRooted(folder.Path) || path.Split('/').Any(p => p is ".." or "." or ""))
                {
                    errors.Add($"plugin '{entry.Name}' in {entry.Folder} declares folder '{folder.Name}' as '{folder.Path}'; a folder is a relative path inside the data dir, like agent/images; fix its [PluginFolder] attribute");
                }
                else if (owners.TryGetValue(path, out var owner) && owner.Folder != entry.Folder)
                {
                    errors.Add($"plugins '{owner.Name}' and '{entry.Name}' both declare the folder {path}; one of them must use another");
                }
                else
                {
                    owners.TryAdd(path, entry);
                }
            }
        }

        return errors;
    }
}
