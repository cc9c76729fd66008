using System.Diagnostics;
using System.Text.Json;
using Coracle.Core.Supervision;
using Coracle.Plugins.Datastore.Etcd.Tests.Support;
using Coracle.Plugins.Datastore.Sql;
using Coracle.Plugins.Datastore.Sql.Storage;

namespace Coracle.Plugins.Datastore.Etcd.Tests;

/// <summary>
/// The SQLite → embedded etcd migration at plugin level, the way the host wires it: a real <c>state.db</c> written by the
/// SQL datastore's own server (through Debian's etcdctl), exported by the sqlite plugin (<see cref="IDatastoreExport"/>)
/// and imported by the etcd plugin (<see cref="IDatastoreImport"/>) into Debian's etcd 3.4 under the host's supervisor.
/// </summary>
[Trait("Category", "Integration")]
public sealed class ImportTests : IAsyncDisposable
{
    private static readonly Dictionary<string, string> NoOptions = [];
    private readonly TempDir _temp = new("etcdi");
    private readonly ListLoggerFactory _logs = new();
    private Supervisor? _supervisor;

    public async ValueTask DisposeAsync()
    {
        if (_supervisor is not null)
        {
            await _supervisor.StopAsync();
        }

        _temp.Dispose();
    }

    [Fact]
    public async Task ImportAsync_SqliteExportIntoEmbeddedEtcd_LiveKeysInOrderLeasesAnewReimportReplaces()
    {
        var node = EtcdTest.Node(_temp.Path, "etcd-m");
        var options = EtcdTest.Ports(FreePorts.Next());
        await WriteSqliteAsync(node);
        var sqlite = new SqliteDatastorePlugin();
        var info = sqlite.VerifyExport(node, NoOptions);
        var exported = new List<DatastoreKeyValue>();
        await foreach (var kv in sqlite.ExportAsync(node, NoOptions, CancellationToken.None))
        {
            exported.Add(kv);
        }

        Assert.Equal(183, info.Keys);
        Assert.Equal(183, exported.Count);

        var plugin = new EtcdPlugin();
        Assert.True(plugin.CanImport(node, options));
        Assert.False(plugin.CanImport(node with { DatastoreEndpoint = "https://10.0.0.1:2379" }, NoOptions));
        var endpoint = await StartEtcdAsync(node, options);
        Assert.False(plugin.CanImport(node, options));
        string[] client = ["--endpoints=" + endpoint.Servers[0], .. EtcdTest.Tls(endpoint.Tls!)];

        var result = await plugin.ImportAsync(node, options, sqlite.ExportAsync(node, NoOptions, CancellationToken.None), CancellationToken.None);

        Assert.Equal((183L, 1L, "embedded etcd"), (result.Keys, result.Leases, result.Target));
        var kvs = Range(client);
        Assert.Equal(exported.Select(k => Text(k.Key)).Order(StringComparer.Ordinal), kvs.Select(k => k.Key).Order(StringComparer.Ordinal));
        Assert.DoesNotContain(kvs, k => k.Key == "/registry/b");
        Assert.Equal("2", kvs.Single(k => k.Key == "/registry/a").Value);
        Assert.Equal(result.Revision, kvs.Max(k => k.ModRevision));

        // With its order: along the export's order the etcd mod revisions never go back, and more than 128 keys took
        // several transactions.
        var byKey = kvs.ToDictionary(k => k.Key, k => k.ModRevision, StringComparer.Ordinal);
        var revisions = exported.Select(k => byKey[Text(k.Key)]).ToList();
        Assert.Equal(revisions.Order(), revisions);
        Assert.True(revisions.Distinct().Count() >= 2, string.Join(",", revisions.Distinct()));

        // The event's lease is a new etcd lease with the old one's TTL; keys without a lease have none.
        var e1 = kvs.Single(k => k.Key == "/registry/events/default/e1");
        Assert.NotEqual(0, e1.Lease);
        Assert.All(kvs.Where(k => k.Key != e1.Key), k => Assert.Equal(0, k.Lease));
        var ttl = EtcdTest.Etcdctl([.. client, "lease", "timetolive", e1.Lease.ToString("x", System.Globalization.CultureInfo.InvariantCulture)]);
        Assert.Contains("granted with TTL(600s)", ttl.Output, StringComparison.Ordinal);

        // Again, over what an interrupted copy (or anyone) left: the same keys and values, nothing else.
        Assert.Equal(0, EtcdTest.Etcdctl([.. client, "put", "/registry/stale", "left-over"]).Exit);
        var again = await plugin.ImportAsync(node, options, sqlite.ExportAsync(node, NoOptions, CancellationToken.None), CancellationToken.None);
        Assert.Equal(183, again.Keys);
        var after = Range(client);
        Assert.Equal(kvs.Select(k => (k.Key, k.Value)).Order(), after.Select(k => (k.Key, k.Value)).Order());
        Assert.True(after.Min(k => k.ModRevision) > result.Revision);

        var aside = sqlite.RetireExported(node, NoOptions, DateTimeOffset.UtcNow);
        Assert.EndsWith("/server/db/state.db.migrated", aside, StringComparison.Ordinal);
        Assert.Null(sqlite.ExportSource(node, NoOptions));
    }

