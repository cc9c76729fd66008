using Microsoft.Extensions.Logging;

namespace Coracle.Core.Logging;

/// <summary>The etcd-members component: member removal when an etcd Node is deleted, quorum (event ids 1760-1779).</summary>
internal static partial class Log
{
    [LoggerMessage(1760, LogLevel.Information, "etcd-members: watching nodes; a deleted node labelled {Label} keeps finalizer {Finalizer} until a server has removed its etcd member; members checked every {Seconds} s")]
    public static partial void EtcdMembersRunning(this ILogger logger, string label, string finalizer, double seconds);

    [LoggerMessage(1761, LogLevel.Information, "etcd member {Name} removed: its node was deleted")]
    public static partial void EtcdMemberRemovedForNode(this ILogger logger, string name);

    [LoggerMessage(1762, LogLevel.Information, "node {Name} deleted: it has no etcd member (already removed); its finalizer is dropped")]
    public static partial void EtcdMemberAlreadyGone(this ILogger logger, string name);

    [LoggerMessage(1763, LogLevel.Information, "node {Name} (this server) is being deleted: another server removes its etcd member (a server never removes itself)")]
    public static partial void EtcdOwnNodeDeleting(this ILogger logger, string name);

    [LoggerMessage(1764, LogLevel.Information, "node {Name} (this server) deleted while it is the only etcd member: nothing to remove; its finalizer is dropped")]
    public static partial void EtcdOwnNodeOnlyMember(this ILogger logger, string name);

    [LoggerMessage(1765, LogLevel.Warning, "cannot remove the etcd member of deleted node {Name}, retrying in {Seconds} s: {Reason}")]
    public static partial void EtcdMemberRemoveFailed(this ILogger logger, string name, double seconds, string reason);

    [LoggerMessage(1766, LogLevel.Warning, "etcd {Detail}")]
    public static partial void EtcdQuorumLost(this ILogger logger, string detail);

    [LoggerMessage(1767, LogLevel.Information, "etcd quorum back: {Detail}")]
    public static partial void EtcdQuorumBack(this ILogger logger, string detail);

    [LoggerMessage(1768, LogLevel.Information, "etcd members: {Detail}")]
    public static partial void EtcdMembersChanged(this ILogger logger, string detail);

    [LoggerMessage(1769, LogLevel.Debug, "etcd-members: node {Name}: finalizer {Finalizer} added")]
    public static partial void EtcdFinalizerAdded(this ILogger logger, string name, string finalizer);

    [LoggerMessage(1770, LogLevel.Information, "node {Name} conditions: {Conditions}")]
    public static partial void EtcdConditionsSet(this ILogger logger, string name, string conditions);
}
