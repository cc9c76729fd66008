using System.Globalization;
using Coracle.Plugins.Datastore.Sql.Protos;
using Grpc.Core;

namespace Coracle.Plugins.Datastore.Etcd;

/// <summary><see cref="IDatastoreCluster"/> over etcd's Cluster API on the running member of this server.</summary>
internal static class EtcdMembers
{
    /// <summary>Adds <paramref name="name"/> as a learner (or finds it already added) and returns its <see cref="NodeSettings.DatastoreJoin"/>.</summary>
    public static async Task<IReadOnlyDictionary<string, string>> AddAsync(EtcdLayout layout, string name, IReadOnlyList<string> peerUrls, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(peerUrls);
        if (peerUrls.Count == 0)
        {
            throw new InvalidOperationException($"cannot add etcd member {name}: it sent no peer URLs");
        }

        using var client = Client(layout);
        try
        {
            var list = await client.MemberListAsync(cancellationToken);
            var byName = list.Members.FirstOrDefault(m => m.Name == name);
            if (byName is not null && !SameUrls(byName.PeerURLs, peerUrls))
            {
                throw new InvalidOperationException(
                    $"cannot add etcd member {name} with peer URLs {string.Join(",", peerUrls)}: a member of that name has {string.Join(",", byName.PeerURLs)}; remove it first ('coracle etcd member remove {name}') or give the server another name");
            }

            var existing = byName ?? list.Members.FirstOrDefault(m => SameUrls(m.PeerURLs, peerUrls));
            Member added;
            IEnumerable<Member> members;
            if (existing is not null)
            {
                added = existing;
                members = list.Members;
            }
            else
            {
                var response = await AddLearnerAsync(client, peerUrls, cancellationToken);
                added = response.Member;
                members = response.Members;
            }

            var initial = members
                .Select(m => m.ID == added.ID ? (Name: name, Urls: (IEnumerable<string>)peerUrls) : (m.Name, m.PeerURLs))
                .Where(m => m.Name.Length > 0)
                .SelectMany(m => m.Urls.Select(u => $"{m.Name}={u}"));
            var endpoints = members.Where(m => !m.IsLearner && m.ID != added.ID).SelectMany(m => m.ClientURLs);
            return new Dictionary<string, string>(StringComparer.Ordinal)
            {
                [JoinKeys.InitialCluster] = string.Join(",", initial),
                [JoinKeys.InitialClusterState] = "existing",
                [JoinKeys.Endpoints] = string.Join(",", endpoints),
                [JoinKeys.MemberId] = added.ID.ToString("x", CultureInfo.InvariantCulture),
            };
        }
        catch (RpcException e)
        {
            throw new InvalidOperationException($"cannot add etcd member {name}: {Describe(e)}", e);
        }
    }

    /// <summary>
    /// MemberAdd as a learner. etcd refuses a member change until every voting member has been connected for 5 s
    /// (<c>etcdserver: unhealthy cluster</c>, its strict reconfiguration check), as right after a promotion: retried for 30 s.
    /// </summary>
    private static Task<MemberAddResponse> AddLearnerAsync(EtcdClient client, IEnumerable<string> peerUrls, CancellationToken cancellationToken) =>
        RetryReconfigurationAsync(() => client.MemberAddAsync(peerUrls, learner: true, cancellationToken), cancellationToken);

    /// <summary>A membership change, retried for 30 s while etcd's strict reconfiguration check refuses it as premature.</summary>
    private static async Task<T> RetryReconfigurationAsync<T>(Func<Task<T>> change, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            try
            {
                return await change();
            }
            catch (RpcException e) when ((e.Status.Detail.Contains("unhealthy cluster", StringComparison.Ordinal)
                                          || e.Status.Detail.Contains("not enough started members", StringComparison.Ordinal)) && DateTime.UtcNow < deadline)
            {
                await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken);
            }
        }
    }

    /// <summary>Removes the member named <paramref name="name"/>; false when there is none.</summary>
    public static async Task<bool> RemoveAsync(EtcdLayout layout, string name, CancellationToken cancellationToken)
    {
        using var client = Client(layout);
        try
        {
            var list = await client.MemberListAsync(cancellationToken);
            var member = list.Members.FirstOrDefault(m => m.Name == name);
            if (member is null)
            {
                return false;
            }

            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (true)
            {
                try
                {
                    await RetryReconfigurationAsync(() => client.MemberRemoveAsync(member.ID, cancellationToken), cancellationToken);
                    return true;
                }
                catch (RpcException e) when ((e.StatusCode == StatusCode.DeadlineExceeded || e.Status.Detail.Contains("member not found", StringComparison.Ordinal))
                                             && DateTime.UtcNow < deadline)
                {
                    // A slow commit (a busy disk, a loaded board) outlives the call's deadline, and the removal may still be
                    // applied: look again before asking again, so a removal that went through is not reported as failed.
                    var again = await client.MemberListAsync(cancellationToken);
                    if (again.Members.All(m => m.ID != member.ID))
                    {
                        return true;
                    }
                }
            }
        }
        catch (RpcException e)
        {
            throw new InvalidOperationException($"cannot remove etcd member {name}: {Describe(e)}", e);
        }
    }

    /// <summary>Every member with its health (<c>/health</c> on its first client URL) and whether the cluster has quorum.</summary>
    public static async Task<DatastoreMembers> ListAsync(EtcdLayout layout, CancellationToken cancellationToken)
    {
        using var client = Client(layout);
        MemberListResponse list;
        try
        {
            list = await client.MemberListAsync(cancellationToken);
        }
        catch (RpcException e)
        {
            throw new InvalidOperationException($"cannot list etcd members: {Describe(e)}", e);
        }

        var checks = list.Members.Select(async m => m.ClientURLs.Count > 0 && await client.HealthAsync(m.ClientURLs[0], cancellationToken)).ToList();
        var healthy = await Task.WhenAll(checks);
        var members = list.Members.Select((m, i) => new DatastoreMember(m.Name, [.. m.PeerURLs], [.. m.ClientURLs], m.IsLearner, healthy[i])).ToList();

        var quorum = false;
        foreach (var endpoint in client.Endpoints)
        {
            try
            {
                await client.LinearizableReadAsync(endpoint, cancellationToken);
                quorum = true;
                break;
            }
            catch (RpcException) when (!cancellationToken.IsCancellationRequested)
            {
            }
        }

        return new DatastoreMembers(members, quorum);
    }

    private static EtcdClient Client(EtcdLayout layout) => new(layout.Servers, layout.ClientTls) { CallTimeout = TimeSpan.FromSeconds(5) };

    private static bool SameUrls(IEnumerable<string> a, IEnumerable<string> b) =>
        a.Order(StringComparer.Ordinal).SequenceEqual(b.Order(StringComparer.Ordinal), StringComparer.Ordinal);

    private static string Describe(RpcException e) => e.StatusCode switch
    {
        StatusCode.Unavailable or StatusCode.DeadlineExceeded => $"etcd does not answer or has no quorum ({e.Status.Detail}); check 'coracle etcd member list' and that a majority of the members run",
        _ => e.Status.Detail,
    };
}
