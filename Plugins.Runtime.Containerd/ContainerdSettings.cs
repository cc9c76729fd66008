namespace Coracle.Plugins.Runtime.Containerd;

/// <summary>
/// Where containerd keeps its files and how it is configured, resolved from the node settings and the
/// plugin's <c>[plugins.containerd]</c> options. Immutable; <see cref="FromOptions"/> validates.
/// </summary>
public sealed record ContainerdSettings
{
    /// <summary>The option keys <c>[plugins.containerd]</c> accepts.</summary>
    public static IReadOnlyList<string> KnownOptions { get; } =
        PluginSettingAttribute.KeysOf(typeof(ContainerdPlugin));

    /// <summary>The snapshotters the option <c>snapshotter</c> accepts (<c>auto</c> detects overlayfs support).</summary>
    public static IReadOnlyList<string> KnownSnapshotters { get; } = ["auto", "overlayfs", "native", "btrfs", "zfs"];

    /// <summary><c>DATA/agent/etc/containerd</c>: config.toml, config.toml.tmpl and certs.d.</summary>
    public required string ConfigDir { get; init; }

    /// <summary><c>DATA/agent/containerd</c>: containerd's root (images, snapshots).</summary>
    public required string RootDir { get; init; }

    /// <summary><c>RUN/containerd</c>: containerd's state dir (tasks, shim sockets).</summary>
    public required string StateDir { get; init; }

    /// <summary>The gRPC (and CRI) socket.</summary>
    public required string Socket { get; init; }

    /// <summary><c>DATA/agent/images</c>: airgap image tarballs.</summary>
    public required string ImagesDir { get; init; }

    /// <summary>The plugin's own folder (airgap import state).</summary>
    public required string PluginDataDir { get; init; }

    /// <summary>Where containerd's binaries are searched after an explicit path: the image's components folder.</summary>
    public required string ComponentsDir { get; init; }

    /// <summary>The pod sandbox image (<c>sandbox_image</c>).</summary>
    public required string PauseImage { get; init; }

    /// <summary>The configured snapshotter, or <c>auto</c>.</summary>
    public string Snapshotter { get; init; } = "auto";

    /// <summary>An explicit containerd binary (<c>containerd-path</c>).</summary>
    public string? ContainerdPath { get; init; }

    /// <summary>An explicit ctr binary (<c>ctr-path</c>).</summary>
    public string? CtrPath { get; init; }

    /// <summary>A K3s-style registries.yaml (<c>registries-file</c>).</summary>
    public string? RegistriesFile { get; init; }

    /// <summary>The CRI streaming server port (exec, attach, port-forward); <c>0</c> picks a free one.</summary>
    public string StreamServerPort { get; init; } = "10010";

    /// <summary>The generated containerd configuration.</summary>
    public string ConfigFile => Path.Combine(ConfigDir, "config.toml");

    /// <summary>A user template that replaces the generated configuration when present.</summary>
    public string TemplateFile => Path.Combine(ConfigDir, "config.toml.tmpl");

    /// <summary>The registry hosts folder (<c>config_path</c>), one <c>HOST/hosts.toml</c> per registry.</summary>
    public string CertsDir => Path.Combine(ConfigDir, "certs.d");

    /// <summary>Remembers which airgap tarballs (by sha256) were imported.</summary>
    public string AirgapStateFile => Path.Combine(PluginDataDir, "airgap-imported.json");

    /// <summary>Resolves the settings, rejecting unknown keys and bad values with the key named.</summary>
    /// <exception cref="PluginConfigException">An option is unknown or has a bad value.</exception>
    /// <param name="node">The node settings.</param>
    /// <param name="options">The plugin's options.</param>
    /// <param name="pluginDataDir">The plugin's own folder.</param>
    /// <param name="folders">The folders the plugin declares, as the host hands them; null: resolved from the declarations.</param>
    public static ContainerdSettings FromOptions(
        NodeSettings node, IReadOnlyDictionary<string, string> options, string pluginDataDir, IReadOnlyDictionary<string, string>? folders = null)
    {
        ArgumentNullException.ThrowIfNull(node);
        ArgumentNullException.ThrowIfNull(options);
        folders ??= PluginFolderAttribute.Resolve(typeof(ContainerdPlugin), node.DataDir);
        foreach (var key in options.Keys)
        {
            if (!KnownOptions.Contains(key, StringComparer.OrdinalIgnoreCase))
            {
                throw new PluginConfigException(key,
                    $"unknown option \"{key}\" in [plugins.containerd]; known options: {string.Join(", ", KnownOptions)}");
            }
        }

        string? Get(string key) =>
            options.FirstOrDefault(kv => string.Equals(kv.Key, key, StringComparison.OrdinalIgnoreCase)) is { Value: { Length: > 0 } value }
                ? value.Trim()
                : null;

        var snapshotter = (Get("snapshotter") ?? "auto").ToLowerInvariant();
        if (!KnownSnapshotters.Contains(snapshotter))
        {
            throw new PluginConfigException("snapshotter",
                $"unknown snapshotter \"{snapshotter}\"; use one of: {string.Join(", ", KnownSnapshotters)}");
        }

        var port = Get("stream-server-port") ?? "10010";
        if (!int.TryParse(port, System.Globalization.NumberStyles.None, null, out var portNumber) || portNumber > 65535)
        {
            throw new PluginConfigException("stream-server-port",
                $"stream-server-port \"{port}\" is not a port number (0-65535)");
        }

        var runDir = Path.Combine(node.RunDir, "containerd");
        var socket = Get("socket") ?? Path.Combine(runDir, "containerd.sock");
        if (!Path.IsPathRooted(socket))
        {
            throw new PluginConfigException("socket", $"socket \"{socket}\" must be an absolute path");
        }

        // sockaddr_un.sun_path is 108 bytes including the terminating NUL.
        if (System.Text.Encoding.UTF8.GetByteCount(socket) > 107)
        {
            throw new PluginConfigException("socket",
                $"socket \"{socket}\" is longer than the 107 bytes a unix socket path may have");
        }

        var registries = Get("registries-file");
        if (registries is not null && !Path.IsPathRooted(registries))
        {
            throw new PluginConfigException("registries-file",
                $"registries-file \"{registries}\" must be an absolute path");
        }

        return new ContainerdSettings
        {
            ConfigDir = folders["config"],
            RootDir = folders["root"],
            StateDir = runDir,
            Socket = socket,
            ImagesDir = folders["images"],
            PluginDataDir = pluginDataDir,
            ComponentsDir = node.ComponentsDir,
            PauseImage = node.PauseImage,
            Snapshotter = snapshotter,
            ContainerdPath = Get("containerd-path"),
            CtrPath = Get("ctr-path"),
            RegistriesFile = registries,
            StreamServerPort = port,
        };
    }
}
