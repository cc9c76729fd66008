using System.Data;
using System.Data.Common;
using Microsoft.Data.Sqlite;
using MySqlConnector;
using Npgsql;

namespace Coracle.Plugins.Datastore.Sql.Storage;

/// <summary>The three dialects, as data.</summary>
public static class SqlDialects
{
    /// <summary>SQLite in WAL mode with full fsync on commit: the embedded default.</summary>
    public static SqlDialect Sqlite(string path)
    {
        var connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = false,
            Cache = SqliteCacheMode.Private,
            DefaultTimeout = 30,
        }.ToString();
        return new SqlDialect
        {
            Name = "sqlite",
            Location = path,
            CreateConnection = () =>
            {
                // The data dir's db folder may not exist yet on a first start; it is private to root.
                var dir = Path.GetDirectoryName(Path.GetFullPath(path));
                if (dir is not null && !Directory.Exists(dir) && !OperatingSystem.IsWindows())
                {
                    Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
                }

                return new SqliteConnection(connectionString);
            },
            OnOpen =
            [
                "PRAGMA busy_timeout = 30000",
                "PRAGMA synchronous = FULL",
                "PRAGMA journal_size_limit = 67108864",
                "PRAGMA cache_size = -16000",
                "PRAGMA temp_store = MEMORY",
            ],
            Schema =
            [
                "PRAGMA auto_vacuum = INCREMENTAL",
                "PRAGMA journal_mode = WAL",
                "CREATE TABLE IF NOT EXISTS coracle_log(id INTEGER PRIMARY KEY, name BLOB NOT NULL, create_revision INTEGER NOT NULL, version INTEGER NOT NULL, lease INTEGER NOT NULL, value BLOB, deleted INTEGER NOT NULL, prev_id INTEGER NOT NULL)",
                "CREATE INDEX IF NOT EXISTS coracle_log_name ON coracle_log(name, id)",
                "CREATE TABLE IF NOT EXISTS coracle_current(name BLOB PRIMARY KEY, id INTEGER NOT NULL, lease INTEGER NOT NULL) WITHOUT ROWID",
                "CREATE INDEX IF NOT EXISTS coracle_current_lease ON coracle_current(lease) WHERE lease <> 0",
                "CREATE TABLE IF NOT EXISTS coracle_meta(name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
                "CREATE TABLE IF NOT EXISTS coracle_lease(id INTEGER PRIMARY KEY, ttl INTEGER NOT NULL, expires_at INTEGER NOT NULL)",
                "INSERT OR IGNORE INTO coracle_meta(name, value) VALUES ('schema', 1), ('rev', 1), ('compact', 0), ('compact_done', 0)",
            ],
            Sql = SqliteLimits(new SqlStatements
            {
                UpsertCurrent = "INSERT INTO coracle_current(name, id, lease) VALUES (@k, @id, @lease) ON CONFLICT(name) DO UPDATE SET id = excluded.id, lease = excluded.lease",
                DbSize = "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
                DbSizeInUse = "SELECT (page_count - freelist_count) * page_size FROM pragma_page_count(), pragma_freelist_count(), pragma_page_size()",
                Defragment = ["PRAGMA wal_checkpoint(TRUNCATE)", "VACUUM", "PRAGMA wal_checkpoint(TRUNCATE)"],
            }),
            BeginRead = c => ((SqliteConnection)c).BeginTransaction(deferred: true),
            BeginWrite = c => ((SqliteConnection)c).BeginTransaction(deferred: false),
            PrepareStatements = true,
            NativeRowReads = true,
            Verify = ct => SqliteIntegrity.VerifyAsync(path, connectionString, ct),
            SnapshotTo = async (c, file) =>
            {
                await using var cmd = c.CreateCommand();
                cmd.CommandText = "VACUUM INTO @f";
                var p = cmd.CreateParameter();
                p.ParameterName = "@f";
                p.Value = file;
                cmd.Parameters.Add(p);
                await cmd.ExecuteNonQueryAsync();
            },
            CheckpointsWal = true,
            SupportsWriteEconomy = true,
        };
    }

    // SQLite reads a LIMIT that is a bare bound parameter while planning and marks the statement to be compiled
    // again whenever that parameter is bound anew, so every Get (a put's read of the key) and every range compiled
    // its SELECT again. "@limit + 0" is the same number but no longer a bare parameter: the statement stays compiled.
    private static SqlStatements SqliteLimits(SqlStatements sql) => sql with
    {
        RangeCurrent = sql.RangeCurrent.Replace("LIMIT @limit", "LIMIT @limit + 0", StringComparison.Ordinal),
        RangeAt = sql.RangeAt.Replace("LIMIT @limit", "LIMIT @limit + 0", StringComparison.Ordinal),
        Events = sql.Events.Replace("LIMIT @limit", "LIMIT @limit + 0", StringComparison.Ordinal),
    };

    /// <summary>PostgreSQL, possibly shared by several servers (LISTEN/NOTIFY plus polling).</summary>
    public static SqlDialect Postgres(string connectionString, string location)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString) { Enlist = false };
        var cs = builder.ToString();
        return new SqlDialect
        {
            Name = "postgres",
            Location = location,
            CreateConnection = () => new NpgsqlConnection(cs),
            Schema =
            [
                "CREATE TABLE IF NOT EXISTS coracle_log(id BIGINT PRIMARY KEY, name BYTEA NOT NULL, create_revision BIGINT NOT NULL, version BIGINT NOT NULL, lease BIGINT NOT NULL, value BYTEA, deleted BIGINT NOT NULL, prev_id BIGINT NOT NULL)",
                "CREATE INDEX IF NOT EXISTS coracle_log_name ON coracle_log(name, id)",
                "CREATE TABLE IF NOT EXISTS coracle_current(name BYTEA PRIMARY KEY, id BIGINT NOT NULL, lease BIGINT NOT NULL)",
                "CREATE INDEX IF NOT EXISTS coracle_current_lease ON coracle_current(lease) WHERE lease <> 0",
                "CREATE TABLE IF NOT EXISTS coracle_meta(name VARCHAR(32) PRIMARY KEY, value BIGINT NOT NULL)",
                "CREATE TABLE IF NOT EXISTS coracle_lease(id BIGINT PRIMARY KEY, ttl BIGINT NOT NULL, expires_at BIGINT NOT NULL)",
                "INSERT INTO coracle_meta(name, value) VALUES ('schema', 1), ('rev', 1), ('compact', 0), ('compact_done', 0) ON CONFLICT DO NOTHING",
            ],
            Sql = new SqlStatements
            {
                LockRevision = "SELECT value FROM coracle_meta WHERE name = 'rev' FOR UPDATE",
                UpsertCurrent = "INSERT INTO coracle_current(name, id, lease) VALUES (@k, @id, @lease) ON CONFLICT(name) DO UPDATE SET id = EXCLUDED.id, lease = EXCLUDED.lease",
                DbSize = "SELECT pg_database_size(current_database())",
                DbSizeInUse = "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0)::BIGINT FROM pg_class c WHERE c.relname LIKE 'coracle_%' AND c.relkind = 'r'",
                Defragment = ["VACUUM FULL coracle_log", "VACUUM FULL coracle_current"],
            },
            BeginRead = c => c.BeginTransaction(IsolationLevel.RepeatableRead),
            BeginWrite = c => c.BeginTransaction(IsolationLevel.ReadCommitted),
            SharedWriters = true,
            NotifyStatement = "NOTIFY coracle_log",
            ListenForCommits = (onCommit, ct) => PostgresListener.RunAsync(cs, onCommit, ct),
        };
    }

    /// <summary>MySQL or MariaDB, possibly shared by several servers (polling).</summary>
    public static SqlDialect MySql(string connectionString, string location)
    {
        var builder = new MySqlConnectionStringBuilder(connectionString) { AllowUserVariables = true };
        var cs = builder.ToString();
        return new SqlDialect
        {
            Name = "mysql",
            Location = location,
            CreateConnection = () => new MySqlConnection(cs),
            // Not NO_BACKSLASH_ESCAPES: MySqlConnector escapes binary parameters with backslashes.
            OnOpen = ["SET SESSION sql_mode = 'STRICT_ALL_TABLES'"],
            Schema =
            [
                "CREATE TABLE IF NOT EXISTS coracle_log(id BIGINT NOT NULL PRIMARY KEY, name VARBINARY(2048) NOT NULL, create_revision BIGINT NOT NULL, version BIGINT NOT NULL, lease BIGINT NOT NULL, value LONGBLOB, deleted BIGINT NOT NULL, prev_id BIGINT NOT NULL, INDEX coracle_log_name (name, id)) ENGINE=InnoDB",
                "CREATE TABLE IF NOT EXISTS coracle_current(name VARBINARY(2048) NOT NULL PRIMARY KEY, id BIGINT NOT NULL, lease BIGINT NOT NULL, INDEX coracle_current_lease (lease)) ENGINE=InnoDB",
                "CREATE TABLE IF NOT EXISTS coracle_meta(name VARCHAR(32) NOT NULL PRIMARY KEY, value BIGINT NOT NULL) ENGINE=InnoDB",
                "CREATE TABLE IF NOT EXISTS coracle_lease(id BIGINT NOT NULL PRIMARY KEY, ttl BIGINT NOT NULL, expires_at BIGINT NOT NULL) ENGINE=InnoDB",
                "INSERT IGNORE INTO coracle_meta(name, value) VALUES ('schema', 1), ('rev', 1), ('compact', 0), ('compact_done', 0)",
            ],
            Sql = new SqlStatements
            {
                LockRevision = "SELECT value FROM coracle_meta WHERE name = 'rev' FOR UPDATE",
                UpsertCurrent = "INSERT INTO coracle_current(name, id, lease) VALUES (@k, @id, @lease) ON DUPLICATE KEY UPDATE id = VALUES(id), lease = VALUES(lease)",
                // MySQL cannot delete from a table its own subquery reads unless the subquery is materialized.
                CompactRows = "DELETE FROM coracle_log WHERE id IN (SELECT id FROM (SELECT l.id FROM coracle_log l WHERE l.id >= @from AND l.id < @to AND (l.deleted = 1 OR EXISTS (SELECT 1 FROM coracle_log n WHERE n.name = l.name AND n.id > l.id AND n.id < @idEnd))) AS t)",
                DbSize = "SELECT COALESCE(SUM(data_length + index_length + data_free), 0) FROM information_schema.tables WHERE table_schema = DATABASE()",
                DbSizeInUse = "SELECT COALESCE(SUM(data_length + index_length), 0) FROM information_schema.tables WHERE table_schema = DATABASE()",
                Defragment = ["OPTIMIZE TABLE coracle_log, coracle_current"],
            },
            BeginRead = c => c.BeginTransaction(IsolationLevel.RepeatableRead),
            BeginWrite = c => c.BeginTransaction(IsolationLevel.ReadCommitted),
            SharedWriters = true,
            MaxKeyBytes = 2048,
        };
    }
}

