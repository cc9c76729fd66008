using System.Diagnostics;
using System.Text.RegularExpressions;
using Coracle.Plugins.Datastore.Sql.Storage;
using Coracle.Plugins.Datastore.Sql.Tests.Support;
using static Coracle.Plugins.Datastore.Sql.Tests.Support.E;

namespace Coracle.Plugins.Datastore.Sql.Tests.Etcdctl;

/// <summary>
/// Debian's etcdctl (3.4, grpc-go) against the SQLite datastore on its unix socket, the endpoint kube-apiserver
/// is given. etcdctl sends the socket path (and on <c>endpoint status</c> the whole URL) as the HTTP/2
/// :authority, which Kestrel alone rejects (dotnet/aspnetcore#47043); one test also uses the TCP loopback listener.
/// </summary>
[Trait("Category", "Integration")]
public partial class EtcdctlTests : IAsyncLifetime
{
    private TestServer? _server;
    private string _etcdctl = "";
    private int _port;

    public async Task InitializeAsync()
    {
        _etcdctl = Tools.Require("etcdctl", "etcd-client");
        var dir = TempDir("etcdctl");
        _port = Coracle.TestSupport.FreePorts.Next();
        _server = await TestServer.StartAsync(SqlDialects.Sqlite(Path.Combine(dir, "state.db")), dir, o => Configure(o with { InsecureListenAddress = $"127.0.0.1:{_port}" }));
    }

