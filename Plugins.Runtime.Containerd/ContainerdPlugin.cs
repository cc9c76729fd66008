using Microsoft.Extensions.Logging;

namespace Coracle.Plugins.Runtime.Containerd;

/// <summary>
/// The containerd container runtime: writes containerd's configuration from the node settings, registers
/// containerd with the supervisor (ready when CRI answers), imports the airgap images after it is ready and then
/// provides the sandbox (pause) image itself when none was imported. Its cleanup kills the node's containers.
/// </summary>
[CoraclePlugin("containerd", ExtensionPoints.ContainerRuntime, typeof(IContainerRuntime),
    Description = "containerd + runc: generated config, CRI readiness, airgap image import", IsDefault = true, HasCleanup = true)]
[PluginSetting("snapshotter", "Snapshotter; auto picks overlayfs where the kernel supports it, else native", Default = "auto", Choices = ["auto", "overlayfs", "native", "btrfs", "zfs"])]
[PluginSetting("socket", "containerd's socket (default: DATA/run/containerd/containerd.sock)")]
[PluginSetting("containerd-path", "The containerd binary (default: the components folder, else PATH)")]
[PluginSetting("ctr-path", "The ctr binary used for airgap imports (default: the components folder, else PATH)")]
[PluginSetting("registries-file", "A K3s-style registries.yaml with mirrors and credentials")]
[PluginSetting("stream-server-port", "Port of the CRI streaming server (exec, attach, port-forward) on loopback; 0 picks one", Type = PluginSettingType.Integer, Default = "10010")]
[PluginFolder("config", "agent/etc/containerd")]
[PluginFolder("root", "agent/containerd")]
[PluginFolder("images", "agent/images")]
public sealed class ContainerdPlugin : IContainerRuntime, IValidatesOptions, IPluginCleanup
{
    /// <summary>The in-process component that imports the airgap images.</summary>
    public const string AirgapComponentName = "airgap-images";

    private readonly string _hostRoot;
    private readonly bool _probeOverlayMount;
    private readonly string? _pathVariable;

    /// <summary>Probes the real host (<c>/</c>) and the process's PATH.</summary>
    public ContainerdPlugin()
        : this("/", probeOverlayMount: true, Environment.GetEnvironmentVariable("PATH"))
    {
    }

    /// <summary>Probes a fake root (tests): no overlay mount, the given PATH.</summary>
    internal ContainerdPlugin(string hostRoot, bool probeOverlayMount, string? pathVariable)
    {
        _hostRoot = hostRoot;
        _probeOverlayMount = probeOverlayMount;
        _pathVariable = pathVariable;
    }

    /// <inheritdoc />
    public void ValidateOptions(NodeSettings node, IReadOnlyDictionary<string, string> options, string pluginDataDir)
    {
        var settings = ContainerdSettings.FromOptions(node, options, pluginDataDir);
        if (settings.RegistriesFile is not null)
        {
            _ = RegistriesConfig.Load(settings.RegistriesFile);
        }
    }

    /// <inheritdoc />
    /// <remarks>
    /// The containers outlive containerd (as with K3s): kills this node's shims, those whose <c>-address</c> is the
    /// socket <see cref="Configure"/> gives the node, and every process below them, then unmounts and deletes the
    /// <c>/run/netns/cni-*</c> network namespaces of those pods (<see cref="ContainerdCleanup"/>). Other nodes'
    /// containers on the same machine are left alone.
    /// </remarks>
    public Task CleanupAsync(NodeSettings node, IReadOnlyDictionary<string, string> options, ILogger logger, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(node);
        ArgumentNullException.ThrowIfNull(options);
        return new ContainerdCleanup(Path.Combine(_hostRoot, "proc")).RunAsync(SocketOf(node, options), logger, cancellationToken);
    }

    /// <summary>
    /// The socket <see cref="Configure"/> gives the node. Only the <c>socket</c> option counts, so another option that
    /// became invalid since the node ran does not keep its containers alive.
    /// </summary>
    /// <exception cref="PluginConfigException">The <c>socket</c> option is invalid.</exception>
    internal static string SocketOf(NodeSettings node, IReadOnlyDictionary<string, string> options)
    {
        var socketOnly = options.Where(o => string.Equals(o.Key, "socket", StringComparison.OrdinalIgnoreCase))
            .ToDictionary(o => o.Key, o => o.Value, StringComparer.OrdinalIgnoreCase);
        return ContainerdSettings.FromOptions(node, socketOnly, Path.Combine(node.DataDir, "plugins", "containerd")).Socket;
    }

    /// <inheritdoc />
    public RuntimeEndpoint Configure(IPluginContext context, RuntimeOptions options)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(options);
        var settings = ContainerdSettings.FromOptions(context.Node, context.Options, context.PluginDataDir, context.Folders);
        var registries = settings.RegistriesFile is null ? RegistriesConfig.Empty : RegistriesConfig.Load(settings.RegistriesFile);
        var facts = HostProbe.Detect(_hostRoot, context.Node.CgroupDriver);
        var snapshotter = HostProbe.ChooseSnapshotter(settings.Snapshotter, facts, _probeOverlayMount ? settings.RootDir : null);
        WriteConfiguration(settings, facts, snapshotter, options, registries, context.Logger);

