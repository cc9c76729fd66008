using System.Data.Common;
using Microsoft.Data.Sqlite;

namespace Coracle.Plugins.Datastore.Sql.Storage;

/// <summary>
/// One database transaction of the revision log: a read snapshot or the writer's batch.
/// Speaks rows, ids and revisions; knows nothing of etcd requests.
/// </summary>
public sealed class LogSession
{
    private readonly PooledConnection _connection;
    private readonly SqlStatements _sql;
    private readonly VolatileStore? _volatile;
    private readonly long _visible;

    internal LogSession(PooledConnection connection, SqlStatements sql, long revision, long compactRevision, VolatileStore? volatileStore = null, long visible = long.MaxValue)
    {
        _connection = connection;
        _sql = sql;
        Revision = revision;
        CompactRevision = compactRevision;
        _volatile = volatileStore;
        _visible = visible;
    }

    /// <summary>Statements that changed durable data in this session (write economy: a batch without any needs no commit).</summary>
    internal int DurableWrites { get; private set; }

    /// <summary>Volatile rows written by the current operation, not yet on disk.</summary>
    internal List<LogRow> OperationVolatileRows { get; } = [];

    /// <summary>The newest committed revision this session sees.</summary>
    public long Revision { get; }

    /// <summary>The compacted revision this session sees.</summary>
    public long CompactRevision { get; internal set; }

    /// <summary>The key's newest live row, or null.</summary>
    public LogRow? Get(byte[] key)
    {
        var rows = Range(new KeyRange(RangeKind.Single, key, []), 0, current: true, 1);
        return rows.Count == 0 ? null : rows[0];
    }

    /// <summary>Live rows in key order, at the newest revision or as of <paramref name="revision"/>.</summary>
    public List<LogRow> Range(KeyRange range, long revision, bool current, long limit)
    {
        var rows = new List<LogRow>();
        if (range.Kind == RangeKind.Empty)
        {
            return rows;
        }

        if (_volatile is not null && _volatile.Touches(range))
        {
            var memory = _volatile.Range(range, current ? _visible : revision, limit);
            if (_volatile.Covers(range))
            {
                return memory;
            }

            var stored = SqlRange(range, revision, current, limit);
            return MergeByKey(stored, memory, limit);
        }

        return SqlRange(range, revision, current, limit);
    }

    private static List<LogRow> MergeByKey(List<LogRow> a, List<LogRow> b, long limit)
    {
        if (b.Count == 0)
        {
            return a;
        }

        var merged = new List<LogRow>(a.Count + b.Count);
        int i = 0, j = 0;
        while ((i < a.Count || j < b.Count) && (limit <= 0 || merged.Count < limit))
        {
            if (j >= b.Count || (i < a.Count && a[i].Key.AsSpan().SequenceCompareTo(b[j].Key) < 0))
            {
                merged.Add(a[i++]);
            }
            else
            {
                merged.Add(b[j++]);
            }
        }

        return merged;
    }

    private List<LogRow> SqlRange(KeyRange range, long revision, bool current, long limit)
    {
        var sql = Ranged(current ? _sql.RangeCurrent : _sql.RangeAt, range.Kind);
        if (_connection.RowStatement(sql) is { } native)
        {
            return native.Rows(range, current ? 0 : LogIds.End(revision), limit <= 0 ? long.MaxValue : limit);
        }

        var rows = new List<LogRow>();
        var cmd = _connection.Command(sql);
        BindRange(cmd, range);
        if (!current)
        {
            Add(cmd, "@idEnd", LogIds.End(revision));
        }

        Add(cmd, "@limit", limit <= 0 ? long.MaxValue : limit);
        using var reader = cmd.ExecuteReader();
        while (reader.Read())
        {
            rows.Add(ReadRow(reader, 0));
        }

        return rows;
    }

