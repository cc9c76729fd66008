using Coracle.Plugins.Datastore.Sql.Protos;
using Coracle.Plugins.Datastore.Sql.Storage;
using Coracle.Plugins.Datastore.Sql.Tests.Support;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;
using static Coracle.Plugins.Datastore.Sql.Tests.Support.E;

namespace Coracle.Plugins.Datastore.Sql.Tests.Sqlite;

/// <summary>
/// SQLite reads range and event rows through SQLitePCL.raw (<see cref="SqliteRowStatement"/>); the other dialects and
/// <c>NativeRowReads = false</c> read them through the provider's DbDataReader. Both must give the same rows.
/// </summary>
public sealed class SqliteRowReadTests
{
    private static readonly byte[] NullValueKey = "b/null"u8.ToArray();

    [Fact]
    public void Sqlite_Dialect_ReadsRowsNatively()
    {
        Assert.True(SqlDialects.Sqlite("/nonexistent/state.db").NativeRowReads);
        Assert.False(SqlDialects.Postgres("Host=localhost;Database=x", "localhost/x").NativeRowReads);
        Assert.False(SqlDialects.MySql("Server=localhost;Database=x", "localhost/x").NativeRowReads);
    }

    [Fact]
    public async Task RangeAndEvents_NativeAndReaderPaths_GiveIdenticalRows()
    {
        var dir = TempDir("native-rows");
        var db = Path.Combine(dir, "state.db");
        long middle;
        await using (var server = await TestServer.StartAsync(SqlDialects.Sqlite(db), dir))
        {
            var lease = (await server.Lease.LeaseGrantAsync(new LeaseGrantRequest { TTL = 600 })).ID;
            for (var i = 0; i < 12; i++)
            {
                await server.Kv.PutAsync(new PutRequest { Key = B($"a/{i:D2}"), Value = B(new string((char)('a' + i), i * 40)), Lease = i % 3 == 0 ? lease : 0 });
            }

            await server.Kv.PutAsync(new PutRequest { Key = B("a/empty"), Value = Google.Protobuf.ByteString.Empty });
            await server.Kv.PutAsync(new PutRequest { Key = Google.Protobuf.ByteString.CopyFrom(NullValueKey), Value = B("becomes NULL") });
            await server.Kv.PutAsync(new PutRequest { Key = Google.Protobuf.ByteString.CopyFrom(NullValueKey), Value = B("NULL too") });
            await server.Kv.PutAsync(new PutRequest { Key = B("a/03"), Value = B("second version"), Lease = lease });
            middle = (await server.Kv.PutAsync(new PutRequest { Key = B("a/05"), Value = B("second version") })).Header.Revision;
            await server.Kv.DeleteRangeAsync(new DeleteRangeRequest { Key = B("a/07") });
            await server.Kv.DeleteRangeAsync(new DeleteRangeRequest { Key = B("a/08") });
            await server.Kv.PutAsync(new PutRequest { Key = B("a/08"), Value = B("re-created") });
            await server.Kv.PutAsync(new PutRequest { Key = B("a/05"), Value = B("third version") });
            await server.Kv.PutAsync(new PutRequest { Key = B("c/\u00ff\u0000binary"), Value = Google.Protobuf.ByteString.CopyFrom(0, 255, 0) });
        }

        // A NULL value (what another tool, or an older schema, may leave) reads as an empty value on both paths.
        await using (var c = new SqliteConnection($"Data Source={db};Pooling=False"))
        {
            await c.OpenAsync();
            await using var cmd = c.CreateCommand();
            cmd.CommandText = "UPDATE coracle_log SET value = NULL WHERE name = @k";
            cmd.Parameters.AddWithValue("@k", NullValueKey);
            Assert.Equal(2, await cmd.ExecuteNonQueryAsync());
        }

        var native = await ReadEverythingAsync(SqlDialects.Sqlite(db), middle);
        var reader = await ReadEverythingAsync(SqlDialects.Sqlite(db) with { NativeRowReads = false }, middle);

        Assert.Equal(reader, native);
        Assert.Contains(native, line => line.Contains($"|{Convert.ToHexString(NullValueKey)}|", StringComparison.Ordinal) && line.Contains("|value=|", StringComparison.Ordinal));
        Assert.Contains(native, line => line.Contains("|lease=", StringComparison.Ordinal) && !line.Contains("|lease=0|", StringComparison.Ordinal));
        Assert.Contains(native, line => line.StartsWith("events", StringComparison.Ordinal) && line.Contains("|del=True|", StringComparison.Ordinal));
        Assert.Contains("single a/07: none", native);
        Assert.True(native.Count > 60, $"only {native.Count} lines read");

        // Every connection, and its own statements with it, was closed: nothing holds the database file open.
        Assert.DoesNotContain(OpenFiles(), f => f.StartsWith(db, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Prepare_DatabaseWithoutTheLog_ThrowsSqliteExceptionNamingTheTable()
    {
        var dir = TempDir("native-no-table");
        await using var c = new SqliteConnection($"Data Source={Path.Combine(dir, "empty.db")};Pooling=False");
        await c.OpenAsync();
        var e = Assert.Throws<SqliteException>(() => SqliteRowStatement.Prepare(c, new SqlStatements { UpsertCurrent = "", DbSize = "", DbSizeInUse = "", Defragment = [] }.RangeCurrent.Replace("{range}", KeyRange.Condition(RangeKind.Open), StringComparison.Ordinal)));
        Assert.Contains("no such table: coracle_current", e.Message, StringComparison.Ordinal);
    }

    private static async Task<List<string>> ReadEverythingAsync(SqlDialect dialect, long middle)
    {
        var lines = new List<string>();
        await using var log = new RevisionLog(dialect, NullLogger.Instance);
        await log.OpenAsync(CancellationToken.None);
        var all = new KeyRange(RangeKind.Open, [], []);
        var prefixA = KeyRange.From("a/"u8.ToArray(), "a0"u8.ToArray());
        var prefixB = KeyRange.From("b/"u8.ToArray(), "b0"u8.ToArray());
        log.Read(s =>
        {
            foreach (var (name, range) in new[] { ("all", all), ("a/", prefixA), ("b/", prefixB), ("from a/05", new KeyRange(RangeKind.Open, "a/05"u8.ToArray(), [])) })
            {
                foreach (var limit in new long[] { 0, 1, 3, 1000 })
                {
                    Add(lines, $"current {name} limit {limit}", s.Range(range, 0, current: true, limit));
                    Add(lines, $"at {middle} {name} limit {limit}", s.Range(range, middle, current: false, limit));
                    Add(lines, $"at 2 {name} limit {limit}", s.Range(range, 2, current: false, limit));
                }

                foreach (var limit in new[] { 0, 1, 5 })
                {
                    foreach (var e in s.Events(1, s.Revision, range, limit))
                    {
                        lines.Add($"events {name} limit {limit}: {Show(e.Row)} prev {(e.Prev is null ? "none" : Show(e.Prev))}");
                    }

                    foreach (var e in s.Events(middle, s.Revision, range, limit))
                    {
                        lines.Add($"events from {middle} {name} limit {limit}: {Show(e.Row)} prev {(e.Prev is null ? "none" : Show(e.Prev))}");
                    }
                }
            }

            foreach (var key in new[] { "a/00", "a/03", "a/07", "a/08", "a/empty", "b/null", "zzz" })
            {
                var row = s.Get(System.Text.Encoding.UTF8.GetBytes(key));
                lines.Add($"single {key}: {(row is null ? "none" : Show(row))}");
            }

            return 0;
        });
        return lines;
    }

    private static void Add(List<string> lines, string what, List<LogRow> rows)
    {
        lines.Add($"{what}: {rows.Count} rows");
        lines.AddRange(rows.Select(r => $"{what}: {Show(r)}"));
    }

    private static string Show(LogRow r) =>
        $"id={r.Id}|{Convert.ToHexString(r.Key)}|cr={r.CreateRevision}|ver={r.Version}|lease={r.Lease}|value={Convert.ToHexString(r.Value)}|del={r.Deleted}|prev={r.PrevId}";

    private static List<string> OpenFiles()
    {
        var files = new List<string>();
        foreach (var fd in Directory.EnumerateFileSystemEntries("/proc/self/fd"))
        {
            try
            {
                if (new FileInfo(fd).LinkTarget is { } target)
                {
                    files.Add(target);
                }
            }
            catch (IOException)
            {
                // The descriptor closed while listing.
            }
        }

        return files;
    }
}
