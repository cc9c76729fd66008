using Microsoft.Extensions.Logging;

namespace Coracle.Core.Logging;

/// <summary>The tunnel multiplexer's and the agent's tunnel client's log messages (event ids 1020-1039).</summary>
internal static partial class Log
{
    [LoggerMessage(1020, LogLevel.Warning, "tunnel with {Peer}: protocol error: {Reason}; closing the tunnel")]
    public static partial void TunnelProtocolError(this ILogger logger, string peer, string reason);

    [LoggerMessage(1021, LogLevel.Trace, "tunnel with {Peer}: {Type} frame for stream {Id}, which is closed already; ignored")]
    public static partial void TunnelFrameForClosedStream(this ILogger logger, string peer, string type, uint id);

    [LoggerMessage(1022, LogLevel.Warning, "tunnel with {Peer}: refused a stream to {Target}: {Max} streams are open, the most a tunnel carries")]
    public static partial void TunnelStreamLimit(this ILogger logger, string peer, string target, int max);

    [LoggerMessage(1023, LogLevel.Warning, "tunnel from node {Node} refused: {Reason}")]
    public static partial void TunnelVersionRefused(this ILogger logger, string node, string reason);
}
