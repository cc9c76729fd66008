using Coracle.Core.Configuration;
using Coracle.Plugins;

namespace Coracle.Core.Composition;

/// <summary>
/// Picks the active plugin of each extension point from the configuration, by metadata only.
/// Every rule of a bad selection is a <see cref="CompositionException"/> with exit code 2 and the fix.
/// </summary>
internal static class PluginSelector
{
    /// <summary>
    /// Names users may pass to <c>--disable</c> even when the image does not carry them, so one config works across
    /// images: the distribution's list, <c>known-plugins.txt</c> beside the executable (packaging/known-plugins.txt).
    /// </summary>
    public static IReadOnlySet<string> WellKnownNames { get; } = ReadKnownNames(Path.Combine(AppContext.BaseDirectory, "known-plugins.txt"));

    /// <summary>
    /// The extension points whose settings are server flags. An agent never selects their plugins, except the service load
    /// balancer and the ingress (<see cref="AgentFollowsServer"/>).
    /// </summary>
    public static IReadOnlySet<string> ServerOnlyPoints { get; } = new HashSet<string>(StringComparer.Ordinal)
    {
        ExtensionPoints.Datastore, ExtensionPoints.Ingress, ExtensionPoints.LoadBalancer, ExtensionPoints.Addon,
    };

    /// <summary>
    /// Server-only points whose plugin also runs on agents, as the server decides: the service load balancer forwards on
    /// every node, and an in-process ingress serves on every node. An agent selects here what the join told it the server
    /// runs (<c>none</c> turns it off); a manifest-only plugin (Traefik) does nothing on an agent.
    /// </summary>
    public static IReadOnlySet<string> AgentFollowsServer { get; } = new HashSet<string>(StringComparer.Ordinal)
    {
        ExtensionPoints.LoadBalancer, ExtensionPoints.Ingress,
    };

    /// <summary>The setting that names the plugin of a point an agent runs as the server decides (<see cref="AgentFollowsServer"/>).</summary>
    public static Setting FollowedSetting(string point) => point == ExtensionPoints.Ingress ? Settings.Ingress : Settings.LoadBalancer;

    /// <summary>The configured value of <see cref="FollowedSetting"/>.</summary>
    public static string FollowedValue(CoracleConfig config, string point) => point == ExtensionPoints.Ingress ? config.Ingress : config.LoadBalancer;

    /// <summary>
    /// The plugin the server runs at <paramref name="point"/> (<see cref="AgentFollowsServer"/>), told to joining agents:
    /// its name, or empty for none (off, not implemented, or turned off by a setting).
    /// </summary>
    public static string ServerRuns(PluginSelection selection, CoracleConfig config, string point) =>
        selection.Single(point) is { } entry && entry.Metadata.Implemented && TurnedOffBy(entry, config) is null ? entry.Name : "";

    /// <summary>The names in a known-plugins file (one per line, <c>#</c> comments); empty when it is missing.</summary>
    public static IReadOnlySet<string> ReadKnownNames(string path) =>
        File.Exists(path)
            ? File.ReadLines(path).Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')).ToHashSet(StringComparer.OrdinalIgnoreCase)
            : new HashSet<string>(StringComparer.OrdinalIgnoreCase);

    public static PluginSelection Select(IReadOnlyList<PluginEntry> entries, CoracleConfig config, string architecture)
    {
        var byName = entries.ToDictionary(e => e.Name, StringComparer.OrdinalIgnoreCase);
        var installed = string.Join(", ", entries.Select(e => e.Name).Order(StringComparer.Ordinal));
        if (installed.Length == 0)
        {
            installed = "none";
        }

        string Source(Setting s) => config.Sources.TryGetValue(s, out var v) && v.Source != "default" ? v.Source : s.Path;

        // Every problem is collected and reported together (exit 2), like configuration errors.
        var errors = new List<string>();
        foreach (var name in config.Disable)
        {
            if (!byName.ContainsKey(name) && !WellKnownNames.Contains(name))
            {
                errors.Add($"{Source(Settings.Disable)}: unknown plugin '{name}'; installed plugins: {installed}");
            }
        }

        foreach (var name in config.Enable)
        {
            if (!byName.ContainsKey(name))
            {
                errors.Add($"{Source(Settings.Enable)}: unknown plugin '{name}'; installed plugins: {installed}");
            }
        }

        var disabled = new HashSet<string>(config.Disable, StringComparer.OrdinalIgnoreCase);
        var chosen = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase); // name -> why
        var why = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var server = config.Role == "server";

