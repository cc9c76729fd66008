using Microsoft.Extensions.Logging;

namespace Coracle.Core.Logging;

/// <summary>Start-up ordering (Core/Supervision, Core/Hosting): event ids 1700-1749.</summary>
internal static partial class Log
{
    [LoggerMessage(1700, LogLevel.Information, "{Component}: started early, while the start-up steps go on")]
    public static partial void StartedEarly(this ILogger logger, string component);
}
