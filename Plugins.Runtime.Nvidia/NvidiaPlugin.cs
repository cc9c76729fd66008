using Microsoft.Extensions.Logging;

namespace Coracle.Plugins.Runtime.Nvidia;

/// <summary>
/// Discovers the NVIDIA container runtimes on the host and contributes a runtime handler and a RuntimeClass
/// manifest (<c>nvidia.yaml</c>, <c>nvidia-experimental.yaml</c>, <c>nvidia-cdi.yaml</c>) for each one found.
/// </summary>
[CoraclePlugin("nvidia", ExtensionPoints.RuntimeHandler, typeof(IRuntimeHandlerProvider),
    Architectures = ["x64", "arm64"],
    Description = "NVIDIA container runtime discovery: nvidia, nvidia-experimental, nvidia-cdi handlers")]
public sealed partial class NvidiaPlugin : IRuntimeHandlerProvider
{
    private readonly string _root;
    private readonly string? _pathVariable;

    /// <summary>Searches the real host (<c>/</c>) and, last, the process's PATH.</summary>
    public NvidiaPlugin()
        : this("/", Environment.GetEnvironmentVariable("PATH"))
    {
    }

    /// <summary>Searches below <paramref name="root"/> and then the folders of <paramref name="pathVariable"/>.</summary>
    public NvidiaPlugin(string root, string? pathVariable)
    {
        _root = root;
        _pathVariable = pathVariable;
    }

    /// <inheritdoc />
    public IReadOnlyList<RuntimeHandler> Discover(IPluginContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var extra = (_pathVariable ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries).Where(Path.IsPathRooted);
        var handlers = NvidiaDiscovery.Discover(_root, extra);
        var foundNames = handlers.Select(h => h.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var candidate in NvidiaDiscovery.Candidates)
        {
            if (!foundNames.Contains(candidate.Handler))
            {
                context.Manifests.Remove(candidate.Handler + ".yaml");
            }
        }

        if (handlers.Count == 0)
        {
            NoRuntime(context.Logger, string.Join(", ", NvidiaDiscovery.Locations.Select(l => "/" + l)));
            return handlers;
        }

        foreach (var handler in handlers)
        {
            Found(context.Logger, handler.Name, handler.BinaryPath);
            context.Manifests.Write(handler.Name + ".yaml", NvidiaDiscovery.RuntimeClassManifest(handler.Name));
        }

        return handlers;
    }

    [LoggerMessage(EventId = 4200, Level = LogLevel.Information, Message = "no NVIDIA container runtime found (searched {Locations} and PATH)")]
    private static partial void NoRuntime(ILogger logger, string locations);

    [LoggerMessage(EventId = 4201, Level = LogLevel.Information, Message = "found NVIDIA container runtime {Handler} at {Binary}")]
    private static partial void Found(ILogger logger, string handler, string binary);
}
