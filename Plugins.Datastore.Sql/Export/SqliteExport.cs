using System.Globalization;
using System.Runtime.CompilerServices;
using Coracle.Plugins.Datastore.Sql.Storage;
using Microsoft.Data.Sqlite;

namespace Coracle.Plugins.Datastore.Sql.Export;

/// <summary>
/// The SQLite datastore's keys for another datastore (<see cref="IDatastoreExport"/>): the default file
/// <c>DATA/server/db/state.db</c> is opened read-only and every live key is read in one snapshot transaction, the durable
/// keys (<c>coracle_current</c> joined to <c>coracle_log</c>) merged with the newest rows of the write-economy table
/// (<c>coracle_volatile</c>), in the order of their row ids, which is the order of their mod revisions. The file is never
/// written; after the copy <see cref="Retire"/> renames it (and its <c>-wal</c>/<c>-shm</c>) to <c>state.db.migrated</c>,
/// K3s's name, which stays a database SQLite opens.
/// </summary>
public static class SqliteExport
{
    /// <summary>What the data is, for the host's messages.</summary>
    public const string Kind = "SQLite";

    /// <summary>The suffix the exported file is renamed with.</summary>
    public const string MigratedSuffix = ".migrated";

    private static readonly string[] Tables = ["coracle_log", "coracle_current", "coracle_meta"];

    /// <summary>The default SQLite file of a node: <c>DATA/server/db/state.db</c>.</summary>
    public static string DefaultFile(NodeSettings node)
    {
        ArgumentNullException.ThrowIfNull(node);
        return Path.Combine(PluginFolderAttribute.Resolve(typeof(SqliteDatastorePlugin), node.DataDir)["db"], "state.db");
    }

    /// <summary>The default SQLite file when it exists and the node names no other datastore endpoint; else null.</summary>
    public static string? Source(NodeSettings node)
    {
        ArgumentNullException.ThrowIfNull(node);
        var endpoint = node.DatastoreEndpoint.Trim();

        // An external etcd, PostgreSQL or MySQL endpoint: the node's own file is not what it runs on.
        if (endpoint.Length > 0)
        {
            return null;
        }

        var file = DefaultFile(node);
        return File.Exists(file) ? file : null;
    }

    /// <summary>Opens the file read-only and checks it; throws <see cref="InvalidDataException"/> naming it.</summary>
    public static DatastoreExportInfo Verify(NodeSettings node)
    {
        var file = Source(node) ?? throw new FileNotFoundException($"{DefaultFile(node)}: no SQLite datastore file to export", DefaultFile(node));
        return Guard(file, () =>
        {
            using var connection = Open(file);
            using var check = connection.CreateCommand();
            check.CommandText = "PRAGMA quick_check";
            var lines = new List<string>();
            using (var reader = check.ExecuteReader())
            {
                while (reader.Read())
                {
                    lines.Add(reader.GetString(0));
                }
            }

            if (lines is not ["ok"])
            {
                throw new InvalidDataException($"the SQLite database {file} fails its integrity check: {string.Join("; ", lines.Take(3))}");
            }

            using var transaction = connection.BeginTransaction(deferred: true);
            var (revision, volatileTable) = ReadHeader(connection, transaction, file);
            var keys = Scalar(connection, transaction, "SELECT COUNT(*) FROM coracle_current");
            if (volatileTable)
            {
                // As the export counts them: a key in both tables is counted from its newer row.
                keys -= Scalar(connection, transaction, "SELECT COUNT(*) FROM coracle_current c WHERE EXISTS (SELECT 1 FROM coracle_volatile v WHERE v.name = c.name AND v.id > c.id)");
                keys += Scalar(connection, transaction, "SELECT COUNT(*) FROM coracle_volatile v WHERE v.deleted = 0 AND v.id = (SELECT MAX(w.id) FROM coracle_volatile w WHERE w.name = v.name) AND NOT EXISTS (SELECT 1 FROM coracle_current c WHERE c.name = v.name AND c.id > v.id)");
                revision = Math.Max(revision, Scalar(connection, transaction, "SELECT COALESCE(MAX(id), 0) FROM coracle_volatile") >> LogIds.SubBits);
            }

            return new DatastoreExportInfo(file, Kind, revision, keys);
        });
    }

