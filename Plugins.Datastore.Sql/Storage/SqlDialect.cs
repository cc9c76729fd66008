using System.Data;
using System.Data.Common;

namespace Coracle.Plugins.Datastore.Sql.Storage;

/// <summary>
/// A SQL dialect is data, not a class hierarchy: the statements the revision log runs plus a few
/// function fields for what differs between databases (connections, transactions, notifications).
/// </summary>
public sealed record SqlDialect
{
    /// <summary><c>sqlite</c>, <c>postgres</c> or <c>mysql</c>.</summary>
    public required string Name { get; init; }

    /// <summary>Where the data lives, for messages: a file path or host/database, never credentials.</summary>
    public required string Location { get; init; }

    /// <summary>Creates a new, closed connection.</summary>
    public required Func<DbConnection> CreateConnection { get; init; }

    /// <summary>Statements run once on every new connection (pragmas, session settings).</summary>
    public IReadOnlyList<string> OnOpen { get; init; } = [];

    /// <summary>Creates the tables when they are missing; idempotent.</summary>
    public required IReadOnlyList<string> Schema { get; init; }

    /// <summary>The named statements.</summary>
    public required SqlStatements Sql { get; init; }

    /// <summary>Starts a read-only snapshot transaction.</summary>
    public required Func<DbConnection, DbTransaction> BeginRead { get; init; }

    /// <summary>Starts the writer's transaction (the revision row is then locked by <see cref="SqlStatements.LockRevision"/>).</summary>
    public required Func<DbConnection, DbTransaction> BeginWrite { get; init; }

    /// <summary>True when other servers may write the same database; the log then follows their commits.</summary>
    public bool SharedWriters { get; init; }

    /// <summary>How often a shared database is polled for other servers' commits.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Runs until cancelled, calling the callback whenever another writer committed (PostgreSQL LISTEN);
    /// null means poll only.
    /// </summary>
    public Func<Action, CancellationToken, Task>? ListenForCommits { get; init; }

    /// <summary>Checks an existing store before use (SQLite integrity check); throws a clear error naming it.</summary>
    public Func<CancellationToken, Task>? Verify { get; init; }

    /// <summary>Statement the writer runs in each committing transaction to wake other servers; null for none.</summary>
    public string? NotifyStatement { get; init; }

    /// <summary>Writes a consistent copy of the store to a file (SQLite <c>VACUUM INTO</c>); null when unsupported.</summary>
    public Func<DbConnection, string, Task>? SnapshotTo { get; init; }

    /// <summary>
    /// True when a cached command should be prepared once, explicitly, when it is first created (SQLite: its
    /// provider keeps a command's statement compiled only after <c>Prepare()</c> or after every result set was
    /// read, so a scalar or a single-row read otherwise compiles its SQL again on every call).
    /// </summary>
    public bool PrepareStatements { get; init; }

    /// <summary>
    /// True for SQLite: range and event rows are read through SQLitePCL.raw on statements of the connection's own
    /// (<see cref="SqliteRowStatement"/>) instead of the provider's DbDataReader, about half the native calls per row.
    /// </summary>
    public bool NativeRowReads { get; init; }

    /// <summary>The longest key the schema stores.</summary>
    public int MaxKeyBytes { get; init; } = 1 << 20;

    /// <summary>True for SQLite: the writer checkpoints the WAL itself.</summary>
    public bool CheckpointsWal { get; init; }

    /// <summary>True for SQLite: write economy (volatile key prefixes served from memory, flushed periodically) is available.</summary>
    public bool SupportsWriteEconomy { get; init; }
}

/// <summary>
/// The statements of the revision log. <c>{range}</c> in a statement is replaced by a condition on
/// <c>x.name</c> (one key, a bounded range or an open-ended range). Parameters are <c>@name</c> style.
/// </summary>
public sealed record SqlStatements
{
    /// <summary>Reads the current revision and compacted revision in one row.</summary>
    public string ReadMeta { get; init; } =
        "SELECT (SELECT value FROM coracle_meta WHERE name = 'rev'), (SELECT value FROM coracle_meta WHERE name = 'compact')";

    /// <summary>Reads and locks the revision counter for the writer.</summary>
    public string LockRevision { get; init; } = "SELECT value FROM coracle_meta WHERE name = 'rev'";

    /// <summary>Reads one metadata value (<c>@n</c>).</summary>
    public string GetMeta { get; init; } = "SELECT value FROM coracle_meta WHERE name = @n";

    /// <summary>Sets one metadata value.</summary>
    public string SetMeta { get; init; } = "UPDATE coracle_meta SET value = @v WHERE name = @n";