    [Fact]
    public async Task ImportAsync_KeyLargerThanEtcdAccepts_OneLineNamingTheKeyAndEarlierKeysStay()
    {
        var node = EtcdTest.Node(_temp.Path, "etcd-big");
        var options = EtcdTest.Ports(FreePorts.Next());
        var endpoint = await StartEtcdAsync(node, options);
        DatastoreKeyValue[] keys =
        [
            new("/registry/small"u8.ToArray(), "v"u8.ToArray(), 2, 2, 1),
            new("/registry/huge"u8.ToArray(), new byte[2 << 20], 3, 3, 1),
        ];

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            new EtcdPlugin().ImportAsync(node, options, Stream(keys), CancellationToken.None));

        Assert.StartsWith($"etcd at {endpoint.Servers[0]} refused writing 1 keys from /registry/huge: ", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.Message);
        Assert.Equal(["/registry/small"], Range(["--endpoints=" + endpoint.Servers[0], .. EtcdTest.Tls(endpoint.Tls!)]).Select(k => k.Key));
    }

    private async Task<DatastoreEndpoint> StartEtcdAsync(NodeSettings node, Dictionary<string, string> options)
    {
        var certificates = EtcdTest.Certificates(node);
        _supervisor = new Supervisor(_logs, logDir: _temp.Combine("logs"));
        var endpoint = new EtcdPlugin().Configure(EtcdTest.Context(node, options, certificates, _supervisor, _logs));
        _supervisor.Start(CancellationToken.None);
        await _supervisor.WaitReadyAsync(endpoint.ComponentName, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(60));
        return endpoint;
    }

    /// <summary>
    /// <c>DATA/server/db/state.db</c> written by the SQL datastore's server through etcdctl: /registry/a put twice,
    /// /registry/b put and deleted, an event with a 600 s lease, /registry/c, and 180 keys in three transactions.
    /// </summary>
    private async Task WriteSqliteAsync(NodeSettings node)
    {
        var db = Path.Combine(node.DataDir, "server", "db");
        Directory.CreateDirectory(db);
        var socket = Path.Combine(db, "etcd.sock");
        using var stop = new CancellationTokenSource();
        var server = new EtcdServer(new EtcdServerOptions { Dialect = SqlDialects.Sqlite(Path.Combine(db, "state.db")), UnixSocket = socket, ShutdownTimeout = TimeSpan.FromSeconds(3) }, _logs);
        var run = server.RunAsync(stop.Token);
        await server.Ready.WaitAsync(TimeSpan.FromSeconds(60));
        string[] c = ["--endpoints=unix://" + socket, "--command-timeout=10s"];
        void Ok((int Exit, string Output) r) => Assert.True(r.Exit == 0, r.Output);
        Ok(EtcdTest.Etcdctl([.. c, "put", "/registry/a", "1"]));
        Ok(EtcdTest.Etcdctl([.. c, "put", "/registry/b", "1"]));
        Ok(EtcdTest.Etcdctl([.. c, "put", "/registry/a", "2"]));
        Ok(EtcdTest.Etcdctl([.. c, "del", "/registry/b"]));
        var grant = EtcdTest.Etcdctl([.. c, "lease", "grant", "600"]);
        Ok(grant);
        var lease = grant.Output.Split(' ')[1];
        Ok(EtcdTest.Etcdctl([.. c, "put", "--lease=" + lease, "/registry/events/default/e1", "event"]));
        Ok(EtcdTest.Etcdctl([.. c, "put", "/registry/c", "3"]));
        for (var t = 0; t < 3; t++)
        {
            var ops = string.Join("\n", Enumerable.Range(0, 60).Select(i => $"put /registry/bulk/{t}-{i:D3} value-{t}-{i}"));
            Ok(EtcdctlStdin([.. c, "txn"], "\n" + ops + "\n\n\n"));
        }

        await stop.CancelAsync();
        await run;
    }

    private static (int Exit, string Output) EtcdctlStdin(string[] args, string stdin)
    {
        var start = new ProcessStartInfo("/usr/bin/etcdctl") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        start.Environment["ETCDCTL_API"] = "3";
        using var p = Process.Start(start)!;
        p.StandardInput.Write(stdin);
        p.StandardInput.Close();
        var err = p.StandardError.ReadToEndAsync();
        var output = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(TimeSpan.FromSeconds(60)))
        {
            p.Kill(true);
        }

        return (p.ExitCode, output + err.Result);
    }

    private static string Text(byte[] bytes) => System.Text.Encoding.UTF8.GetString(bytes);

    private static async IAsyncEnumerable<DatastoreKeyValue> Stream(IEnumerable<DatastoreKeyValue> keys)
    {
        foreach (var kv in keys)
        {
            await Task.Yield();
            yield return kv;
        }
    }

    private static List<(string Key, string Value, long ModRevision, long Lease)> Range(string[] client)
    {
        var (exit, output) = EtcdTest.Etcdctl([.. client, "get", "", "--from-key", "-w", "json"]);
        Assert.True(exit == 0, output);
        using var json = JsonDocument.Parse(output);
        if (!json.RootElement.TryGetProperty("kvs", out var kvs))
        {
            return [];
        }

        return kvs.EnumerateArray().Select(kv => (
            Text(Convert.FromBase64String(kv.GetProperty("key").GetString()!)),
            kv.TryGetProperty("value", out var v) ? Text(Convert.FromBase64String(v.GetString()!)) : "",
            kv.GetProperty("mod_revision").GetInt64(),
            kv.TryGetProperty("lease", out var l) ? l.GetInt64() : 0L)).ToList();
    }
}
