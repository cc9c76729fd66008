namespace Coracle.Plugins;

/// <summary>
/// Optional capability of an <see cref="IDatastore"/> plugin whose data lives in files of this node (the embedded SQLite):
/// it hands its keys to another datastore, so a server can move to that datastore and keep its cluster (K3s: restarting a
/// server that ran SQLite with <c>--cluster-init</c>). The host asks the installed plugins with this capability, selected or
/// not, only when the selected datastore implements <see cref="IDatastoreImport"/> and holds no data yet, and never on a
/// server that joins another. Only <see cref="RetireExported"/> changes the data: the other members only read it.
/// </summary>
public interface IDatastoreExport
{
    /// <summary>
    /// The file holding this node's data of this datastore that another datastore can take over, or null when there is
    /// none (for the SQL datastore: the default SQLite file <c>DATA/server/db/state.db</c> when it exists; never a
    /// PostgreSQL or MySQL database, which other servers may share). Reads nothing but the file's presence.
    /// </summary>
    /// <param name="node">The node-wide settings.</param>
    /// <param name="options">The plugin's <c>[plugins.NAME]</c> options.</param>
    string? ExportSource(NodeSettings node, IReadOnlyDictionary<string, string> options);

    /// <summary>
    /// Checks that the data of <see cref="ExportSource"/> can be read, changing nothing, and says what it holds. Throws
    /// <see cref="InvalidDataException"/> with one line naming the file when it is unreadable, corrupt or not this
    /// datastore's, and <see cref="FileNotFoundException"/> when there is no data.
    /// </summary>
    /// <param name="node">The node-wide settings.</param>
    /// <param name="options">The plugin's <c>[plugins.NAME]</c> options.</param>
    DatastoreExportInfo VerifyExport(NodeSettings node, IReadOnlyDictionary<string, string> options);

    /// <summary>
    /// Every live key of the data (its newest value; deleted keys are absent), in the order of their mod revisions, read
    /// from one consistent view without changing the data. Throws as <see cref="VerifyExport"/> does.
    /// </summary>
    /// <param name="node">The node-wide settings.</param>
    /// <param name="options">The plugin's <c>[plugins.NAME]</c> options.</param>
    /// <param name="cancellationToken">Stops the enumeration.</param>
    IAsyncEnumerable<DatastoreKeyValue> ExportAsync(NodeSettings node, IReadOnlyDictionary<string, string> options, CancellationToken cancellationToken);

    /// <summary>
    /// Called once every key was copied: moves the data aside (never deleting it), so that <see cref="ExportSource"/> is
    /// null from then on. Returns where the data now is.
    /// </summary>
    /// <param name="node">The node-wide settings.</param>
    /// <param name="options">The plugin's <c>[plugins.NAME]</c> options.</param>
    /// <param name="now">The time, for a unique name when an earlier retired copy is in the way.</param>
    string RetireExported(NodeSettings node, IReadOnlyDictionary<string, string> options, DateTimeOffset now);
}

/// <summary>What <see cref="IDatastoreExport.VerifyExport"/> found.</summary>
/// <param name="Source">The file the data is in.</param>
/// <param name="Kind">What the data is, for messages (for example <c>SQLite</c>).</param>
/// <param name="Revision">The datastore revision the data is at.</param>
/// <param name="Keys">The live keys it holds.</param>
public sealed record DatastoreExportInfo(string Source, string Kind, long Revision, long Keys);

/// <summary>One live key as a datastore exports it (<see cref="IDatastoreExport.ExportAsync"/>).</summary>
/// <param name="Key">The key.</param>
/// <param name="Value">Its newest value.</param>
/// <param name="ModRevision">The revision that wrote the value.</param>
/// <param name="CreateRevision">The revision that created the key.</param>
/// <param name="Version">How many times the key was written since it was created.</param>
public sealed record DatastoreKeyValue(byte[] Key, byte[] Value, long ModRevision, long CreateRevision, long Version)
{
    /// <summary>The id of the lease the key is attached to in the exporting datastore; 0 for none.</summary>
    public long Lease { get; init; }

    /// <summary>That lease's time to live in seconds; 0 when the key has no lease or the lease is gone.</summary>
    public long LeaseTtlSeconds { get; init; }
}

/// <summary>
/// Optional capability of an <see cref="IDatastore"/> plugin: it takes over another datastore's keys
/// (<see cref="IDatastoreExport"/>) into the datastore it runs on this node. The host imports only into a datastore that
/// <see cref="CanImport"/> says is empty, or that holds only an earlier import the host knows was interrupted, and before
/// kube-apiserver starts, so no other client has written to it.
/// </summary>
public interface IDatastoreImport
{
    /// <summary>
    /// True when this node's own datastore holds no data yet (for etcd: embedded, and no <c>DATA/server/db/etcd/member</c>
    /// before its first start); false for a datastore this node does not own (external endpoints). Reads nothing but files'
    /// presence; call it before the datastore runs.
    /// </summary>
    /// <param name="node">The node-wide settings.</param>
    /// <param name="options">The plugin's <c>[plugins.NAME]</c> options.</param>
    bool CanImport(NodeSettings node, IReadOnlyDictionary<string, string> options);

    /// <summary>
    /// Makes the running datastore hold exactly <paramref name="keys"/>: every key it holds is deleted first (what an
    /// interrupted import left), then the keys are written in the order given, in batches, so a key's mod revision keeps
    /// its order among the others. A key with a lease gets a new lease of the same time to live (one per exporting lease),
    /// so it still expires; the lease ids differ. Called once the datastore's component is ready. Throws
    /// <see cref="InvalidOperationException"/> with one line when the datastore refuses a write.
    /// </summary>
    /// <param name="node">The node-wide settings.</param>
    /// <param name="options">The plugin's <c>[plugins.NAME]</c> options.</param>
    /// <param name="keys">The keys, in the order of their mod revisions.</param>
    /// <param name="cancellationToken">Stops the import; what was written stays until the next import replaces it.</param>
    Task<DatastoreImportResult> ImportAsync(NodeSettings node, IReadOnlyDictionary<string, string> options, IAsyncEnumerable<DatastoreKeyValue> keys, CancellationToken cancellationToken);
}

/// <summary>What <see cref="IDatastoreImport.ImportAsync"/> did.</summary>
/// <param name="Keys">The keys written.</param>
/// <param name="Leases">The leases granted for keys that had one.</param>
/// <param name="Revision">The importing datastore's revision after the last write.</param>
/// <param name="Target">What the keys went into, for messages (for example <c>embedded etcd</c>).</param>
public sealed record DatastoreImportResult(long Keys, long Leases, long Revision, string Target);