    /// <summary>Appends a row to the log.</summary>
    public string InsertRow { get; init; } =
        "INSERT INTO coracle_log(id, name, create_revision, version, lease, value, deleted, prev_id) VALUES (@id, @k, @cr, @ver, @lease, @val, @del, @prev)";

    /// <summary>Points a key's current entry at its newest row.</summary>
    public required string UpsertCurrent { get; init; }

    /// <summary>Removes a key's current entry (the key was deleted).</summary>
    public string DeleteCurrent { get; init; } = "DELETE FROM coracle_current WHERE name = @k";

    /// <summary>Live keys at the newest revision, in key order.</summary>
    public string RangeCurrent { get; init; } =
        "SELECT " + Columns + " FROM coracle_current x JOIN coracle_log l ON l.id = x.id WHERE {range} ORDER BY x.name LIMIT @limit";

    /// <summary>Number of live keys at the newest revision.</summary>
    public string CountCurrent { get; init; } = "SELECT COUNT(*) FROM coracle_current x WHERE {range}";

    /// <summary>Live keys as of a past revision (rows with id below <c>@idEnd</c>), in key order.</summary>
    public string RangeAt { get; init; } =
        "SELECT " + Columns + " FROM coracle_log l JOIN (SELECT x.name, MAX(x.id) AS mid FROM coracle_log x WHERE {range} AND x.id < @idEnd GROUP BY x.name) m ON l.id = m.mid WHERE l.deleted = 0 ORDER BY l.name LIMIT @limit";

    /// <summary>Number of live keys as of a past revision.</summary>
    public string CountAt { get; init; } =
        "SELECT COUNT(*) FROM coracle_log l JOIN (SELECT x.name, MAX(x.id) AS mid FROM coracle_log x WHERE {range} AND x.id < @idEnd GROUP BY x.name) m ON l.id = m.mid WHERE l.deleted = 0";

    /// <summary>Log rows with ids in [<c>@from</c>, <c>@to</c>) in the range, with the previous row of each key.</summary>
    public string Events { get; init; } =
        "SELECT x.id, x.name, x.create_revision, x.version, x.lease, x.value, x.deleted, x.prev_id, p.id, p.create_revision, p.version, p.lease, p.value FROM coracle_log x LEFT JOIN coracle_log p ON p.id = x.prev_id WHERE x.id >= @from AND x.id < @to AND {range} ORDER BY x.id LIMIT @limit";

    /// <summary>
    /// Deletes the rows in [<c>@from</c>, <c>@to</c>) that no read at or after the compacted revision can see:
    /// tombstones and rows superseded by a newer row below <c>@idEnd</c>.
    /// </summary>
    public string CompactRows { get; init; } =
        "DELETE FROM coracle_log WHERE id IN (SELECT l.id FROM coracle_log l WHERE l.id >= @from AND l.id < @to AND (l.deleted = 1 OR EXISTS (SELECT 1 FROM coracle_log n WHERE n.name = l.name AND n.id > l.id AND n.id < @idEnd)))";

    /// <summary>Inserts a lease.</summary>
    public string InsertLease { get; init; } = "INSERT INTO coracle_lease(id, ttl, expires_at) VALUES (@id, @ttl, @exp)";

    /// <summary>Moves a lease's expiry.</summary>
    public string RenewLease { get; init; } = "UPDATE coracle_lease SET expires_at = @exp WHERE id = @id";

    /// <summary>Deletes a lease.</summary>
    public string DeleteLease { get; init; } = "DELETE FROM coracle_lease WHERE id = @id";

    /// <summary>One lease.</summary>
    public string GetLease { get; init; } = "SELECT id, ttl, expires_at FROM coracle_lease WHERE id = @id";

    /// <summary>All leases.</summary>
    public string ListLeases { get; init; } = "SELECT id, ttl, expires_at FROM coracle_lease ORDER BY id";

    /// <summary>Live keys attached to a lease.</summary>
    public string KeysByLease { get; init; } = "SELECT name FROM coracle_current WHERE lease = @lease ORDER BY name";

    /// <summary>Allocated size of the store in bytes.</summary>
    public required string DbSize { get; init; }

    /// <summary>Size of the store in use in bytes.</summary>
    public required string DbSizeInUse { get; init; }

    /// <summary>Statements that give space back (run outside a transaction).</summary>
    public required IReadOnlyList<string> Defragment { get; init; }

    /// <summary>The column list of a log row, in <see cref="LogRow"/> order.</summary>
    public const string Columns = "l.id, l.name, l.create_revision, l.version, l.lease, l.value, l.deleted, l.prev_id";
}
