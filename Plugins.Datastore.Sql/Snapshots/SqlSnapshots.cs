using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Data.Sqlite;

namespace Coracle.Plugins.Datastore.Sql.Snapshots;

/// <summary>
/// Snapshots and restore of the SQL datastores (<see cref="IDatastoreSnapshots"/>). A SQLite snapshot is a consistent
/// copy of the database file (<c>VACUUM INTO</c>) in etcd's framing (<see cref="SnapshotFraming"/>). Restore checks the
/// whole file before it changes anything: the trailer's SHA-256, the SQLite header, Coracle's tables and
/// <c>PRAGMA integrity_check</c>; then the old database files move to <c>DATA/server/db-old-UNIXTIME</c> (never deleted)
/// and the snapshot's database takes their place, with a note (<c>state.db.restored.json</c>) of the snapshot it came from,
/// so a restore flag left in the unit file does not restore the same snapshot again on every start.
/// PostgreSQL and MySQL have no snapshots yet: their database's own backup tools apply.
/// </summary>
public static class SqlSnapshots
{
    /// <summary>The file beside the database that names the snapshot it was restored from.</summary>
    public const string RestoredSuffix = ".restored.json";

    private static readonly byte[] SqliteHeader = "SQLite format 3\0"u8.ToArray();

    /// <summary>Coracle's tables, which a snapshot of the SQL datastore must hold.</summary>
    private static readonly string[] Tables = ["coracle_log", "coracle_current", "coracle_meta", "coracle_lease"];

    /// <summary>The running datastore's socket, as <see cref="SqlDatastoreConfigurator.Configure"/> registers it.</summary>
    public static DatastoreEndpoint Endpoint(NodeSettings node, IReadOnlyDictionary<string, string> options, string kind)
    {
        var (_, socket) = SqlDatastoreConfigurator.BuildOptions(node, options, null, kind);
        return new DatastoreEndpoint(["unix://" + socket], SqlDatastoreConfigurator.ComponentName);
    }

    /// <summary>One line for <c>--cluster-reset</c> without a snapshot.</summary>
    public static string Reset(string kind) =>
        $"the {kind} datastore is one member by construction: nothing to reset; the server starts on its current data";

    /// <summary>Checks a snapshot file without changing anything; returns its revision and SHA-256 (hex).</summary>
    public static (long Revision, string Sha256) Verify(NodeSettings node, IReadOnlyDictionary<string, string> options, string kind, string file)
    {
        RequireSqlite(node, options, kind);
        var stage = Path.Combine(Path.GetTempPath(), $"coracle-verify-{Guid.NewGuid():N}.db");
        try
        {
            return Stage(file, stage);
        }
        finally
        {
            DeleteWithSidecars(stage);
        }
    }

