using Coracle.Core.Configuration;
using Coracle.Core.Hosting;
using Coracle.Core.Snapshots;

namespace Coracle.Core.Update;

/// <summary>
/// The snapshot step of an update on a server: the same snapshot <c>coracle etcd-snapshot save --name pre-update</c>
/// takes (the running datastore's <c>Maintenance.Snapshot</c>, kept in the snapshot folder with its sidecar), so a
/// rollback that needs the data as it was before the update has it. A datastore without snapshots (PostgreSQL, MySQL)
/// is said, not hidden; a snapshot that fails stops the update before the switch.
/// </summary>
internal sealed class DatastorePreUpdateSnapshot(StartPlan plan, CoracleConfig config) : IPreUpdateSnapshot
{
    /// <summary>The name pre-update snapshots carry (<c>pre-update-NODE-UNIXTIME</c>).</summary>
    public const string Name = "pre-update";

    public async Task<string> TakeAsync(CancellationToken cancellationToken)
    {
        var store = new SnapshotStore(config.SnapshotDir, config.NodeName, TimeProvider.System);
        try
        {
            return await ServerSnapshots.SaveAsync(plan, config, store, Name, cancellationToken) is { } record
                ? $"saved {record.Name}: {record.Size} bytes, revision {record.Revision}, in {record.Location}"
                : $"skipped: the {ServerSnapshots.Datastore(plan).Name} datastore has no snapshots (back it up with its own tools before updating)";
        }
        catch (Exception e) when (e is SnapshotException or IOException or UnauthorizedAccessException)
        {
            throw new UpdateException("update apply: snapshot", $"the datastore snapshot failed ({e.Message})",
                "the running slot is untouched; check 'coracle etcd-snapshot save' on this node and apply again", ExitCodes.RuntimeFailure, e);
        }
    }
}
