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
    /// Names users may pass to <c>--disable</c> even when the image does not carry them, so one config
    /// works across images (K3s's packaged components and ours).
    /// </summary>
    public static IReadOnlySet<string> WellKnownNames { get; } = new HashSet<string>(StringComparer.OrdinalIgnoreCase)
    {
        "traefik", "servicelb", "flannel", "calico", "nvidia", "sqlite", "postgres", "mysql", "etcd",
        "containerd", "coredns", "local-storage", "metrics-server",
    };

    public static PluginSelection Select(IReadOnlyList<PluginEntry> entries, CoracleConfig config, string architecture)
    {
        var byName = entries.ToDictionary(e => e.Name, StringComparer.OrdinalIgnoreCase);
        var installed = string.Join(", ", entries.Select(e => e.Name).Order(StringComparer.Ordinal));
        if (installed.Length == 0)
        {
            installed = "none";
        }

        string Source(Setting s) => config.Sources.TryGetValue(s, out var v) && v.Source != "default" ? v.Source : s.Path;
        bool IsDefault(Setting s) => !config.Sources.TryGetValue(s, out var v) || v.Source == "default";

        foreach (var name in config.Disable)
        {
            if (!byName.ContainsKey(name) && !WellKnownNames.Contains(name))
            {
                throw new CompositionException(
                    $"{Source(Settings.Disable)}: unknown plugin '{name}'; installed plugins: {installed}", 2);
            }
        }

        foreach (var name in config.Enable)
        {
            if (!byName.ContainsKey(name))
            {
                throw new CompositionException(
                    $"{Source(Settings.Enable)}: unknown plugin '{name}'; installed plugins: {installed}", 2);
            }
        }

        var disabled = new HashSet<string>(config.Disable, StringComparer.OrdinalIgnoreCase);
        var chosen = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase); // name -> why
        var why = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var server = config.Role == "server";

        void Choose(string point, Setting setting, string value)
        {
            if (value == "none" || value.Length == 0)
            {
                return;
            }

            if (!byName.TryGetValue(value, out var entry))
            {
                if (IsDefault(setting))
                {
                    return; // the image does not carry the default: the point stays empty.
                }

                throw new CompositionException(
                    $"{Source(setting)}: unknown plugin '{value}'; installed {point} plugins: {Installed(entries, point)}", 2);
            }

            if (entry.Point != point)
            {
                throw new CompositionException(
                    $"{Source(setting)}: '{value}' is a {entry.Point} plugin, not a {point} plugin; installed {point} plugins: {Installed(entries, point)}", 2);
            }

            chosen[entry.Name] = $"{setting.Path} = {value}";
        }

        if (server)
        {
            var datastore = DatastoreFor(config.DatastoreEndpoint, Source(Settings.DatastoreEndpoint));
            if (!byName.TryGetValue(datastore, out var ds) || ds.Point != ExtensionPoints.Datastore)
            {
                throw new CompositionException(
                    $"{Source(Settings.DatastoreEndpoint)}: datastore '{datastore}' is not installed in this image; installed datastores: {Installed(entries, ExtensionPoints.Datastore)}", 2);
            }

            chosen[ds.Name] = config.DatastoreEndpoint.Length == 0 ? "default datastore" : "datastore-endpoint";
        }

        Choose(ExtensionPoints.ContainerRuntime, Settings.Runtime, config.Runtime);
        var cni = config.Cni;
        if (config.FlannelBackend == "none" && cni == "flannel")
        {
            why["flannel"] = "flannel-backend = none";
            cni = "none";
        }

        Choose(ExtensionPoints.Cni, Settings.Cni, cni);
        if (server)
        {
            Choose(ExtensionPoints.Ingress, Settings.Ingress, config.Ingress);
            Choose(ExtensionPoints.LoadBalancer, Settings.LoadBalancer, config.LoadBalancer);
        }

        foreach (var handler in entries.Where(e => e.Point == ExtensionPoints.RuntimeHandler))
        {
            chosen[handler.Name] = "runtime handlers are active when installed";
        }

        foreach (var name in config.Enable)
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

        var selected = entries.Where(e => chosen.ContainsKey(e.Name)).ToList();
        if (!server)
        {
            foreach (var e in selected.Where(e => e.Point is ExtensionPoints.Datastore or ExtensionPoints.Ingress or ExtensionPoints.LoadBalancer).ToList())
            {
                selected.Remove(e);
                why[e.Name] = "server-only extension point";
            }
        }

        CheckCount(selected, ExtensionPoints.Cni, required: false,
            "keep one: set plugins.cni to the one you want, or --disable the other");
        CheckCount(selected, ExtensionPoints.Ingress, required: false, "keep one: --disable the other");
        CheckCount(selected, ExtensionPoints.LoadBalancer, required: false, "keep one: --disable the other");
        CheckCount(selected, ExtensionPoints.ContainerRuntime, required: true,
            "set plugins.runtime to one of them");
        if (server)
        {
            CheckCount(selected, ExtensionPoints.Datastore, required: true, "pick one with --datastore-endpoint");
        }

        if (!selected.Any(e => e.Point == ExtensionPoints.ContainerRuntime))
        {
            throw new CompositionException(
                $"no container runtime plugin is installed or selected (plugins.runtime = {config.Runtime}); install the containerd plugin into the plugins folder or re-enable it", 2);
        }

        foreach (var a in selected)
        {
            if (a.Metadata.Architectures.Count > 0 &&
                !a.Metadata.Architectures.Contains(architecture, StringComparer.OrdinalIgnoreCase))
            {
                throw new CompositionException(
                    $"plugin '{a.Name}' is built for {string.Join("/", a.Metadata.Architectures)} but this node is {architecture}; install the {architecture} image's plugin or --disable {a.Name}", 2);
            }

            foreach (var b in selected)
            {
                if (a != b && a.Metadata.Conflicts.Contains(b.Name, StringComparer.OrdinalIgnoreCase))
                {
                    throw new CompositionException(
                        $"plugins '{a.Name}' and '{b.Name}' conflict and cannot both be active; --disable one of them", 2);
                }
            }
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

    /// <summary>Maps a K3s-style datastore endpoint to the datastore plugin's name.</summary>
    public static string DatastoreFor(string endpoint, string source)
    {
        if (endpoint.Length == 0)
        {
            return "sqlite";
        }

        var scheme = endpoint.Split("://", 2)[0].ToLowerInvariant();
        return scheme switch
        {
            "sqlite" => "sqlite",
            "postgres" or "postgresql" => "postgres",
            "mysql" => "mysql",
            "http" or "https" => "etcd",
            _ when !endpoint.Contains("://", StringComparison.Ordinal) =>
                throw new CompositionException($"{source}: the datastore endpoint has no scheme; use sqlite://PATH, postgres://..., mysql://... or https://HOST:2379", 2),
            _ => throw new CompositionException(
                $"{source}: unknown datastore scheme '{scheme}://'; use sqlite://PATH, postgres://..., mysql://... or https://HOST:2379", 2),
        };
    }

    private static void CheckCount(List<PluginEntry> selected, string point, bool required, string fix)
    {
        var active = selected.Where(e => e.Point == point).ToList();
        if (active.Count > 1)
        {
            throw new CompositionException(
                $"{active.Count} {point} plugins are selected ({string.Join(", ", active.Select(e => e.Name))}) but at most one may be active; {fix}", 2);
        }

        if (required && active.Count == 0)
        {
            // Reported by the caller with the point-specific fix.
        }
    }

    private static string Installed(IEnumerable<PluginEntry> entries, string point)
    {
        var names = entries.Where(e => e.Point == point).Select(e => e.Name).Order(StringComparer.Ordinal).ToList();
        return names.Count == 0 ? "none" : string.Join(", ", names);
    }
}