    /// <summary>Verifies, moves the old database aside and puts the snapshot's in place (<see cref="IDatastoreSnapshots.Restore"/>).</summary>
    public static DatastoreRestore Restore(NodeSettings node, IReadOnlyDictionary<string, string> options, string kind, string file, DateTimeOffset now)
    {
        var dbPath = RequireSqlite(node, options, kind);
        var trailer = Convert.ToHexStringLower(SnapshotFraming.Verify(file));
        var marker = dbPath + RestoredSuffix;
        if (File.Exists(dbPath) && File.Exists(marker) && ReadMarker(marker) is { } done && done.Sha256 == trailer)
        {
            return new DatastoreRestore("", done.Revision, trailer, AlreadyRestored: true);
        }

        var dbDir = Path.GetDirectoryName(dbPath)!;
        if (!Directory.Exists(dbDir))
        {
            PrivateDirectory(dbDir);
        }

        var stage = Path.Combine(dbDir, $".restore-{now.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture)}-{Guid.NewGuid():N}.db");
        try
        {
            var (revision, sha) = Stage(file, stage);

            // From here on the data changes: the old files move aside, whole, and the staged copy takes their place.
            var defaultDir = PluginFolderAttribute.Resolve(typeof(SqliteDatastorePlugin), node.DataDir)["db"];
            var asideBase = string.Equals(Path.GetFullPath(dbDir), Path.GetFullPath(defaultDir), StringComparison.Ordinal)
                ? Path.GetFullPath(defaultDir).TrimEnd('/') + "-old-" + now.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture)
                : dbPath + "-old-" + now.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
            var moved = MoveAside(dbPath, asideBase);
            File.Move(stage, dbPath);
            PrivateFile(dbPath);
            WriteMarker(marker, file, sha, revision, now, moved);
            return new DatastoreRestore(moved, revision, sha, AlreadyRestored: false);
        }
        finally
        {
            DeleteWithSidecars(stage);
        }
    }

    private static string RequireSqlite(NodeSettings node, IReadOnlyDictionary<string, string> options, string kind)
    {
        if (kind != "sqlite")
        {
            throw new NotSupportedException(
                $"the {kind} datastore has no snapshots in this version; back up and restore the database with its own tools ({(kind == "postgres" ? "pg_dump and pg_restore" : "mysqldump")})");
        }

        var (serverOptions, _) = SqlDatastoreConfigurator.BuildOptions(node, options, null, kind);
        return serverOptions.Dialect.Location;
    }

    /// <summary>Writes the snapshot's database to <paramref name="stage"/> and checks it; throws <see cref="InvalidDataException"/>.</summary>
    private static (long Revision, string Sha256) Stage(string file, string stage)
    {
        var trailer = SnapshotFraming.Verify(file);
        var dataBytes = new FileInfo(file).Length - SnapshotFraming.TrailerBytes;
        using (var source = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read))
        {
            var header = new byte[SqliteHeader.Length];
            source.ReadExactly(header);
            if (!header.AsSpan().SequenceEqual(SqliteHeader))
            {
                source.Position = 16;
                var magic = new byte[4];
                source.ReadExactly(magic);
                throw new InvalidDataException(BitConverter.ToUInt32(magic) == 0xED0CDAED
                    ? "not a snapshot of the SQL datastore: it is an etcd (bbolt) snapshot, which only the etcd datastore restores"
                    : "not a snapshot of the SQL datastore: the data is not a SQLite database");
            }

            source.Position = 0;
            using var target = new FileStream(stage, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);
            PrivateFile(stage);
            var buffer = new byte[1 << 16];
            var left = dataBytes;
            while (left > 0)
            {
                var read = source.Read(buffer, 0, (int)Math.Min(buffer.Length, left));
                target.Write(buffer, 0, read);
                left -= read;
            }

            target.Flush(flushToDisk: true);
        }

        long revision;
        try
        {
            var connectionString = new SqliteConnectionStringBuilder { DataSource = stage, Mode = SqliteOpenMode.ReadWrite, Pooling = false }.ToString();
            using var connection = new SqliteConnection(connectionString);
            connection.Open();
            using var cmd = connection.CreateCommand();
            cmd.CommandText = "PRAGMA integrity_check";
            var lines = new List<string>();
            using (var reader = cmd.ExecuteReader())
            {
                while (reader.Read())
                {
                    lines.Add(reader.GetString(0));
                }
            }

            if (lines is not ["ok"])
            {
                throw new InvalidDataException("the SQLite database fails its integrity check: " + string.Join("; ", lines.Take(3)));
            }

            cmd.CommandText = "SELECT name FROM sqlite_master WHERE type = 'table'";
            var present = new HashSet<string>(StringComparer.Ordinal);
            using (var reader = cmd.ExecuteReader())
            {
                while (reader.Read())
                {
                    present.Add(reader.GetString(0));
                }
            }

            var missing = Tables.Where(t => !present.Contains(t)).ToList();
            if (missing.Count > 0)
            {
                throw new InvalidDataException($"not a snapshot of the SQL datastore: the SQLite database lacks Coracle's tables ({string.Join(", ", missing)})");
            }

            cmd.CommandText = "SELECT value FROM coracle_meta WHERE name = 'rev'";
            revision = cmd.ExecuteScalar() is long rev ? rev : throw new InvalidDataException("not a snapshot of the SQL datastore: coracle_meta has no revision");

            // One self-contained file: the datastore turns WAL on again when it opens it.
            cmd.CommandText = "PRAGMA journal_mode = DELETE";
            cmd.ExecuteNonQuery();
        }
        catch (SqliteException e)
        {
            throw new InvalidDataException($"the SQLite database cannot be read: {e.Message}", e);
        }

        return (revision, Convert.ToHexStringLower(trailer));
    }

    /// <summary>Moves the database and its WAL files into a new folder; returns it, or empty when there was no database.</summary>
    private static string MoveAside(string dbPath, string asideBase)
    {
        var files = new[] { dbPath, dbPath + "-wal", dbPath + "-shm", dbPath + "-journal", dbPath + RestoredSuffix }.Where(File.Exists).ToList();
        if (files.Count == 0)
        {
            return "";
        }

        var aside = asideBase;
        for (var n = 2; Directory.Exists(aside) || File.Exists(aside); n++)
        {
            aside = $"{asideBase}-{n.ToString(CultureInfo.InvariantCulture)}";
        }

        PrivateDirectory(aside);
        foreach (var f in files)
        {
            File.Move(f, Path.Combine(aside, Path.GetFileName(f)));
        }

        return aside;
    }

    private static void WriteMarker(string marker, string file, string sha, long revision, DateTimeOffset now, string movedAside)
    {
        var json = new JsonObject
        {
            ["snapshot"] = Path.GetFullPath(file),
            ["sha256"] = sha,
            ["revision"] = revision,
            ["restoredAt"] = now.ToString("O", CultureInfo.InvariantCulture),
            ["movedAside"] = movedAside,
        };
        File.WriteAllText(marker, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        PrivateFile(marker);
    }

    private static (string Sha256, long Revision)? ReadMarker(string marker)
    {
        try
        {
            var json = JsonNode.Parse(File.ReadAllText(marker));
            return json?["sha256"]?.GetValue<string>() is { } sha ? (sha, json["revision"]?.GetValue<long>() ?? 0) : null;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException or IOException)
        {
            return null;
        }
    }

    private static void PrivateDirectory(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(path);
            return;
        }

        Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    private static void PrivateFile(string path)
    {
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
    }

    private static void DeleteWithSidecars(string path)
    {
        foreach (var f in new[] { path, path + "-wal", path + "-shm", path + "-journal" })
        {
            File.Delete(f);
        }
    }
}
