namespace Coracle.Plugins;

/// <summary>
/// Optional capability of an <see cref="IDatastore"/> plugin whose datastore is a cluster with one member per server
/// (embedded etcd). The host calls it when a server joins another (<c>coracle server --server URL --token T</c>): the
/// joining server sends <see cref="PeerUrls"/> through the join API, the serving server calls <see cref="AddMemberAsync"/>
/// on its running datastore, and the values it returns reach the joining server's plugin as
/// <see cref="NodeSettings.DatastoreJoin"/> before its <see cref="IDatastore.Configure"/> runs. The host keeps them in the
/// data dir, so a restart of a joined server sees the same values (its datastore then has data and ignores them).
/// </summary>
public interface IDatastoreCluster
{
    /// <summary>The URLs this server's member listens on for its peers (for example <c>https://NODE-IP:2380</c>).</summary>
    /// <param name="node">The node-wide settings.</param>
    /// <param name="options">The plugin's <c>[plugins.NAME]</c> options.</param>
    IReadOnlyList<string> PeerUrls(NodeSettings node, IReadOnlyDictionary<string, string> options);

    /// <summary>
    /// On a server whose datastore runs: adds a member named <paramref name="name"/> (a learner first where the datastore
    /// supports it; the joining member promotes itself once it has caught up) and returns what the joining server's plugin
    /// needs to start as that member (for etcd: the initial cluster). Adding a name that is already a member with the same
    /// peer URLs returns the same values again (a joining server that died mid-join retries). Throws
    /// <see cref="InvalidOperationException"/> with one line when the member cannot be added (no quorum, name taken with
    /// other peer URLs).
    /// </summary>
    /// <param name="node">The node-wide settings of the serving server.</param>
    /// <param name="options">The plugin's <c>[plugins.NAME]</c> options.</param>
    /// <param name="name">The joining server's node name.</param>
    /// <param name="peerUrls">The joining server's <see cref="PeerUrls"/>.</param>
    /// <param name="cancellationToken">Stops the call.</param>
    Task<IReadOnlyDictionary<string, string>> AddMemberAsync(NodeSettings node, IReadOnlyDictionary<string, string> options,
        string name, IReadOnlyList<string> peerUrls, CancellationToken cancellationToken);

    /// <summary>Removes the member named <paramref name="name"/>; false when there is no such member.</summary>
    /// <param name="node">The node-wide settings of the server doing it.</param>
    /// <param name="options">The plugin's <c>[plugins.NAME]</c> options.</param>
    /// <param name="name">The member's name (its server's node name).</param>
    /// <param name="cancellationToken">Stops the call.</param>
    Task<bool> RemoveMemberAsync(NodeSettings node, IReadOnlyDictionary<string, string> options, string name, CancellationToken cancellationToken);

    /// <summary>The members as the running datastore reports them, and whether it has quorum.</summary>
    /// <param name="node">The node-wide settings.</param>
    /// <param name="options">The plugin's <c>[plugins.NAME]</c> options.</param>
    /// <param name="cancellationToken">Stops the call.</param>
    Task<DatastoreMembers> MembersAsync(NodeSettings node, IReadOnlyDictionary<string, string> options, CancellationToken cancellationToken);
}

/// <summary>The members of a clustered datastore.</summary>
/// <param name="Members">Every member.</param>
/// <param name="HasQuorum">False when a majority of the voting members cannot be reached (writes fail).</param>
public sealed record DatastoreMembers(IReadOnlyList<DatastoreMember> Members, bool HasQuorum);

/// <summary>One member of a clustered datastore.</summary>
/// <param name="Name">The member's name (its server's node name).</param>
/// <param name="PeerUrls">Where its peers reach it.</param>
/// <param name="ClientUrls">Where clients reach it.</param>
/// <param name="IsLearner">True while it is a learner (not voting).</param>
/// <param name="Healthy">True when it answered a health check just now.</param>
public sealed record DatastoreMember(string Name, IReadOnlyList<string> PeerUrls, IReadOnlyList<string> ClientUrls, bool IsLearner, bool Healthy);