        void Choose(string point, Setting setting, string value)
        {
            if (value == "none")
            {
                return;
            }

            if (value.Length == 0)
            {
                // The image's default for the point, if it carries one.
                if (entries.Where(e => e.Point == point && e.Metadata.IsDefault).OrderBy(e => e.Metadata.Order).ThenBy(e => e.Name, StringComparer.Ordinal).FirstOrDefault() is { } fallback)
                {
                    chosen[fallback.Name] = $"the default {point}";
                }

                return;
            }

            if (!byName.TryGetValue(value, out var entry))
            {
                errors.Add($"{Source(setting)}: unknown plugin '{value}'; installed {point} plugins: {Installed(entries, point)}");
                return;
            }

            if (entry.Point != point)
            {
                errors.Add($"{Source(setting)}: '{value}' is a {entry.Point} plugin, not a {point} plugin; installed {point} plugins: {Installed(entries, point)}");
                return;
            }

            chosen[entry.Name] = $"{setting.Path} = {value}";
        }

        if (server)
        {
            // --cluster-init: the datastore that serves etcd endpoints (https://) runs its embedded etcd (the endpoint stays empty).
            // A server that joins another (--server) without --datastore-endpoint does too, as with K3s: the embedded SQLite
            // cannot be shared, so the only cluster it can join without an external datastore is an embedded etcd one.
            var joinsEtcd = config.ServerUrl.Length > 0 && config.DatastoreEndpoint.Length == 0;
            var clusterInit = (config.ClusterInit && config.DatastoreEndpoint.Length == 0) || joinsEtcd;
            var datastore = clusterInit
                ? DatastoreFor("https://", (joinsEtcd ? Source(Settings.Server) : Source(Settings.ClusterInit)) + " (embedded etcd: the datastore serving https://)", entries, errors)
                : DatastoreFor(config.DatastoreEndpoint, Source(Settings.DatastoreEndpoint), entries, errors);
            if (datastore is not null)
            {
                chosen[datastore.Name] = joinsEtcd ? "server (joins embedded etcd)" : clusterInit ? "cluster-init" : config.DatastoreEndpoint.Length == 0 ? "default datastore" : "datastore-endpoint";
            }
        }

        Choose(ExtensionPoints.ContainerRuntime, Settings.Runtime, config.Runtime);
        Choose(ExtensionPoints.Cni, Settings.Cni, config.Cni);
        Choose(ExtensionPoints.Ingress, Settings.Ingress, config.Ingress);
        Choose(ExtensionPoints.LoadBalancer, Settings.LoadBalancer, config.LoadBalancer);

        foreach (var handler in entries.Where(e => e.Point == ExtensionPoints.RuntimeHandler))
        {
            chosen[handler.Name] = "runtime handlers are active when installed";
        }

        // Like K3s's packaged components: every installed add-on runs unless --disable names it.
        foreach (var addon in entries.Where(e => e.Point == ExtensionPoints.Addon))
        {
            chosen[addon.Name] = "add-ons are active when installed";
        }

        foreach (var name in config.Enable.Where(byName.ContainsKey))
        {
            chosen[byName[name].Name] = "plugins.enable";
        }

        foreach (var name in disabled)
        {
            if (chosen.Remove(name))
            {
                why[name] = $"disabled by {Source(Settings.Disable)}";
            }
        }

        // A plugin's own setting may switch it off (K3s's --flannel-backend=none).
        foreach (var entry in entries.Where(e => chosen.ContainsKey(e.Name)))
        {
            if (TurnedOffBy(entry, config) is { } setting)
            {
                chosen.Remove(entry.Name);
                why[entry.Name] = $"{Source(setting)} = {Setting.PlainText(config.Sources[setting].Value)}";
            }
        }

        var selected = entries.Where(e => chosen.ContainsKey(e.Name)).ToList();
        if (!server)
        {
            foreach (var e in selected.Where(e => ServerOnlyPoints.Contains(e.Point) && !AgentFollowsServer.Contains(e.Point)).ToList())
            {
                selected.Remove(e);
                why[e.Name] = "server-only extension point";
            }
        }

        CheckCount(selected, ExtensionPoints.Cni, "keep one: set plugins.cni to the one you want, or --disable the other", errors);
        CheckCount(selected, ExtensionPoints.Ingress, "keep one: --disable the other", errors);
        CheckCount(selected, ExtensionPoints.LoadBalancer, "keep one: --disable the other", errors);
        CheckCount(selected, ExtensionPoints.ContainerRuntime, "set plugins.runtime to one of them", errors);
        if (server)
        {
            CheckCount(selected, ExtensionPoints.Datastore, "pick one with --datastore-endpoint", errors);
        }

        if (!selected.Any(e => e.Point == ExtensionPoints.ContainerRuntime))
        {
            errors.Add($"no container runtime plugin is installed or selected (plugins.runtime = {(config.Runtime.Length == 0 ? "the default" : config.Runtime)}); install a container runtime plugin into the plugins folder or re-enable it");
        }

