namespace Coracle.Plugins;

/// <summary>
/// Optional capability of an <see cref="IDatastore"/> plugin: snapshots and <c>coracle server --cluster-reset</c>.
/// Snapshots are taken by the host through the etcd <c>Maintenance.Snapshot</c> RPC of the running datastore, whose
/// stream must be etcd's framing (the data followed by the 32-byte SHA-256 of the data, the whole a multiple of 512
/// bytes plus 32), so <c>etcdctl snapshot save</c> saves the same files. Restoring is the plugin's: only it knows what
/// its files are. A datastore plugin without this interface has no snapshots.
/// </summary>
public interface IDatastoreSnapshots
{
    /// <summary>Where the running datastore of this node answers <c>Maintenance.Snapshot</c> (the endpoint kube-apiserver is given).</summary>
    /// <param name="node">The node-wide settings.</param>
    /// <param name="options">The plugin's <c>[plugins.NAME]</c> options.</param>
    DatastoreEndpoint SnapshotEndpoint(NodeSettings node, IReadOnlyDictionary<string, string> options);

    /// <summary>
    /// Checks that <paramref name="file"/> is a whole, uncorrupted snapshot this datastore can restore, changing nothing.
    /// Throws <see cref="InvalidDataException"/> with one line saying what is wrong (truncated, corrupt, foreign) and
    /// <see cref="NotSupportedException"/> when this datastore cannot restore snapshots at all.
    /// </summary>
    /// <param name="node">The node-wide settings.</param>
    /// <param name="options">The plugin's <c>[plugins.NAME]</c> options.</param>
    /// <param name="file">The snapshot file.</param>
    void VerifySnapshot(NodeSettings node, IReadOnlyDictionary<string, string> options, string file);

    /// <summary>
    /// Verifies <paramref name="file"/> as <see cref="VerifySnapshot"/> does, then moves the current data aside (never
    /// deleting it) and puts the snapshot's data in its place, so the datastore starts from it. Called before the
    /// datastore runs. When the current data was itself restored from a snapshot with the same content (a restore flag
    /// left in place), nothing is changed and <see cref="DatastoreRestore.AlreadyRestored"/> is true. Throws as
    /// <see cref="VerifySnapshot"/> does; the data is untouched then.
    /// </summary>
    /// <param name="node">The node-wide settings.</param>
    /// <param name="options">The plugin's <c>[plugins.NAME]</c> options.</param>
    /// <param name="file">The snapshot file.</param>
    /// <param name="now">The time, for the name of the folder the old data moves to.</param>
    DatastoreRestore Restore(NodeSettings node, IReadOnlyDictionary<string, string> options, string file, DateTimeOffset now);

    /// <summary>
    /// <c>--cluster-reset</c> without a snapshot: makes the datastore a one-member cluster of its current data, before
    /// it runs. Returns one line saying what was done (for example, that a SQL datastore has nothing to reset).
    /// </summary>
    /// <param name="node">The node-wide settings.</param>
    /// <param name="options">The plugin's <c>[plugins.NAME]</c> options.</param>
    string Reset(NodeSettings node, IReadOnlyDictionary<string, string> options);
}

/// <summary>What <see cref="IDatastoreSnapshots.Restore"/> did.</summary>
/// <param name="MovedAside">Where the previous data now is; empty when there was none or nothing was changed.</param>
/// <param name="Revision">The datastore revision the snapshot holds.</param>
/// <param name="Sha256">The hex SHA-256 of the restored data, as the snapshot's trailer states it.</param>
/// <param name="AlreadyRestored">True when the current data already came from this snapshot and nothing was changed.</param>
public sealed record DatastoreRestore(string MovedAside, long Revision, string Sha256, bool AlreadyRestored);
