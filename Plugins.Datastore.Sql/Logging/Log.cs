using Microsoft.Extensions.Logging;

namespace Coracle.Plugins.Datastore.Sql.Logging;

/// <summary>The datastore's log messages, source-generated; event ids 3000-3149 belong to this plugin.</summary>
internal static partial class Log
{
    // 300x: the server (category "datastore")
    [LoggerMessage(3000, LogLevel.Information, "opening the {Dialect} datastore at {Location}")]
    public static partial void Opening(this ILogger logger, string dialect, string location);

    [LoggerMessage(3001, LogLevel.Information, "datastore serving etcd v3 at revision {Revision} on {Urls}")]
    public static partial void Serving(this ILogger logger, long revision, string urls);

    [LoggerMessage(3002, LogLevel.Information, "datastore stopping: draining requests")]
    public static partial void Draining(this ILogger logger);

    [LoggerMessage(3003, LogLevel.Information, "datastore closed at revision {Revision}")]
    public static partial void Closed(this ILogger logger, long revision);

    [LoggerMessage(3004, LogLevel.Information, "compacted history up to revision {Revision}")]
    public static partial void Compacted(this ILogger logger, long revision);

    [LoggerMessage(3005, LogLevel.Warning, "datastore background task failed; restarting it")]
    public static partial void BackgroundTaskFailed(this ILogger logger, Exception exception);

    // 301x: the revision log (category "datastore.log")
    [LoggerMessage(3010, LogLevel.Warning, "WAL checkpoint of {Location} failed")]
    public static partial void CheckpointFailed(this ILogger logger, Exception exception, string location);

    [LoggerMessage(3011, LogLevel.Warning, "write to the {Dialect} datastore failed")]
    public static partial void WriteFailed(this ILogger logger, Exception exception, string dialect);

    [LoggerMessage(3012, LogLevel.Warning, "following the {Dialect} datastore failed; retrying")]
    public static partial void FollowFailed(this ILogger logger, Exception exception, string dialect);

    [LoggerMessage(3013, LogLevel.Warning, "reconnecting the writer to the {Dialect} datastore")]
    public static partial void ReconnectingWriter(this ILogger logger, Exception exception, string dialect);

    // 302x: watches (category "datastore.watch")
    [LoggerMessage(3020, LogLevel.Warning, "watch {WatchId} could not replay history; cancelling it")]
    public static partial void ReplayFailed(this ILogger logger, Exception exception, long watchId);

    [LoggerMessage(3021, LogLevel.Warning, "closed a watch stream whose client did not read its events (more than {Bytes} bytes unsent)")]
    public static partial void SlowWatchStreamClosed(this ILogger logger, long bytes);

    // 303x: leases (category "datastore.lease")
    [LoggerMessage(3030, LogLevel.Warning, "lease expiry failed; retrying")]
    public static partial void LeaseExpiryFailed(this ILogger logger, Exception exception);

    // 310x: write economy (category "datastore.log" and "datastore")
    [LoggerMessage(3100, LogLevel.Information, "write economy on: keys under {Prefixes} are served from memory and written to disk every {Interval}")]
    public static partial void WriteEconomyOn(this ILogger logger, string prefixes, TimeSpan interval);

    [LoggerMessage(3101, LogLevel.Warning, "the datastore was not stopped cleanly: continuing at the reserved revision {Reserved} (newest on disk {Revision}); changes of volatile keys since the last flush are lost")]
    public static partial void RevisionsSkipped(this ILogger logger, long revision, long reserved);

    [LoggerMessage(3102, LogLevel.Warning, "writing volatile keys to {Location} failed; retrying at the next flush")]
    public static partial void VolatileFlushFailed(this ILogger logger, Exception exception, string location);
}