    /// <summary>Every live key in mod-revision order (<see cref="IDatastoreExport.ExportAsync"/>).</summary>
    public static async IAsyncEnumerable<DatastoreKeyValue> ExportAsync(NodeSettings node, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var file = Source(node) ?? throw new FileNotFoundException($"{DefaultFile(node)}: no SQLite datastore file to export", DefaultFile(node));
        using var connection = Guard(file, () => Open(file));
        using var transaction = Guard(file, () => connection.BeginTransaction(deferred: true));
        var (leases, volatileRows, durableIds) = Guard(file, () =>
        {
            var (_, volatileTable) = ReadHeader(connection, transaction, file);
            return volatileTable
                ? (ReadLeases(connection, transaction), ReadVolatile(connection, transaction), DurableIdsOfVolatileKeys(connection, transaction))
                : (ReadLeases(connection, transaction), new List<ExportRow>(), new Dictionary<string, long>(StringComparer.Ordinal));
        });

        // Durable rows stream in id order; the volatile ones (newest per key, few: leases and events) are merged in. A key
        // in both tables (write economy's prefixes changed between runs) is taken from its newer row.
        var volatileIds = volatileRows.ToDictionary(r => Convert.ToBase64String(r.Key), r => r.Id, StringComparer.Ordinal);
        var live = volatileRows.Where(r => !r.Deleted && !(durableIds.TryGetValue(Convert.ToBase64String(r.Key), out var id) && id > r.Id)).ToList();
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "SELECT l.id, l.name, l.create_revision, l.version, l.lease, l.value FROM coracle_current c JOIN coracle_log l ON l.id = c.id ORDER BY l.id";
        var reader = Guard(file, () => command.ExecuteReader());
        var next = 0;
        try
        {
            while (Guard(file, () => reader.Read()))
            {
                cancellationToken.ThrowIfCancellationRequested();
                var row = Guard(file, () => ReadRow(reader));
                if (volatileIds.TryGetValue(Convert.ToBase64String(row.Key), out var volatileId) && volatileId > row.Id)
                {
                    continue;
                }

                for (; next < live.Count && live[next].Id < row.Id; next++)
                {
                    yield return Exported(live[next], leases);
                }

                yield return Exported(row, leases);
            }
        }
        finally
        {
            await reader.DisposeAsync();
        }

        for (; next < live.Count; next++)
        {
            yield return Exported(live[next], leases);
        }
    }

    /// <summary>Renames the file and its WAL files to <c>state.db.migrated</c>; returns the new name (<see cref="IDatastoreExport.RetireExported"/>).</summary>
    public static string Retire(NodeSettings node, DateTimeOffset now)
    {
        var file = DefaultFile(node);
        if (!File.Exists(file))
        {
            throw new FileNotFoundException($"{file}: no SQLite datastore file to move aside", file);
        }

        var target = file + MigratedSuffix;
        if (Sidecars(target).Any(File.Exists))
        {
            target = $"{file}{MigratedSuffix}-{now.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture)}";
        }

        // The WAL files first: a crash between two renames leaves state.db, whose committed data is then complete as long
        // as its WAL is still beside it, or has already moved to the same new name.
        foreach (var suffix in new[] { "-wal", "-shm", "-journal", Snapshots.SqlSnapshots.RestoredSuffix })
        {
            if (File.Exists(file + suffix))
            {
                File.Move(file + suffix, target + suffix);
            }
        }

        File.Move(file, target);
        return target;
    }

    private static IEnumerable<string> Sidecars(string file) => [file, file + "-wal", file + "-shm", file + "-journal"];

    /// <summary>The id of the durable current row of every key that also has volatile rows.</summary>
    private static Dictionary<string, long> DurableIdsOfVolatileKeys(SqliteConnection connection, SqliteTransaction transaction)
    {
        var ids = new Dictionary<string, long>(StringComparer.Ordinal);
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "SELECT c.name, c.id FROM coracle_current c WHERE c.name IN (SELECT name FROM coracle_volatile)";
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            ids[Convert.ToBase64String(reader.GetFieldValue<byte[]>(0))] = reader.GetInt64(1);
        }

