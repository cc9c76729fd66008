using Coracle.Plugins.Datastore.Sql.Mvcc;
using Coracle.Plugins.Datastore.Sql.Protos;
using Grpc.Core;

namespace Coracle.Plugins.Datastore.Sql.Api;

/// <summary>etcdserverpb.KV.</summary>
internal sealed class KvService(KvEngine kv) : KV.KVBase
{
    public override Task<RangeResponse> Range(RangeRequest request, ServerCallContext context) =>
        Task.FromResult(kv.Range(request));

    public override Task<PutResponse> Put(PutRequest request, ServerCallContext context) => kv.PutAsync(request);

    public override Task<DeleteRangeResponse> DeleteRange(DeleteRangeRequest request, ServerCallContext context) =>
        kv.DeleteRangeAsync(request);

    public override Task<TxnResponse> Txn(TxnRequest request, ServerCallContext context) => kv.TxnAsync(request);

    public override Task<CompactionResponse> Compact(CompactionRequest request, ServerCallContext context) =>
        kv.CompactAsync(request, context.CancellationToken);
}

/// <summary>etcdserverpb.Watch.</summary>
internal sealed class WatchService(WatchHub hub, ServerLifetime lifetime) : Watch.WatchBase
{
    public override async Task Watch(IAsyncStreamReader<WatchRequest> requestStream, IServerStreamWriter<WatchResponse> responseStream, ServerCallContext context)
    {
        using var stream = hub.OpenStream();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, lifetime.Stopping);

        // A stream that fell too far behind stops taking requests at once; the response in flight (if the client
        // does not read, it waits for flow control) is the last before the Unavailable status.
        using var requests = CancellationTokenSource.CreateLinkedTokenSource(cts.Token, stream.Aborted);
        var send = stream.RunAsync(responseStream, cts.Token);
        try
        {
            while (await requestStream.MoveNext(requests.Token))
            {
                stream.Handle(requestStream.Current);
            }

            // The client closed its side; keep sending until it goes away, like etcd.
            await Task.WhenAny(send, Task.Delay(Timeout.Infinite, requests.Token));
        }
        catch (OperationCanceledException) when (requests.IsCancellationRequested)
        {
        }
        finally
        {
            if (!stream.Overflowed)
            {
                await cts.CancelAsync();
            }

            try
            {
                await send;
            }
            catch (OperationCanceledException)
            {
            }
            catch (InvalidOperationException)
            {
            }
        }

        if (stream.Overflowed && !cts.IsCancellationRequested)
        {
            throw new RpcException(new Status(StatusCode.Unavailable, WatchHub.SlowStreamMessage));
        }
    }
}

/// <summary>etcdserverpb.Lease.</summary>
internal sealed class LeaseService(Lessor lessor, ServerLifetime lifetime) : Lease.LeaseBase
{
    public override Task<LeaseGrantResponse> LeaseGrant(LeaseGrantRequest request, ServerCallContext context) =>
        lessor.GrantAsync(request);

    public override Task<LeaseRevokeResponse> LeaseRevoke(LeaseRevokeRequest request, ServerCallContext context) =>
        lessor.RevokeAsync(request.ID);

    public override Task<LeaseTimeToLiveResponse> LeaseTimeToLive(LeaseTimeToLiveRequest request, ServerCallContext context) =>
        Task.FromResult(lessor.TimeToLive(request));

    public override Task<LeaseLeasesResponse> LeaseLeases(LeaseLeasesRequest request, ServerCallContext context) =>
        Task.FromResult(lessor.Leases());

    public override async Task LeaseKeepAlive(IAsyncStreamReader<LeaseKeepAliveRequest> requestStream, IServerStreamWriter<LeaseKeepAliveResponse> responseStream, ServerCallContext context)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, lifetime.Stopping);
        try
        {
            while (await requestStream.MoveNext(cts.Token))
            {
                var response = await lessor.KeepAliveAsync(requestStream.Current.ID);
                await responseStream.WriteAsync(response, cts.Token);
            }
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
        }
    }
}

/// <summary>etcdserverpb.Cluster: a single member, this server.</summary>
internal sealed class ClusterService(KvEngine kv, EtcdMemberIdentity identity, ServerLifetime lifetime) : Cluster.ClusterBase
{
    public override Task<MemberListResponse> MemberList(MemberListRequest request, ServerCallContext context)
    {
        var response = new MemberListResponse { Header = kv.Header(kv.Log.Revision) };
        var member = new Member { ID = identity.MemberId, Name = identity.Name };
        member.ClientURLs.AddRange(lifetime.ClientUrls);
        response.Members.Add(member);
        return Task.FromResult(response);
    }

    public override Task<MemberAddResponse> MemberAdd(MemberAddRequest request, ServerCallContext context) =>
        throw EtcdErrors.NotSupported("adding members").ToRpc();

    public override Task<MemberRemoveResponse> MemberRemove(MemberRemoveRequest request, ServerCallContext context) =>
        throw EtcdErrors.NotSupported("removing members").ToRpc();

    public override Task<MemberUpdateResponse> MemberUpdate(MemberUpdateRequest request, ServerCallContext context) =>
        throw EtcdErrors.NotSupported("updating members").ToRpc();

    public override Task<MemberPromoteResponse> MemberPromote(MemberPromoteRequest request, ServerCallContext context) =>
        throw EtcdErrors.NotSupported("promoting members").ToRpc();
}

/// <summary>Shared state of the running server that services need.</summary>
internal sealed class ServerLifetime
{
    public CancellationToken Stopping { get; init; }

    public IReadOnlyList<string> ClientUrls { get; init; } = [];

    public int MaxRequestBytes { get; init; }
}
