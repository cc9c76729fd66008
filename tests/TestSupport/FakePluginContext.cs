using System.Collections.Concurrent;
using Coracle.Plugins;
using Microsoft.Extensions.Logging;

namespace Coracle.TestSupport;

/// <summary>The host's side of a plugin, recorded, for unit tests of a plugin's Configure.</summary>
public sealed class FakePluginContext : IPluginContext
{
    /// <param name="node">The node settings.</param>
    /// <param name="options">The plugin's options.</param>
    /// <param name="pluginDataDir">The plugin's folder (default DATA/plugins/test).</param>
    /// <param name="plugin">The plugin's class: its declared folders are created under the data dir and handed in <see cref="Folders"/>, as the host does.</param>
    public FakePluginContext(NodeSettings node, IReadOnlyDictionary<string, string>? options = null, string? pluginDataDir = null, Type? plugin = null)
    {
        ArgumentNullException.ThrowIfNull(node);
        Node = node;
        Folders = plugin is null ? new Dictionary<string, string>() : PluginFolderAttribute.Resolve(plugin, node.DataDir);
        foreach (var folder in Folders.Values)
        {
            Directory.CreateDirectory(folder);
        }

        Options = options ?? new Dictionary<string, string>();
        PluginDataDir = pluginDataDir ?? Path.Combine(node.DataDir, "plugins", "test");
        LoggerFactory = new ListLoggerFactory(Lines);
        Logger = LoggerFactory.CreateLogger("plugin");
    }

    public ConcurrentQueue<string> Lines { get; } = new();

    public NodeSettings Node { get; }

    public IReadOnlyDictionary<string, string> Options { get; }

    public string PluginDataDir { get; }

    public IReadOnlyDictionary<string, string> Folders { get; }

    public ILogger Logger { get; }

    public ILoggerFactory LoggerFactory { get; }

    public RecordingSupervisor Supervisor { get; } = new();

    ISupervisor IPluginContext.Supervisor => Supervisor;

    public RecordingManifests Manifests { get; } = new();

    IManifestSink IPluginContext.Manifests => Manifests;

    public INodeCertificates Certificates => throw new NotSupportedException("this fake context has no certificates");

    public static NodeSettings Settings(string root, string pauseImage = "docker.io/library/busybox:coracle-pause") => new()
    {
        Role = "server",
        NodeName = "test-node",
        DataDir = Path.Combine(root, "data"),
        RunDir = Path.Combine(root, "run"),
        ComponentsDir = Path.Combine(root, "components"),
        Architecture = "x64",
        ClusterCidr = "10.42.0.0/16",
        ServiceCidr = "10.43.0.0/16",
        ClusterDns = "10.43.0.10",
        ClusterDomain = "cluster.local",
        PauseImage = pauseImage,
        ControllerKubeconfig = Path.Combine(root, "data", "server", "cred", "coracle-controller.kubeconfig"),
    };
}

public sealed class RecordingSupervisor : ISupervisor
{
    public List<ComponentSpec> Components { get; } = [];

    public Dictionary<string, string> Unavailable { get; } = [];

    public void Add(ComponentSpec component) => Components.Add(component);

    public Task WaitReadyAsync(string name, CancellationToken cancellationToken) =>
        throw new NotSupportedException("tests drive readiness through the probes");

    public void ReportUnavailable(string name, string reason) => Unavailable[name] = reason;

    public Dictionary<string, string> Details { get; } = [];

    public void ReportDetail(string name, string detail) => Details[name] = detail;
}

public sealed class RecordingManifests : IManifestSink
{
    public Dictionary<string, string> Written { get; } = [];

    public List<string> Removed { get; } = [];

    public void Write(string name, string yaml) => Written[name] = yaml;

    public void Remove(string name) => Removed.Add(name);
}

public sealed class ListLoggerFactory(ConcurrentQueue<string> lines, Func<LogLevel, string, string, string>? format = null) : ILoggerFactory
{
    /// <summary>Collects into its own queue, as "[category] message".</summary>
    public ListLoggerFactory()
        : this(new ConcurrentQueue<string>(), (_, category, message) => $"[{category}] {message}")
    {
    }

    public ConcurrentQueue<string> Lines => lines;

    public void AddProvider(ILoggerProvider provider)
    {
    }

    public ILogger CreateLogger(string categoryName) => new ListLogger(categoryName, lines, format ?? ((level, category, message) => $"{level} {category}: {message}"));

    public void Dispose()
    {
    }

    private sealed class ListLogger(string category, ConcurrentQueue<string> lines, Func<LogLevel, string, string, string> format) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            lines.Enqueue(format(logLevel, category, formatter(state, exception)));
    }
}