    /// <summary>Number of live keys in the range.</summary>
    public long Count(KeyRange range, long revision, bool current)
    {
        if (range.Kind == RangeKind.Empty)
        {
            return 0;
        }

        var memory = 0L;
        if (_volatile is not null && _volatile.Touches(range))
        {
            memory = _volatile.CountLive(range, current ? _visible : revision);
            if (_volatile.Covers(range))
            {
                return memory;
            }
        }

        var cmd = _connection.Command(Ranged(current ? _sql.CountCurrent : _sql.CountAt, range.Kind));
        BindRange(cmd, range);
        if (!current)
        {
            Add(cmd, "@idEnd", LogIds.End(revision));
        }

        return memory + Convert.ToInt64(cmd.ExecuteScalar());
    }

    /// <summary>Changes in revisions [<paramref name="fromRevision"/>, <paramref name="toRevision"/>] within the range, oldest first.</summary>
    public List<LogEvent> Events(long fromRevision, long toRevision, KeyRange range, int limit)
    {
        if (range.Kind == RangeKind.Empty || toRevision < fromRevision)
        {
            return [];
        }

        if (_volatile is not null && _volatile.Touches(range))
        {
            var memory = _volatile.Events(fromRevision, Math.Min(toRevision, _visible), range, limit);
            if (_volatile.Covers(range))
            {
                return memory;
            }

            var stored = SqlEvents(fromRevision, toRevision, range, limit);
            if (memory.Count == 0)
            {
                return stored;
            }

            var merged = new List<LogEvent>(stored.Count + memory.Count);
            int i = 0, j = 0;
            while ((i < stored.Count || j < memory.Count) && (limit <= 0 || merged.Count < limit))
            {
                merged.Add(j >= memory.Count || (i < stored.Count && stored[i].Row.Id < memory[j].Row.Id) ? stored[i++] : memory[j++]);
            }

            return merged;
        }

        return SqlEvents(fromRevision, toRevision, range, limit);
    }

    private List<LogEvent> SqlEvents(long fromRevision, long toRevision, KeyRange range, int limit)
    {
        var sql = Ranged(_sql.Events, range.Kind);
        if (_connection.RowStatement(sql) is { } native)
        {
            return native.Events(LogIds.First(fromRevision), LogIds.End(toRevision), range, limit <= 0 ? long.MaxValue : limit);
        }

        var events = new List<LogEvent>();
        var cmd = _connection.Command(sql);
        Add(cmd, "@from", LogIds.First(fromRevision));
        Add(cmd, "@to", LogIds.End(toRevision));
        BindRange(cmd, range);
        Add(cmd, "@limit", limit <= 0 ? long.MaxValue : limit);
        using var reader = cmd.ExecuteReader();
        while (reader.Read())
        {
            var row = ReadRow(reader, 0);
            LogRow? prev = null;
            if (!reader.IsDBNull(8))
            {
                prev = new LogRow(
                    reader.GetInt64(8),
                    row.Key,
                    reader.GetInt64(9),
                    reader.GetInt64(10),
                    reader.GetInt64(11),
                    reader.IsDBNull(12) ? [] : reader.GetFieldValue<byte[]>(12),
                    false,
                    0);
            }

            events.Add(new LogEvent(row, prev));
        }

        return events;
    }

    /// <summary>Appends a row.</summary>
    public void Insert(LogRow row)
    {
        if (_volatile is not null && _volatile.IsVolatile(row.Key))
        {
            _volatile.Add(row, flushed: false);
            OperationVolatileRows.Add(row);
            return;
        }

        DurableWrites++;
        InsertRow(_connection.Command(_sql.InsertRow), row);
        if (row.Deleted)
        {
            var delete = _connection.Command(_sql.DeleteCurrent);
            Add(delete, "@k", row.Key);
            delete.ExecuteNonQuery();
        }
        else
        {
            var upsert = _connection.Command(_sql.UpsertCurrent);
            Add(upsert, "@k", row.Key);
            Add(upsert, "@id", row.Id);
            Add(upsert, "@lease", row.Lease);
            upsert.ExecuteNonQuery();
        }
    }

    /// <summary>Reads a metadata value.</summary>
    public long GetMeta(string name)
    {
        var cmd = _connection.Command(_sql.GetMeta);
        Add(cmd, "@n", name);
        return Convert.ToInt64(cmd.ExecuteScalar());
    }

