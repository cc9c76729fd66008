using Coracle.Plugins;
using Microsoft.Extensions.Logging;

namespace Coracle.Core.Hosting;

/// <summary>The host's <see cref="IPluginContext"/>: one per active plugin.</summary>
internal sealed record PluginContext(
    NodeSettings Node,
    IReadOnlyDictionary<string, string> Options,
    string PluginDataDir,
    IReadOnlyDictionary<string, string> Folders,
    ILogger Logger,
    ILoggerFactory LoggerFactory,
    ISupervisor Supervisor,
    IManifestSink Manifests,
    INodeCertificates Certificates) : IPluginContext;
