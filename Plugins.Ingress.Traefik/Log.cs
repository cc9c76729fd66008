using Microsoft.Extensions.Logging;

namespace Coracle.Plugins.Ingress.Traefik;

/// <summary>The plugin's log messages; event ids 4500-4519 belong to this plugin.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 4500, Level = LogLevel.Information, Message = "traefik: wrote {File}: image {Image}, {Replicas} replica(s)")]
    public static partial void Written(ILogger logger, string file, string image, int replicas);

    [LoggerMessage(EventId = 4501, Level = LogLevel.Information, Message = "traefik: override {Path} merged: {Merged} object(s) changed, {Added} added")]
    public static partial void OverrideMerged(ILogger logger, string path, int merged, int added);

    [LoggerMessage(EventId = 4502, Level = LogLevel.Debug, Message = "traefik: nothing to do on an agent (the server deploys Traefik)")]
    public static partial void AgentSkipped(ILogger logger);
}