        foreach (var a in selected)
        {
            if (a.Metadata.Architectures.Count > 0 &&
                !a.Metadata.Architectures.Contains(architecture, StringComparer.OrdinalIgnoreCase))
            {
                errors.Add($"plugin '{a.Name}' is built for {string.Join("/", a.Metadata.Architectures)} but this node is {architecture}; install the {architecture} image's plugin or --disable {a.Name}");
            }

            foreach (var b in selected)
            {
                // Two of one single-active point (two CNIs) are already reported with the fix; a declared conflict adds nothing.
                if (a != b && a.Metadata.Conflicts.Contains(b.Name, StringComparer.OrdinalIgnoreCase) && a.Point != b.Point
                    && !errors.Contains($"plugins '{b.Name}' and '{a.Name}' conflict and cannot both be active; --disable one of them"))
                {
                    errors.Add($"plugins '{a.Name}' and '{b.Name}' conflict and cannot both be active; --disable one of them");
                }
            }
        }

        if (errors.Count > 0)
        {
            throw new CompositionException(errors, ExitCodes.InvalidConfig);
        }

        var decisions = entries.Select(e =>
        {
            if (selected.Contains(e))
            {
                return new PluginDecision(e, true, e.Metadata.Implemented ? chosen[e.Name] : "selected, but not implemented in this build");
            }

            if (why.TryGetValue(e.Name, out var reason))
            {
                return new PluginDecision(e, false, reason);
            }

            if (e.Metadata.Architectures.Count > 0 && !e.Metadata.Architectures.Contains(architecture, StringComparer.OrdinalIgnoreCase))
            {
                return new PluginDecision(e, false, $"built for {string.Join("/", e.Metadata.Architectures)}");
            }

            var other = selected.FirstOrDefault(s => s.Point == e.Point);
            return new PluginDecision(e, false, other is not null ? $"{other.Name} is the active {e.Point}" : "not selected");
        }).ToList();

        return new PluginSelection(decisions);
    }

    /// <summary>
    /// The datastore plugin that serves a K3s-style endpoint, by the URL schemes the installed datastore plugins declare
    /// (<see cref="PluginMetadata.EndpointSchemes"/>; an empty scheme serves the empty endpoint, the default); null
    /// with the reason added to <paramref name="errors"/>.
    /// </summary>
    public static PluginEntry? DatastoreFor(string endpoint, string source, IReadOnlyList<PluginEntry> entries, List<string> errors)
    {
        var datastores = entries.Where(e => e.Point == ExtensionPoints.Datastore).ToList();
        var choices = datastores.Count == 0
            ? "none"
            : string.Join(", ", datastores.OrderBy(e => e.Name, StringComparer.Ordinal).Select(e =>
                $"{e.Name} ({(e.Metadata.EndpointSchemes.Count == 0 ? "no endpoint schemes declared" : string.Join(", ", e.Metadata.EndpointSchemes.Select(s => s.Length == 0 ? "the default" : s + "://")))})"));
        var scheme = "";
        if (endpoint.Length > 0)
        {
            if (!endpoint.Contains("://", StringComparison.Ordinal))
            {
                errors.Add($"{source}: the datastore endpoint has no scheme; give SCHEME://... for one of the installed datastores: {choices}");
                return null;
            }

            scheme = endpoint.Split("://", 2)[0];
        }

        var match = datastores.FirstOrDefault(e => e.Metadata.EndpointSchemes.Contains(scheme, StringComparer.OrdinalIgnoreCase));
        if (match is null)
        {
            errors.Add(scheme.Length == 0
                ? $"{source}: no installed datastore serves the default (empty) endpoint; give --datastore-endpoint for one of the installed datastores: {choices}"
                : $"{source}: no installed datastore serves '{scheme}://'; installed datastores: {choices}");
        }

        return match;
    }

    /// <summary>The plugin's setting whose value switches it off, or null.</summary>
    public static Setting? TurnedOffBy(PluginEntry entry, CoracleConfig config) =>
        entry.Settings.FirstOrDefault(s => s.TurnsOff.Count > 0 && config.Sources.TryGetValue(s, out var value)
            && s.TurnsOff.Contains(Setting.PlainText(value.Value), StringComparer.OrdinalIgnoreCase));

    private static void CheckCount(List<PluginEntry> selected, string point, string fix, List<string> errors)
    {
        var active = selected.Where(e => e.Point == point).ToList();
        if (active.Count > 1)
        {
            errors.Add($"{active.Count} {point} plugins are selected ({string.Join(", ", active.Select(e => e.Name))}) but at most one may be active; {fix}");
        }
    }

    private static string Installed(IEnumerable<PluginEntry> entries, string point)
    {
        var names = entries.Where(e => e.Point == point).Select(e => e.Name).Order(StringComparer.Ordinal).ToList();
        return names.Count == 0 ? "none" : string.Join(", ", names);
    }
}