        return ids;
    }

    private static DatastoreKeyValue Exported(ExportRow row, Dictionary<long, long> leases) =>
        new(row.Key, row.Value, row.Id >> LogIds.SubBits, row.CreateRevision, row.Version)
        {
            Lease = row.Lease,
            LeaseTtlSeconds = row.Lease != 0 && leases.TryGetValue(row.Lease, out var ttl) ? ttl : 0,
        };

    private static SqliteConnection Open(string file)
    {
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder
        {
            DataSource = file,
            Mode = SqliteOpenMode.ReadOnly,
            Pooling = false,
            DefaultTimeout = 30,
        }.ToString());
        connection.Open();
        return connection;
    }

    private static (long Revision, bool VolatileTable) ReadHeader(SqliteConnection connection, SqliteTransaction transaction, string file)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "SELECT name FROM sqlite_master WHERE type = 'table'";
        var present = new HashSet<string>(StringComparer.Ordinal);
        using (var reader = command.ExecuteReader())
        {
            while (reader.Read())
            {
                present.Add(reader.GetString(0));
            }
        }

        var missing = Tables.Where(t => !present.Contains(t)).ToList();
        if (missing.Count > 0)
        {
            throw new InvalidDataException($"{file} is not a database of the SQL datastore: it lacks Coracle's tables ({string.Join(", ", missing)})");
        }

        var schema = Scalar(connection, transaction, "SELECT COALESCE((SELECT value FROM coracle_meta WHERE name = 'schema'), 0)");
        if (schema != 1)
        {
            throw new InvalidDataException($"{file} has schema version {schema.ToString(CultureInfo.InvariantCulture)}; this Coracle reads version 1");
        }

        return (Scalar(connection, transaction, "SELECT COALESCE((SELECT value FROM coracle_meta WHERE name = 'rev'), 0)"), present.Contains("coracle_volatile"));
    }

    private static Dictionary<long, long> ReadLeases(SqliteConnection connection, SqliteTransaction transaction)
    {
        var leases = new Dictionary<long, long>();
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "SELECT id, ttl FROM coracle_lease";
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            leases[reader.GetInt64(0)] = reader.GetInt64(1);
        }

        return leases;
    }

    private static List<ExportRow> ReadVolatile(SqliteConnection connection, SqliteTransaction transaction)
    {
        var rows = new List<ExportRow>();
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "SELECT v.id, v.name, v.create_revision, v.version, v.lease, v.value, v.deleted FROM coracle_volatile v WHERE v.id = (SELECT MAX(w.id) FROM coracle_volatile w WHERE w.name = v.name) ORDER BY v.id";
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            rows.Add(ReadRow(reader) with { Deleted = reader.GetInt64(6) != 0 });
        }

        return rows;
    }

    private static ExportRow ReadRow(SqliteDataReader reader) => new(
        reader.GetInt64(0),
        reader.GetFieldValue<byte[]>(1),
        reader.GetInt64(2),
        reader.GetInt64(3),
        reader.GetInt64(4),
        reader.IsDBNull(5) ? [] : reader.GetFieldValue<byte[]>(5),
        false);

    private static long Scalar(SqliteConnection connection, SqliteTransaction transaction, string sql)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        return Convert.ToInt64(command.ExecuteScalar(), CultureInfo.InvariantCulture);
    }

    /// <summary>Runs a read; a SQLite error becomes one line naming the file.</summary>
    private static T Guard<T>(string file, Func<T> body)
    {
        try
        {
            return body();
        }
        catch (SqliteException e)
        {
            throw new InvalidDataException($"the SQLite database {file} cannot be read: {e.Message.TrimEnd('.')}", e);
        }
    }

    private sealed record ExportRow(long Id, byte[] Key, long CreateRevision, long Version, long Lease, byte[] Value, bool Deleted);
}