    /// <summary>Lets a derived class change the server's options.</summary>
    protected virtual EtcdServerOptions Configure(EtcdServerOptions options) => options;

    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }

    private string Endpoint => "unix://" + _server!.Options.UnixSocket;

    private string TcpEndpoint => $"http://127.0.0.1:{_port}";

    private async Task<string> Ctl(params string[] args) => await CtlIn(null, args);

    private Task<string> CtlIn(string? stdin, params string[] args) => CtlAt(Endpoint, stdin, args);

    private async Task<string> CtlAt(string endpoint, string? stdin, params string[] args)
    {
        var (code, stdout, stderr) = await Tools.RunAsync(_etcdctl, ["--endpoints", endpoint, "--dial-timeout", "5s", .. args], stdin, new Dictionary<string, string> { ["ETCDCTL_API"] = "3" });
        Assert.True(code == 0, $"etcdctl {string.Join(' ', args)} exited {code}: {stderr}");
        return stdout.Replace("\r", "", StringComparison.Ordinal);
    }

    [Fact]
    public async Task Etcdctl_PutGetDelTxn_OutputMatchesEtcd()
    {
        Assert.Equal("OK\n", await Ctl("put", "/app/a", "1"));
        Assert.Equal("OK\n", await Ctl("put", "/app/b", "2"));
        Assert.Equal("/app/a\n1\n/app/b\n2\n", await Ctl("get", "--prefix", "/app/"));
        Assert.Equal("/app/b\n\n", await Ctl("get", "--prefix", "--keys-only", "--limit", "1", "--sort-by", "KEY", "--order", "DESCEND", "/app/"));
        Assert.Contains("\"count\":2", await Ctl("get", "--prefix", "-w", "json", "/app/"), StringComparison.Ordinal);
        Assert.Equal("1\n", await Ctl("del", "/app/a"));
        var txn = await CtlIn("value(\"/app/b\") = \"2\"\n\nput /app/ok yes\n\nput /app/fail no\n\n", "txn");
        Assert.Equal("SUCCESS\n\nOK\n", txn);
        Assert.Equal("/app/ok\nyes\n", await Ctl("get", "/app/ok"));
        Assert.Equal("", await Ctl("get", "/app/fail"));
        var rev = await _server!.Kv.RangeAsync(new Protos.RangeRequest { Key = B("x") });
        Assert.Equal("/app/a\n1\n", await Ctl("get", "--rev", (rev.Header.Revision - 2).ToString(System.Globalization.CultureInfo.InvariantCulture), "/app/a"));
    }

    [Fact]
    public async Task Etcdctl_Watch_PrintsHistoryEvents()
    {
        await Ctl("put", "w", "1");
        await Ctl("put", "w", "2");
        var psi = new ProcessStartInfo(_etcdctl) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "--endpoints", Endpoint, "watch", "--rev", "2", "--prev-kv", "w" })
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["ETCDCTL_API"] = "3";
        using var p = Process.Start(psi)!;
        var lines = new List<string>();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        while (lines.Count < 11)
        {
            var line = await p.StandardOutput.ReadLineAsync(cts.Token);
            if (line is null)
            {
                break;
            }

            lines.Add(line);
            if (lines.Count == 8)
            {
                await Ctl("del", "w");
            }
        }

        p.Kill();
        Assert.Equal(["PUT", "w", "1", "PUT", "w", "1", "w", "2", "DELETE", "w", "2"], lines.Take(11));
    }

    [Fact]
    public async Task Etcdctl_LeaseCommands_OutputMatchesEtcd()
    {
        var grant = await Ctl("lease", "grant", "60");
        var match = LeaseGranted().Match(grant);
        Assert.True(match.Success, grant);
        var id = match.Groups[1].Value;
        Assert.Equal("OK\n", await Ctl("put", "--lease", id, "leased", "v"));
        Assert.Equal($"lease {id} keepalived with TTL(60)\n", await Ctl("lease", "keep-alive", "--once", id));
        var ttl = await Ctl("lease", "timetolive", "--keys", id);
        Assert.Matches($"^lease {id} granted with TTL\\(60s\\), remaining\\((59|60)s\\), attached keys\\(\\[leased\\]\\)\n$", ttl);
        Assert.Contains(id, await Ctl("lease", "list"), StringComparison.Ordinal);
        Assert.Equal($"lease {id} revoked\n", await Ctl("lease", "revoke", id));
        Assert.Equal("", await Ctl("get", "leased"));
        Assert.Equal($"lease {id} already expired\n", await Ctl("lease", "timetolive", id));
    }

    [Fact]
    public async Task Etcdctl_CompactionStatusMembers_Answer()
    {
        for (var i = 0; i < 5; i++)
        {
            await Ctl("put", "c", i.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        Assert.Equal("compacted revision 4\n", await Ctl("compaction", "--physical", "4"));
        var status = await Ctl("endpoint", "status");
        Assert.Matches($"^{Regex.Escape(Endpoint)}, [0-9a-f]+, 3\\.5\\.16, [0-9.]+ [kM]?B, true, false, 1, 6, 6, \n$", status);
        var members = await Ctl("member", "list");
        Assert.Matches($"^[0-9a-f]+, started, default, , {Regex.Escape(Endpoint)},{Regex.Escape(TcpEndpoint)}, false\n$", members);
        Assert.Contains("is healthy", await CtlErr("endpoint", "health"), StringComparison.Ordinal);
        Assert.Equal("Finished defragmenting etcd member[" + Endpoint + "]\n", await Ctl("defrag"));
    }

    [Fact]
    public async Task Etcdctl_TcpLoopbackEndpointWithScheme_PutGetAndStatusAnswer()
    {
        Assert.Equal("OK\n", await CtlAt(TcpEndpoint, null, "put", "tcp", "1"));
        Assert.Equal("tcp\n1\n", await CtlAt(TcpEndpoint, null, "get", "tcp"));
        var status = await CtlAt(TcpEndpoint, null, "endpoint", "status");
        Assert.Matches($"^{Regex.Escape(TcpEndpoint)}, [0-9a-f]+, 3\\.5\\.16, [0-9.]+ [kM]?B, true, false, 1, 2, 2, \n$", status);
    }

    private async Task<string> CtlErr(params string[] args)
    {
        var (_, stdout, stderr) = await Tools.RunAsync(_etcdctl, ["--endpoints", Endpoint, .. args], null, new Dictionary<string, string> { ["ETCDCTL_API"] = "3" });
        return stdout + stderr;
    }

    [GeneratedRegex("^lease ([0-9a-f]+) granted with TTL\\(60s\\)\n$")]
    private static partial Regex LeaseGranted();
}

/// <summary>The same etcdctl commands with write economy on: "w", "c", "leased" and "/app/a" are volatile, the rest durable.</summary>
[Trait("Category", "Integration")]
public sealed class EtcdctlWriteEconomyTests : EtcdctlTests
{
    protected override EtcdServerOptions Configure(EtcdServerOptions options) =>
        options with { Log = options.Log with { VolatilePrefixes = ["w", "c", "leased", "/app/a"], VolatileFlushInterval = TimeSpan.FromMilliseconds(200) } };
}