/// <summary>Refuses a SQLite file that is not a healthy Coracle store, naming the file.</summary>
internal static class SqliteIntegrity
{
    public static async Task VerifyAsync(string path, string connectionString, CancellationToken cancellationToken)
    {
        var info = new FileInfo(path);
        if (!info.Exists || info.Length == 0)
        {
            return;
        }

        string? problem;
        try
        {
            var readOnly = new SqliteConnectionStringBuilder(connectionString) { Mode = SqliteOpenMode.ReadWrite }.ToString();
            await using var connection = new SqliteConnection(readOnly);
            await connection.OpenAsync(cancellationToken);
            await using var check = connection.CreateCommand();
            check.CommandText = "PRAGMA quick_check";
            var lines = new List<string>();
            await using (var reader = await check.ExecuteReaderAsync(cancellationToken))
            {
                while (await reader.ReadAsync(cancellationToken))
                {
                    lines.Add(reader.GetString(0));
                }
            }

            problem = lines is ["ok"] ? null : "integrity check failed: " + string.Join("; ", lines.Take(5));
            if (problem is null)
            {
                check.CommandText = "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'";
                var tables = Convert.ToInt64(await check.ExecuteScalarAsync(cancellationToken));
                check.CommandText = "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'coracle_meta'";
                var ours = Convert.ToInt64(await check.ExecuteScalarAsync(cancellationToken));
                if (tables > 0 && ours == 0)
                {
                    problem = "it holds tables that are not Coracle's";
                }
            }
        }
        catch (SqliteException e)
        {
            problem = e.Message;
        }

        if (problem is not null)
        {
            throw new DatastoreOpenException(
                $"{path} is not a usable Coracle SQLite database ({problem}); move it aside or restore it from a backup (Coracle never re-creates a database over existing data)");
        }
    }
}

/// <summary>Wakes the log when another server commits to a shared PostgreSQL database.</summary>
internal static class PostgresListener
{
    public static async Task RunAsync(string connectionString, Action onCommit, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await using var connection = new NpgsqlConnection(connectionString);
                await connection.OpenAsync(cancellationToken);
                connection.Notification += (_, _) => onCommit();
                await using (var listen = connection.CreateCommand())
                {
                    listen.CommandText = "LISTEN coracle_log";
                    await listen.ExecuteNonQueryAsync(cancellationToken);
                }

                onCommit();
                while (!cancellationToken.IsCancellationRequested)
                {
                    await connection.WaitAsync(cancellationToken);
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (DbException)
            {
                // The poll fallback covers the gap; try to listen again shortly.
                await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken).ContinueWith(_ => { }, TaskScheduler.Default);
            }
        }
    }
}

/// <summary>The store could not be opened; the message names it and says what to do.</summary>
public sealed class DatastoreOpenException : Exception
{
    /// <summary>Creates the error.</summary>
    public DatastoreOpenException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the error with its cause.</summary>
    public DatastoreOpenException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