    /// <summary>Sets a metadata value.</summary>
    public void SetMeta(string name, long value)
    {
        DurableWrites++;
        var cmd = _connection.Command(_sql.SetMeta);
        Add(cmd, "@v", value);
        Add(cmd, "@n", name);
        cmd.ExecuteNonQuery();
    }

    /// <summary>Deletes compacted rows with ids in [from, to); returns how many.</summary>
    public int CompactRows(long fromId, long toId, long idEnd)
    {
        DurableWrites++;
        _volatile?.Compact(idEnd);
        var cmd = _connection.Command(_sql.CompactRows);
        Add(cmd, "@from", fromId);
        Add(cmd, "@to", toId);
        Add(cmd, "@idEnd", idEnd);
        return cmd.ExecuteNonQuery();
    }

    /// <summary>Stores a new lease.</summary>
    public void InsertLease(LeaseRow lease)
    {
        DurableWrites++;
        var cmd = _connection.Command(_sql.InsertLease);
        Add(cmd, "@id", lease.Id);
        Add(cmd, "@ttl", lease.Ttl);
        Add(cmd, "@exp", lease.ExpiresAtUnixMs);
        cmd.ExecuteNonQuery();
    }

    /// <summary>Moves a lease's stored expiry.</summary>
    public void RenewLease(long id, long expiresAtUnixMs)
    {
        DurableWrites++;
        var cmd = _connection.Command(_sql.RenewLease);
        Add(cmd, "@id", id);
        Add(cmd, "@exp", expiresAtUnixMs);
        cmd.ExecuteNonQuery();
    }

    /// <summary>Deletes a lease; true when it existed.</summary>
    public bool DeleteLease(long id)
    {
        DurableWrites++;
        var cmd = _connection.Command(_sql.DeleteLease);
        Add(cmd, "@id", id);
        return cmd.ExecuteNonQuery() > 0;
    }

    /// <summary>One lease or null.</summary>
    public LeaseRow? GetLease(long id)
    {
        var cmd = _connection.Command(_sql.GetLease);
        Add(cmd, "@id", id);
        using var reader = cmd.ExecuteReader();
        return reader.Read() ? new LeaseRow(reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2)) : null;
    }

    /// <summary>All leases.</summary>
    public List<LeaseRow> ListLeases()
    {
        var cmd = _connection.Command(_sql.ListLeases);
        using var reader = cmd.ExecuteReader();
        var leases = new List<LeaseRow>();
        while (reader.Read())
        {
            leases.Add(new LeaseRow(reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2)));
        }

        return leases;
    }

    /// <summary>The live keys attached to a lease.</summary>
    public List<byte[]> KeysByLease(long lease)
    {
        var cmd = _connection.Command(_sql.KeysByLease);
        Add(cmd, "@lease", lease);
        using var reader = cmd.ExecuteReader();
        var keys = new List<byte[]>();
        while (reader.Read())
        {
            keys.Add(reader.GetFieldValue<byte[]>(0));
        }

        if (_volatile is not null)
        {
            var memory = _volatile.KeysByLease(lease, _visible);
            if (memory.Count > 0)
            {
                keys.AddRange(memory);
                keys.Sort((a, b) => a.AsSpan().SequenceCompareTo(b));
            }
        }

        return keys;
    }

    /// <summary>Allocated and used size of the store.</summary>
    public (long Size, long InUse) DbSize()
    {
        var size = Convert.ToInt64(_connection.Command(_sql.DbSize).ExecuteScalar());
        var inUse = Convert.ToInt64(_connection.Command(_sql.DbSizeInUse).ExecuteScalar());
        return (size, inUse);
    }

    internal void Execute(string sql) => _connection.Command(sql).ExecuteNonQuery();

    /// <summary>Binds a row to an insert of <c>coracle_log</c>'s columns (the log's or the volatile table's) and runs it.</summary>
    private static void InsertRow(DbCommand cmd, LogRow row)
    {
        Add(cmd, "@id", row.Id);
        Add(cmd, "@k", row.Key);
        Add(cmd, "@cr", row.CreateRevision);
        Add(cmd, "@ver", row.Version);
        Add(cmd, "@lease", row.Lease);
        Add(cmd, "@val", row.Value);
        Add(cmd, "@del", row.Deleted ? 1L : 0L);
        Add(cmd, "@prev", row.PrevId);
        cmd.ExecuteNonQuery();
    }

    /// <summary>Writes volatile rows to the <c>coracle_volatile</c> table (in this transaction).</summary>
    internal long WriteVolatile(IEnumerable<LogRow> rows)
    {
        var bytes = 0L;
        foreach (var row in rows)
        {
            InsertRow(_connection.Command(VolatileStore.InsertRow), row);
            bytes += row.Key.Length + row.Value.Length + 48;
        }

        return bytes;
    }

    /// <summary>Removes flushed volatile rows compaction made invisible.</summary>
    internal void CompactVolatile(long idEnd)
    {
        var cmd = _connection.Command(VolatileStore.CompactRows);
        Add(cmd, "@idEnd", idEnd);
        cmd.ExecuteNonQuery();
    }

    private static string Ranged(string template, RangeKind kind) =>
        template.Replace("{range}", KeyRange.Condition(kind), StringComparison.Ordinal);

    private static void BindRange(DbCommand cmd, KeyRange range)
    {
        Add(cmd, "@k", range.Start);
        if (range.Kind == RangeKind.Bounded)
        {
            Add(cmd, "@e", range.End);
        }
    }

    private static LogRow ReadRow(DbDataReader reader, int offset) => new(
        reader.GetInt64(offset),
        reader.GetFieldValue<byte[]>(offset + 1),
        reader.GetInt64(offset + 2),
        reader.GetInt64(offset + 3),
        reader.GetInt64(offset + 4),
        reader.IsDBNull(offset + 5) ? [] : reader.GetFieldValue<byte[]>(offset + 5),
        reader.GetInt64(offset + 6) != 0,
        reader.GetInt64(offset + 7));

    internal static void Add(DbCommand cmd, string name, object value)
    {
        var p = cmd.CreateParameter();
        p.ParameterName = name;
        p.Value = value;
        cmd.Parameters.Add(p);
    }
}

