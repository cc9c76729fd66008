using Microsoft.Extensions.Logging;

namespace Coracle.Core.Logging;

/// <summary>Datastore snapshots, their schedule and <c>--cluster-reset</c> (Core/Snapshots): event ids 1300-1349.</summary>
internal static partial class Log
{
    [LoggerMessage(1300, LogLevel.Information, "snapshots scheduled \"{Cron}\" (UTC), keeping {Retention} in {Directory}; next at {Next:u}")]
    public static partial void SnapshotScheduled(this ILogger logger, string cron, int retention, string directory, DateTimeOffset next);

    [LoggerMessage(1301, LogLevel.Information, "saved snapshot {Name}: {Size} bytes, revision {Revision}, sha256 {Sha256}")]
    public static partial void SnapshotSaved(this ILogger logger, string name, long size, long revision, string sha256);

    [LoggerMessage(1302, LogLevel.Warning, "scheduled snapshot failed: {Reason}; the next one is at {Next:u}")]
    public static partial void SnapshotFailed(this ILogger logger, string reason, DateTimeOffset next);

    [LoggerMessage(1303, LogLevel.Information, "pruned snapshot {Name} (keeping the newest {Retention})")]
    public static partial void SnapshotPruned(this ILogger logger, string name, int retention);

    [LoggerMessage(1304, LogLevel.Information, "scheduled snapshots are off (etcd-disable-snapshots)")]
    public static partial void SnapshotsDisabled(this ILogger logger);

    [LoggerMessage(1305, LogLevel.Information, "scheduled snapshots are off: the {Datastore} datastore has no snapshots")]
    public static partial void SnapshotsUnsupported(this ILogger logger, string datastore);

    [LoggerMessage(1306, LogLevel.Warning, "cluster reset: restored {File} (revision {Revision}, sha256 {Sha256}); the old data is in {Aside}. Remove --cluster-reset and --cluster-reset-restore-path before the next start")]
    public static partial void ClusterRestored(this ILogger logger, string file, long revision, string sha256, string aside);

    [LoggerMessage(1307, LogLevel.Warning, "cluster reset: the datastore already holds {File} (sha256 {Sha256}), restored earlier; not restoring it again, so later writes are kept. Remove --cluster-reset-restore-path from the configuration; to restore this snapshot once more, delete {Marker} first")]
    public static partial void ClusterAlreadyRestored(this ILogger logger, string file, string sha256, string marker);

    [LoggerMessage(1308, LogLevel.Warning, "cluster reset: {What}")]
    public static partial void ClusterReset(this ILogger logger, string what);
}
