namespace Coracle.Plugins.Datastore.Sql.Storage;

/// <summary>
/// One row of the revision log: a version of a key, or its tombstone. <see cref="Id"/> is the revision
/// shifted left by <see cref="LogIds.SubBits"/> plus the row's position within that revision, so ids order
/// rows exactly as revisions do.
/// </summary>
public sealed record LogRow(
    long Id,
    byte[] Key,
    long CreateRevision,
    long Version,
    long Lease,
    byte[] Value,
    bool Deleted,
    long PrevId)
{
    /// <summary>The revision that wrote the row.</summary>
    public long Revision => Id >> LogIds.SubBits;
}

/// <summary>A committed change: the new row and the key's previous row when it is still stored.</summary>
public sealed record LogEvent(LogRow Row, LogRow? Prev);

/// <summary>Arithmetic between revisions and row ids.</summary>
public static class LogIds
{
    /// <summary>Bits of a row id that number the rows of one revision (at most 1,048,576 changes per revision).</summary>
    public const int SubBits = 20;

    /// <summary>The most rows one revision can write.</summary>
    public const int MaxRowsPerRevision = 1 << SubBits;

    /// <summary>The first row id of a revision.</summary>
    public static long First(long revision) => revision << SubBits;

    /// <summary>The first row id after all rows of a revision.</summary>
    public static long End(long revision) => (revision + 1) << SubBits;
}

/// <summary>A lease as stored.</summary>
public sealed record LeaseRow(long Id, long Ttl, long ExpiresAtUnixMs);