/// <summary>An open connection with its prepared commands, reused across sessions.</summary>
internal sealed class PooledConnection(DbConnection connection, bool prepareStatements = false, bool nativeRowReads = false) : IDisposable
{
    private readonly Dictionary<string, DbCommand> _commands = new(StringComparer.Ordinal);
    private readonly Dictionary<string, SqliteRowStatement> _rowStatements = new(StringComparer.Ordinal);

    public DbConnection Connection { get; } = connection;

    public DbTransaction? Transaction { get; set; }

    public bool Broken { get; set; }

    public DbCommand Command(string sql)
    {
        if (!_commands.TryGetValue(sql, out var cmd))
        {
            cmd = Connection.CreateCommand();
            cmd.CommandText = sql;
            cmd.Transaction = Transaction;
            if (prepareStatements)
            {
                try
                {
                    cmd.Prepare();
                }
                catch (DbException)
                {
                    // Not compilable yet (a table a statement before it creates); compiled when it runs.
                }
            }

            _commands[sql] = cmd;
        }

        cmd.Transaction = Transaction;
        cmd.Parameters.Clear();
        return cmd;
    }

    /// <summary>
    /// The connection's own SQLite statement for a range or event query, compiled on first use; null when the dialect
    /// reads rows through its DbDataReader (<see cref="SqlDialect.NativeRowReads"/> off).
    /// </summary>
    public SqliteRowStatement? RowStatement(string sql)
    {
        if (!nativeRowReads)
        {
            return null;
        }

        if (!_rowStatements.TryGetValue(sql, out var statement))
        {
            statement = SqliteRowStatement.Prepare((SqliteConnection)Connection, sql);
            _rowStatements[sql] = statement;
        }

        return statement;
    }

    public void Dispose()
    {
        // Statements first: SQLite closes a connection only when every statement on it is finalized.
        foreach (var statement in _rowStatements.Values)
        {
            statement.Dispose();
        }

        _rowStatements.Clear();
        foreach (var cmd in _commands.Values)
        {
            cmd.Dispose();
        }

        _commands.Clear();
        Connection.Dispose();
    }
}
