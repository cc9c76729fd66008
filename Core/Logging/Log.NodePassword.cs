using Microsoft.Extensions.Logging;

namespace Coracle.Core.Logging;

/// <summary>Node passwords (event ids 1000-1019): the join API's checks and the agent's password file.</summary>
internal static partial class Log
{
    [LoggerMessage(1000, LogLevel.Information, "node {Node} joined for the first time: its node password hash is stored in Secret {Secret}")]
    public static partial void NodePasswordStored(this ILogger logger, string node, string secret);

    [LoggerMessage(1001, LogLevel.Warning, "node {Node} no longer exists: its name is taken over with a new node password (Secret {Secret} replaced)")]
    public static partial void NodePasswordReplaced(this ILogger logger, string node, string secret);

    [LoggerMessage(1002, LogLevel.Information, "node {Node}'s password matches the one last accepted (local cache), as kube-apiserver cannot be asked: {Reason}")]
    public static partial void NodePasswordCached(this ILogger logger, string node, string reason);

    [LoggerMessage(1003, LogLevel.Warning, "join as node {Node} refused: another node password is stored for that name and {Why}")]
    public static partial void NodePasswordConflict(this ILogger logger, string node, string why);

    [LoggerMessage(1004, LogLevel.Information, "join as node {Node} put off: {Why}")]
    public static partial void NodePasswordUndecided(this ILogger logger, string node, string why);

    [LoggerMessage(1005, LogLevel.Warning, "node password cache {File} is unreadable ({Reason}); treated as empty until the next verified join rewrites it")]
    public static partial void NodePasswordCacheUnreadable(this ILogger logger, string file, string reason);

    [LoggerMessage(1006, LogLevel.Information, "created this node's password in {File}; the server keeps its hash for node {Node}")]
    public static partial void NodePasswordCreated(this ILogger logger, string file, string node);

    [LoggerMessage(1007, LogLevel.Information, "this server holds its node name {Node}: its node password is in Secret {Secret}")]
    public static partial void ServerNodePasswordHeld(this ILogger logger, string node, string secret);

    [LoggerMessage(1008, LogLevel.Error, "{Refusal}")]
    public static partial void ServerNodePasswordRefused(this ILogger logger, string refusal);
}
