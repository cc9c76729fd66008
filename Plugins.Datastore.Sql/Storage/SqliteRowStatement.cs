using Microsoft.Data.Sqlite;
using SQLitePCL;

namespace Coracle.Plugins.Datastore.Sql.Storage;

/// <summary>
/// SQLite only: a range or event statement prepared on the connection's own handle and read column by column through
/// SQLitePCL.raw. Microsoft.Data.Sqlite's reader makes about 21 native calls per log row (each typed getter asks the
/// column's type first, a blob asks twice); this makes 11 (step, six integers, two blobs of two calls each). It runs on
/// the same <c>sqlite3</c> handle, so inside the session's transaction and snapshot, and it reads exactly the columns
/// <see cref="LogSession"/>'s DbDataReader path reads (a NULL value and an empty value both come back as an empty array).
/// </summary>
internal sealed class SqliteRowStatement : IDisposable
{
    private readonly sqlite3 _db;
    private readonly sqlite3_stmt _stmt;
    private readonly int _k;
    private readonly int _e;
    private readonly int _idEnd;
    private readonly int _limit;
    private readonly int _from;
    private readonly int _to;

    private SqliteRowStatement(sqlite3 db, sqlite3_stmt stmt)
    {
        _db = db;
        _stmt = stmt;
        _k = raw.sqlite3_bind_parameter_index(stmt, "@k");
        _e = raw.sqlite3_bind_parameter_index(stmt, "@e");
        _idEnd = raw.sqlite3_bind_parameter_index(stmt, "@idEnd");
        _limit = raw.sqlite3_bind_parameter_index(stmt, "@limit");
        _from = raw.sqlite3_bind_parameter_index(stmt, "@from");
        _to = raw.sqlite3_bind_parameter_index(stmt, "@to");
    }

    /// <summary>Compiles <paramref name="sql"/> on the open connection, kept compiled until <see cref="Dispose"/>.</summary>
    public static SqliteRowStatement Prepare(SqliteConnection connection, string sql)
    {
        var db = connection.Handle ?? throw new InvalidOperationException("the SQLite connection is not open");
        var rc = raw.sqlite3_prepare_v3(db, sql, raw.SQLITE_PREPARE_PERSISTENT, out var stmt);
        if (rc != raw.SQLITE_OK)
        {
            stmt?.Dispose();
            SqliteException.ThrowExceptionForRC(rc, db);
        }

        return new SqliteRowStatement(db, stmt ?? throw new InvalidOperationException("SQLite compiled no statement from: " + sql));
    }

    /// <summary>Runs a range statement (<see cref="SqlStatements.RangeCurrent"/> or <see cref="SqlStatements.RangeAt"/>); <paramref name="idEnd"/> only for the latter.</summary>
    public List<LogRow> Rows(KeyRange range, long idEnd, long limit)
    {
        var rows = new List<LogRow>();
        try
        {
            BindRange(range);
            if (_idEnd > 0)
            {
                Check(raw.sqlite3_bind_int64(_stmt, _idEnd, idEnd));
            }

            Check(raw.sqlite3_bind_int64(_stmt, _limit, limit));
            while (Step())
            {
                rows.Add(Row());
            }
        }
        finally
        {
            raw.sqlite3_reset(_stmt);
        }

        return rows;
    }

    /// <summary>Runs <see cref="SqlStatements.Events"/>: rows with ids in [<paramref name="fromId"/>, <paramref name="toId"/>) and each one's previous row.</summary>
    public List<LogEvent> Events(long fromId, long toId, KeyRange range, long limit)
    {
        var events = new List<LogEvent>();
        try
        {
            Check(raw.sqlite3_bind_int64(_stmt, _from, fromId));
            Check(raw.sqlite3_bind_int64(_stmt, _to, toId));
            BindRange(range);
            Check(raw.sqlite3_bind_int64(_stmt, _limit, limit));
            while (Step())
            {
                var row = Row();
                LogRow? prev = null;
                if (raw.sqlite3_column_type(_stmt, 8) != raw.SQLITE_NULL)
                {
                    prev = new LogRow(
                        raw.sqlite3_column_int64(_stmt, 8),
                        row.Key,
                        raw.sqlite3_column_int64(_stmt, 9),
                        raw.sqlite3_column_int64(_stmt, 10),
                        raw.sqlite3_column_int64(_stmt, 11),
                        raw.sqlite3_column_blob(_stmt, 12).ToArray(),
                        false,
                        0);
                }

                events.Add(new LogEvent(row, prev));
            }
        }
        finally
        {
            raw.sqlite3_reset(_stmt);
        }

        return events;
    }

    /// <summary>Finalizes the statement; must run before the connection closes.</summary>
    public void Dispose() => _stmt.Dispose();

    // The columns of SqlStatements.Columns. A NULL blob reads as an empty span, as IsDBNull ? [] did.
    private LogRow Row() => new(
        raw.sqlite3_column_int64(_stmt, 0),
        raw.sqlite3_column_blob(_stmt, 1).ToArray(),
        raw.sqlite3_column_int64(_stmt, 2),
        raw.sqlite3_column_int64(_stmt, 3),
        raw.sqlite3_column_int64(_stmt, 4),
        raw.sqlite3_column_blob(_stmt, 5).ToArray(),
        raw.sqlite3_column_int64(_stmt, 6) != 0,
        raw.sqlite3_column_int64(_stmt, 7));

    private void BindRange(KeyRange range)
    {
        Check(raw.sqlite3_bind_blob(_stmt, _k, range.Start));
        if (range.Kind == RangeKind.Bounded)
        {
            Check(raw.sqlite3_bind_blob(_stmt, _e, range.End));
        }
    }

    private bool Step()
    {
        var rc = raw.sqlite3_step(_stmt);
        if (rc == raw.SQLITE_ROW)
        {
            return true;
        }

        if (rc != raw.SQLITE_DONE)
        {
            SqliteException.ThrowExceptionForRC(rc, _db);
        }

        return false;
    }

    private void Check(int rc)
    {
        if (rc != raw.SQLITE_OK)
        {
            SqliteException.ThrowExceptionForRC(rc, _db);
        }
    }
}
