using Microsoft.Extensions.Logging;

namespace Coracle.Plugins.LoadBalancer.ServiceLb;

/// <summary>The plugin's log messages; event ids 4400-4449 belong to this plugin.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 4400, Level = LogLevel.Information, Message = "servicelb: node {Node} ({Role}); rules in nat chains CORACLE-SVCLB, CORACLE-SVCLB-POSTROUTING")]
    public static partial void Starting(ILogger logger, string node, string role);

    [LoggerMessage(EventId = 4401, Level = LogLevel.Information, Message = "running {Command}")]
    public static partial void Running(ILogger logger, string command);

    [LoggerMessage(EventId = 4402, Level = LogLevel.Information, Message = "servicelb: waiting for {What}")]
    public static partial void Waiting(ILogger logger, string what);

    [LoggerMessage(EventId = 4403, Level = LogLevel.Information, Message = "servicelb: {Detail}")]
    public static partial void Synced(ILogger logger, string detail);

    [LoggerMessage(EventId = 4404, Level = LogLevel.Warning, Message = "servicelb: service {Service} on {Node}: {Message}")]
    public static partial void Conflict(ILogger logger, string service, string node, string message);

    [LoggerMessage(EventId = 4405, Level = LogLevel.Warning, Message = "servicelb: sync failed ({Failures} in a row), retrying every 2 s: {Error}")]
    public static partial void SyncFailed(ILogger logger, string error, int failures);

    [LoggerMessage(EventId = 4409, Level = LogLevel.Information, Message = "servicelb: sync works again after {Failures} failed passes")]
    public static partial void SyncRecovered(ILogger logger, int failures);

    [LoggerMessage(EventId = 4406, Level = LogLevel.Information, Message = "servicelb: service {Service} status: {Addresses}")]
    public static partial void StatusWritten(ILogger logger, string service, string addresses);

    [LoggerMessage(EventId = 4407, Level = LogLevel.Information, Message = "servicelb: removed chains CORACLE-SVCLB, CORACLE-SVCLB-POSTROUTING and their jumps ({Variant})")]
    public static partial void Removed(ILogger logger, string variant);

    [LoggerMessage(EventId = 4408, Level = LogLevel.Warning, Message = "servicelb: could not {What}: {Error}")]
    public static partial void Failed(ILogger logger, string what, string error);
}
