using Coracle.Plugins.Datastore.Sql.Protos;
using Google.Protobuf;
using Grpc.Core;

namespace Coracle.Plugins.Datastore.Etcd;

/// <summary>
/// Another datastore's keys into the embedded etcd (<see cref="IDatastoreImport"/>), through its client URL with the
/// datastore-client certificate: the whole keyspace is deleted first (what an interrupted import left; the host imports
/// only before kube-apiserver ever wrote), then the keys go in, in the order given, as transactions of puts of at most
/// <see cref="MaxOps"/> operations and <see cref="MaxBatchBytes"/> bytes, so a key's mod revision keeps its order among
/// the others. A key with a lease gets a new etcd lease of the exporting lease's time to live, granted once per exporting
/// lease, so events and apiserver leases still expire; a key whose lease was already gone is written without one.
/// </summary>
internal static class EtcdImport
{
    /// <summary>Operations per transaction: etcd's default <c>--max-txn-ops</c>.</summary>
    public const int MaxOps = 128;

    /// <summary>Bytes of keys and values per transaction, well below etcd's 1.5 MiB request limit.</summary>
    public const int MaxBatchBytes = 1 << 20;

    /// <summary>True for the embedded etcd before its first start: no <c>DATA/server/db/etcd/member</c>.</summary>
    public static bool CanImport(EtcdLayout layout) =>
        layout.Embedded && !Directory.Exists(Path.Combine(layout.DataDir, "member"));

    /// <summary>Replaces every key of the running etcd with <paramref name="keys"/>.</summary>
    public static async Task<DatastoreImportResult> ImportAsync(EtcdLayout layout, IAsyncEnumerable<DatastoreKeyValue> keys, CancellationToken cancellationToken)
    {
        if (!layout.Embedded)
        {
            throw new InvalidOperationException($"imports go into the embedded etcd only, not into the external etcd at {string.Join(",", layout.Servers)}");
        }

        using var client = new EtcdClient(layout.Servers, layout.ClientTls) { CallTimeout = TimeSpan.FromSeconds(30) };
        var all = ByteString.CopyFrom(0);
        await CallAsync(client, "deleting what an earlier import left",
            (c, o) => new KV.KVClient(c).DeleteRangeAsync(new DeleteRangeRequest { Key = all, RangeEnd = all }, o).ResponseAsync, cancellationToken);

        var leases = new Dictionary<long, long>();
        var batch = new TxnRequest();
        var bytes = 0;
        var count = 0L;
        var revision = 0L;
        var first = "";
        await foreach (var kv in keys.WithCancellation(cancellationToken))
        {
            var lease = 0L;
            if (kv.Lease != 0 && kv.LeaseTtlSeconds > 0 && !leases.TryGetValue(kv.Lease, out lease))
            {
                var ttl = kv.LeaseTtlSeconds;
                var granted = await CallAsync(client, $"granting a lease of {ttl} s",
                    (c, o) => new Lease.LeaseClient(c).LeaseGrantAsync(new LeaseGrantRequest { TTL = ttl }, o).ResponseAsync, cancellationToken);
                lease = granted.ID;
                leases[kv.Lease] = lease;
            }

            var size = kv.Key.Length + kv.Value.Length + 16;
            if (batch.Success.Count > 0 && (batch.Success.Count >= MaxOps || bytes + size > MaxBatchBytes))
            {
                revision = await CommitAsync(client, batch, first, cancellationToken);
                batch = new TxnRequest();
                bytes = 0;
            }

            if (batch.Success.Count == 0)
            {
                first = System.Text.Encoding.UTF8.GetString(kv.Key);
            }

            batch.Success.Add(new RequestOp { RequestPut = new PutRequest { Key = ByteString.CopyFrom(kv.Key), Value = ByteString.CopyFrom(kv.Value), Lease = lease } });
            bytes += size;
            count++;
        }

        if (batch.Success.Count > 0)
        {
            revision = await CommitAsync(client, batch, first, cancellationToken);
        }

        return new DatastoreImportResult(count, leases.Count, revision, "embedded etcd");
    }

    private static async Task<long> CommitAsync(EtcdClient client, TxnRequest batch, string first, CancellationToken cancellationToken)
    {
        var response = await CallAsync(client, $"writing {batch.Success.Count} keys from {first}",
            (c, o) => new KV.KVClient(c).TxnAsync(batch, o).ResponseAsync, cancellationToken);
        return response.Header.Revision;
    }

    private static async Task<T> CallAsync<T>(EtcdClient client, string what, Func<Grpc.Net.Client.GrpcChannel, CallOptions, Task<T>> call, CancellationToken cancellationToken)
    {
        try
        {
            return await client.CallAsync(call, cancellationToken);
        }
        catch (RpcException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new InvalidOperationException($"etcd at {client.Endpoints[0]} refused {what}: {e.Status.Detail}", e);
        }
    }
}
