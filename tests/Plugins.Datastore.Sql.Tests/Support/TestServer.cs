using System.Net.Sockets;
using Coracle.Plugins.Datastore.Sql.Protos;
using Coracle.Plugins.Datastore.Sql.Storage;
using Grpc.Net.Client;
using Microsoft.Extensions.Logging.Abstractions;

namespace Coracle.Plugins.Datastore.Sql.Tests.Support;

/// <summary>An in-process etcd server on a unix socket in a temp dir, with clients.</summary>
public sealed class TestServer : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _run;

    private TestServer(EtcdServer server, EtcdServerOptions options, string dir)
    {
        Server = server;
        Options = options;
        Dir = dir;
        _run = server.RunAsync(_stop.Token);
        Channel = CreateChannel(options.UnixSocket!);
        Kv = new KV.KVClient(Channel);
        Watch = new Watch.WatchClient(Channel);
        Lease = new Lease.LeaseClient(Channel);
        Maintenance = new Maintenance.MaintenanceClient(Channel);
        Cluster = new Cluster.ClusterClient(Channel);
    }

    public EtcdServer Server { get; }

    public EtcdServerOptions Options { get; }

    public string Dir { get; }

    public GrpcChannel Channel { get; }

    public KV.KVClient Kv { get; }

    public Watch.WatchClient Watch { get; }

    public Lease.LeaseClient Lease { get; }

    public Maintenance.MaintenanceClient Maintenance { get; }

    public Cluster.ClusterClient Cluster { get; }

    public static async Task<TestServer> StartAsync(SqlDialect dialect, string dir, Func<EtcdServerOptions, EtcdServerOptions>? configure = null)
    {
        Directory.CreateDirectory(dir);
        var options = new EtcdServerOptions
        {
            Dialect = dialect,
            UnixSocket = Path.Combine(dir, "etcd.sock"),
            ShutdownTimeout = TimeSpan.FromSeconds(3),
            LeaseCheckInterval = TimeSpan.FromMilliseconds(100),
            MinLeaseTtl = 1,
        };
        options = configure?.Invoke(options) ?? options;
        var server = new TestServer(new EtcdServer(options, NullLoggerFactory.Instance), options, dir);
        await server.Server.Ready.WaitAsync(TimeSpan.FromSeconds(60));
        return server;
    }

    public static GrpcChannel CreateChannel(string socket) => GrpcChannel.ForAddress("http://localhost", new GrpcChannelOptions
    {
        HttpHandler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                await s.ConnectAsync(new UnixDomainSocketEndPoint(socket), ct);
                return new NetworkStream(s, ownsSocket: true);
            },
            EnableMultipleHttp2Connections = true,
        },
        MaxReceiveMessageSize = null,
        MaxSendMessageSize = null,
    });

    public async ValueTask DisposeAsync()
    {
        Channel.Dispose();
        await _stop.CancelAsync();
        try
        {
            await _run.WaitAsync(TimeSpan.FromSeconds(30));
        }
        catch (OperationCanceledException)
        {
        }

        _stop.Dispose();
    }
}

/// <summary>Short helpers for etcd messages.</summary>
public static class E
{
    public static Google.Protobuf.ByteString B(string s) => Google.Protobuf.ByteString.CopyFromUtf8(s);

    public static string S(Google.Protobuf.ByteString b) => b.ToStringUtf8();

    /// <summary>The range end that makes a prefix query (etcd's GetPrefixRangeEnd).</summary>
    public static Google.Protobuf.ByteString PrefixEnd(string prefix)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(prefix);
        for (var i = bytes.Length - 1; i >= 0; i--)
        {
            if (bytes[i] < 0xff)
            {
                bytes[i]++;
                return Google.Protobuf.ByteString.CopyFrom(bytes, 0, i + 1);
            }
        }

        return Google.Protobuf.ByteString.CopyFrom(0);
    }

    public static RequestOp Put(string key, string value, long lease = 0) =>
        new() { RequestPut = new PutRequest { Key = B(key), Value = B(value), Lease = lease } };

    public static RequestOp Get(string key) => new() { RequestRange = new RangeRequest { Key = B(key) } };

    public static RequestOp Del(string key) => new() { RequestDeleteRange = new DeleteRangeRequest { Key = B(key) } };

    public static Compare ModRevision(string key, long revision, Compare.Types.CompareResult result = Compare.Types.CompareResult.Equal) =>
        new() { Key = B(key), Target = Compare.Types.CompareTarget.Mod, Result = result, ModRevision = revision };

    public static Compare CreateRevision(string key, long revision, Compare.Types.CompareResult result = Compare.Types.CompareResult.Equal) =>
        new() { Key = B(key), Target = Compare.Types.CompareTarget.Create, Result = result, CreateRevision = revision };

    public static string TempDir(string name)
    {
        var dir = Path.Combine(Path.GetTempPath(), "coracle-ds-tests", name + "-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        return dir;
    }
}
