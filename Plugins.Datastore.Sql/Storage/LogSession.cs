using System.Data.Common;

namespace Coracle.Plugins.Datastore.Sql.Storage;

/// <summary>
/// One database transaction of the revision log: a read snapshot or the writer's batch.
/// Speaks rows, ids and revisions; knows nothing of etcd requests.
/// </summary>
public sealed class LogSession
{
    private readonly PooledConnection _connection;
    private readonly SqlStatements _sql;

    internal LogSession(PooledConnection connection, SqlStatements sql, long revision, long compactRevision)
    {
        _connection = connection;
        _sql = sql;
        Revision = revision;
        CompactRevision = compactRevision;
    }

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

        var cmd = _connection.Command(Ranged(current ? _sql.RangeCurrent : _sql.RangeAt, range.Kind));
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

        var cmd = _connection.Command(Ranged(current ? _sql.CountCurrent : _sql.CountAt, range.Kind));
        BindRange(cmd, range);
        if (!current)
        {
            Add(cmd, "@idEnd", LogIds.End(revision));
        }

        return Convert.ToInt64(cmd.ExecuteScalar());
    }

    /// <summary>Changes in revisions [<paramref name="fromRevision"/>, <paramref name="toRevision"/>] within the range, oldest first.</summary>
    public List<LogEvent> Events(long fromRevision, long toRevision, KeyRange range, int limit)
    {
        var events = new List<LogEvent>();
        if (range.Kind == RangeKind.Empty || toRevision < fromRevision)
        {
            return events;
        }

        var cmd = _connection.Command(Ranged(_sql.Events, range.Kind));
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
        var cmd = _connection.Command(_sql.InsertRow);
        Add(cmd, "@id", row.Id);
        Add(cmd, "@k", row.Key);
        Add(cmd, "@cr", row.CreateRevision);
        Add(cmd, "@ver", row.Version);
        Add(cmd, "@lease", row.Lease);
        Add(cmd, "@val", row.Value);
        Add(cmd, "@del", row.Deleted ? 1L : 0L);
        Add(cmd, "@prev", row.PrevId);
        cmd.ExecuteNonQuery();
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
        var cmd = _connection.Command(_sql.SetMeta);
        Add(cmd, "@v", value);
        Add(cmd, "@n", name);
        cmd.ExecuteNonQuery();
    }

    /// <summary>Deletes compacted rows with ids in [from, to); returns how many.</summary>
    public int CompactRows(long fromId, long toId, long idEnd)
    {
        var cmd = _connection.Command(_sql.CompactRows);
        Add(cmd, "@from", fromId);
        Add(cmd, "@to", toId);
        Add(cmd, "@idEnd", idEnd);
        return cmd.ExecuteNonQuery();
    }

    /// <summary>Stores a new lease.</summary>
    public void InsertLease(LeaseRow lease)
    {
        var cmd = _connection.Command(_sql.InsertLease);
        Add(cmd, "@id", lease.Id);
        Add(cmd, "@ttl", lease.Ttl);
        Add(cmd, "@exp", lease.ExpiresAtUnixMs);
        cmd.ExecuteNonQuery();
    }

    /// <summary>Moves a lease's stored expiry.</summary>
    public void RenewLease(long id, long expiresAtUnixMs)
    {
        var cmd = _connection.Command(_sql.RenewLease);
        Add(cmd, "@id", id);
        Add(cmd, "@exp", expiresAtUnixMs);
        cmd.ExecuteNonQuery();
    }

    /// <summary>Deletes a lease; true when it existed.</summary>
    public bool DeleteLease(long id)
    {
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
internal sealed class PooledConnection(DbConnection connection) : IDisposable
{
    private readonly Dictionary<string, DbCommand> _commands = new(StringComparer.Ordinal);

    public DbConnection Connection { get; } = connection;

    public DbTransaction? Transaction { get; set; }

    public bool Broken { get; set; }

    public DbCommand Command(string sql)
    {
        if (!_commands.TryGetValue(sql, out var cmd))
        {
            cmd = Connection.CreateCommand();
            cmd.CommandText = sql;
            _commands[sql] = cmd;
        }

        cmd.Transaction = Transaction;
        cmd.Parameters.Clear();
        return cmd;
    }

    public void Dispose()
    {
        foreach (var cmd in _commands.Values)
        {
            cmd.Dispose();
        }

        _commands.Clear();
        Connection.Dispose();
    }
}
