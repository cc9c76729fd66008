using Microsoft.Extensions.Logging;

namespace Coracle.Core.Logging;

/// <summary>Servers joining servers: the join API's side and the joining server's (event ids 1500-1549).</summary>
internal static partial class Log
{
    [LoggerMessage(1500, LogLevel.Information, "server {Node} joined the cluster from {Remote} (datastore {Datastore}): sent the cluster CAs, keys and settings")]
    public static partial void ServerJoined(this ILogger logger, string node, string remote, string datastore);

    [LoggerMessage(1501, LogLevel.Warning, "server join from {Remote} refused: {Reason}")]
    public static partial void ServerJoinRejected(this ILogger logger, string remote, string reason);

    [LoggerMessage(1502, LogLevel.Information, "joined the cluster of {Server} (server {ServerNode}, datastore {Datastore}): wrote its CAs, service-account key{Encryption} and token into {Directory}; this server's own certificates are made here")]
    public static partial void JoinedCluster(this ILogger logger, string server, string serverNode, string datastore, string encryption, string directory);

    [LoggerMessage(1503, LogLevel.Information, "this server joined the cluster of {Server} at {JoinedAt:u} ({File}); starting with what the join stored, without asking that server")]
    public static partial void JoinedEarlier(this ILogger logger, string server, DateTimeOffset joinedAt, string file);

    [LoggerMessage(1504, LogLevel.Information, "joining the cluster of {Server} as server {Node}")]
    public static partial void JoiningCluster(this ILogger logger, string server, string node);
}
