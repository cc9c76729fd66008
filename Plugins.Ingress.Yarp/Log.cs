using Microsoft.Extensions.Logging;

namespace Coracle.Plugins.Ingress.Yarp;

/// <summary>The plugin's log messages; event ids 4450-4499 belong to this plugin.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 4450, Level = LogLevel.Information, Message = "yarp: listening on {Address}, http port {HttpPort}, https port {HttpsPort}")]
    public static partial void Listening(ILogger logger, string address, int httpPort, int httpsPort);

    [LoggerMessage(EventId = 4451, Level = LogLevel.Warning, Message = "yarp: forwarding to {Backend} at {Destination} failed: {Error} {Detail}")]
    public static partial void ForwardFailed(ILogger logger, string backend, string destination, string error, string detail);

    [LoggerMessage(EventId = 4452, Level = LogLevel.Information, Message = "yarp: waiting for {What}")]
    public static partial void Waiting(ILogger logger, string what);

    [LoggerMessage(EventId = 4453, Level = LogLevel.Warning, Message = "yarp: {Resource} watch ended ({Reason}); listing again")]
    public static partial void WatchRestart(ILogger logger, string resource, string reason);

    [LoggerMessage(EventId = 4454, Level = LogLevel.Information, Message = "yarp: routes updated: {Detail}")]
    public static partial void TableUpdated(ILogger logger, string detail);

    [LoggerMessage(EventId = 4455, Level = LogLevel.Warning, Message = "yarp: ingress {Namespace}/{Name}: {Reason}: {Message}")]
    public static partial void Problem(ILogger logger, string @namespace, string name, string reason, string message);

    [LoggerMessage(EventId = 4456, Level = LogLevel.Warning, Message = "yarp: {Action} failed: {Reason}")]
    public static partial void ApiFailed(ILogger logger, string action, string reason);

    [LoggerMessage(EventId = 4457, Level = LogLevel.Information, Message = "yarp: ingress class {Name} (controller {Controller}, default {IsDefault}) in place")]
    public static partial void ClassReady(ILogger logger, string name, string controller, bool isDefault);

    [LoggerMessage(EventId = 4458, Level = LogLevel.Information, Message = "yarp: ingress {Namespace}/{Name} status set to {Addresses}")]
    public static partial void StatusSet(ILogger logger, string @namespace, string name, string addresses);
}