        var endpoint = new RuntimeEndpoint(settings.Socket, ContainerdProcess.ComponentName);
        var binary = BinaryLocator.Find("containerd", settings.ContainerdPath, settings.ComponentsDir, _pathVariable, out var searched);
        if (binary is null)
        {
            var reason = $"containerd binary not found in {searched}; install Debian's containerd";
            Log.Unavailable(context.Logger, reason);
            context.Supervisor.ReportUnavailable(ContainerdProcess.ComponentName, reason);
            return endpoint;
        }

        context.Supervisor.Add(ContainerdProcess.Build(settings, binary, _pathVariable));

        var ctr = BinaryLocator.Find("ctr", settings.CtrPath, settings.ComponentsDir, _pathVariable, out var ctrSearched);
        if (ctr is null)
        {
            context.Supervisor.ReportUnavailable(AirgapComponentName,
                $"ctr binary not found in {ctrSearched}; install Debian's containerd");
            return endpoint;
        }

        var zstd = BinaryLocator.Find("zstd", null, settings.ComponentsDir, _pathVariable, out _);
        var importLog = context.LoggerFactory.CreateLogger(AirgapComponentName);
        var importer = new AirgapImporter(settings.ImagesDir, settings.AirgapStateFile, ctr, settings.Socket, snapshotter, zstd, importLog);
        // The static busybox that Coracle's own pause image is built from: the image's components folder, else the host's.
        var busybox = BinaryLocator.Find("busybox", null, settings.ComponentsDir, null, out _)
            ?? (File.Exists(Path.Combine(_hostRoot, "bin", "busybox")) ? Path.Combine(_hostRoot, "bin", "busybox") : null);
        var imported = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        context.Supervisor.Add(new InProcessComponent
        {
            Name = AirgapComponentName,
            DependsOn = [ContainerdProcess.ComponentName],
            Readiness = new CustomProbe(_ => Task.FromResult(imported.Task.IsCompleted)),
            Run = async cancellationToken =>
            {
                await importer.ImportAllAsync(cancellationToken);
                var missing = await SandboxImage.EnsureAsync(importer, settings.PauseImage, busybox, context.PluginDataDir, importLog, cancellationToken);
                if (missing is not null)
                {
                    context.Supervisor.ReportDetail(AirgapComponentName, $"sandbox image {settings.PauseImage} unavailable: {missing}");
                }

                imported.TrySetResult();
                await Task.Delay(Timeout.Infinite, cancellationToken);
            },
        });
        return endpoint;
    }

    /// <summary>
    /// Writes config.toml (from config.toml.tmpl when present, else generated; mode 0600 since it may hold registry
    /// credentials) and recreates certs.d with one hosts.toml per registry.
    /// </summary>
    internal static void WriteConfiguration(
        ContainerdSettings settings, RuntimeHostFacts facts, string snapshotter, RuntimeOptions options, RegistriesConfig registries, ILogger logger)
    {
        foreach (var handler in options.Handlers)
        {
            Log.Handler(logger, handler.Name, handler.BinaryPath);
        }

        var generated = ContainerdConfig.Render(settings, facts, snapshotter, options, registries);
        Directory.CreateDirectory(settings.ConfigDir);
        string? template = null;
        if (File.Exists(settings.TemplateFile))
        {
            template = File.ReadAllText(settings.TemplateFile);
            Log.TemplateUsed(logger, settings.TemplateFile);
        }

        WriteFile(settings.ConfigFile, ContainerdConfig.ApplyTemplate(template, generated));
        Log.ConfigWritten(logger, settings.ConfigFile, snapshotter, facts.SystemdCgroup, !facts.HasCapSysResource);

        if (Directory.Exists(settings.CertsDir))
        {
            Directory.Delete(settings.CertsDir, recursive: true);
        }

        Directory.CreateDirectory(settings.CertsDir);
        var hosts = ContainerdConfig.RenderHosts(registries, settings.RegistriesFile ?? "(none)");
        foreach (var (dir, content) in hosts)
        {
            var folder = Path.Combine(settings.CertsDir, dir);
            Directory.CreateDirectory(folder);
            WriteFile(Path.Combine(folder, "hosts.toml"), content);
        }

        if (settings.RegistriesFile is not null)
        {
            Log.RegistriesWritten(logger, settings.RegistriesFile, hosts.Count, settings.CertsDir);
        }
    }

    private static void WriteFile(string path, string content)
    {
        var temp = path + ".tmp";
        File.WriteAllText(temp, content);
        File.SetUnixFileMode(temp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.Move(temp, path, overwrite: true);
    }
}
