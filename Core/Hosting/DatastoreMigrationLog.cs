using Microsoft.Extensions.Logging;

namespace Coracle.Core.Hosting;

/// <summary>The datastore migration's log messages (<see cref="DatastoreMigration"/>): event ids 1750-1759.</summary>
internal static partial class DatastoreMigrationLog
{
    [LoggerMessage(1750, LogLevel.Information, "datastore migration: {Source} holds this server's {Kind} data ({Keys} keys, revision {Revision}) and the {Target} datastore is empty: every key is copied into it before kube-apiserver starts")]
    public static partial void MigrationPlanned(this ILogger logger, long keys, string kind, string source, long revision, string target);

    [LoggerMessage(1751, LogLevel.Warning, "datastore migration: an earlier copy of {Source} into {Target} was interrupted ({Marker}); copying it again")]
    public static partial void MigrationResumed(this ILogger logger, string source, string target, string marker);

    [LoggerMessage(1752, LogLevel.Information, "migrated {Keys} keys (revision {Revision}) from {Kind} {Source} to {Target}; the {OldKind} file is kept as {Aside} ({Leases} leases granted anew, {Milliseconds} ms)")]
    public static partial void Migrated(this ILogger logger, long keys, long revision, string kind, string source, string target, string oldKind, string aside, long leases, long milliseconds);

    [LoggerMessage(1753, LogLevel.Information, "datastore migration: {Copied} of {Keys} keys copied from {Source} so far")]
    public static partial void MigrationProgress(this ILogger logger, long copied, long keys, string source);

    [LoggerMessage(1754, LogLevel.Warning, "datastore migration: {Source} (the {From} datastore's data of this server) is ignored, kept and not read: a server that joins another takes the cluster's data, so its {Target} datastore starts from the cluster")]
    public static partial void MigrationIgnoredJoined(this ILogger logger, string source, string from, string target);

    [LoggerMessage(1755, LogLevel.Warning, "datastore migration: a copy from the {From} datastore to {To} was interrupted ({Marker}) and the {Selected} datastore is selected now; nothing is copied, and the copy is done again when the server starts on {To}")]
    public static partial void MigrationPending(this ILogger logger, string from, string to, string marker, string selected);

    [LoggerMessage(1756, LogLevel.Information, "datastore migration: the copy of {Source} into {To} had completed and the file was moved aside; removing the marker")]
    public static partial void MigrationFinishedEarlier(this ILogger logger, string source, string to);

    [LoggerMessage(1757, LogLevel.Warning, "datastore migration: fault point {Point} (CORACLE_MIGRATION_FAULT): killing this process")]
    public static partial void MigrationFault(this ILogger logger, string point);
}
