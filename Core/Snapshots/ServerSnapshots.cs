using Coracle.Core.Configuration;
using Coracle.Core.Hosting;
using Coracle.Core.Logging;
using Coracle.Core.Supervision;
using Coracle.Plugins;
using Microsoft.Extensions.Logging;

namespace Coracle.Core.Snapshots;

/// <summary>
/// The server's two snapshot steps: <c>cluster reset</c> (<c>--cluster-reset [--cluster-reset-restore-path FILE]</c>,
/// before the datastore runs) and the supervised snapshot scheduler. Core knows no datastore: both go through the
/// selected datastore plugin's <see cref="IDatastoreSnapshots"/>.
/// </summary>
internal static class ServerSnapshots
{
    /// <summary>The supervised component that takes scheduled snapshots.</summary>
    public const string ComponentName = "etcd-snapshot";

    /// <summary>The selected datastore plugin's name and its snapshot capability (null when it has none).</summary>
    public static (string Name, IDatastoreSnapshots? Snapshots) Datastore(StartPlan plan)
    {
        ArgumentNullException.ThrowIfNull(plan);
        if (plan.Selection?.Single(ExtensionPoints.Datastore) is not { } entry)
        {
            return ("none", null);
        }

        return (entry.Name, entry.Metadata.Implemented ? plan.Instance(entry) as IDatastoreSnapshots : null);
    }

    /// <summary>
    /// Saves a snapshot of this node's running datastore into <paramref name="store"/> as <c>NAME-NODE-UNIXTIME</c>: what
    /// <c>coracle etcd-snapshot save</c>, the schedule and an update's pre-update step all do. Null when the selected
    /// datastore has no snapshots (<paramref name="datastore"/> names it). Throws <see cref="SnapshotException"/> or an I/O
    /// exception when the datastore does not answer or the file cannot be written.
    /// </summary>
    public static async Task<SnapshotRecord?> SaveAsync(StartPlan plan, CoracleConfig config, SnapshotStore store, string name, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(store);
        var (datastore, snapshots) = Datastore(plan);
        if (snapshots is null)
        {
            return null;
        }

        return await store.SaveAsync(snapshots.SnapshotEndpoint(config.ToNodeSettings(), config.OptionsOf(datastore)), name, datastore, cancellationToken);
    }

    /// <summary>
    /// Step <c>cluster reset</c>: with a restore path, the plugin verifies the snapshot and only then moves the old data
    /// aside and restores it; a missing, corrupt, truncated or foreign file is a <see cref="ConfigException"/> (exit 2)
    /// and nothing changes. Without one, the plugin's reset (the SQL datastore: nothing to do). Off without --cluster-reset.
    /// </summary>
    public static void ClusterReset(StartPlan plan, CoracleConfig config, ILogger log, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (!config.ClusterReset)
        {
            return;
        }

        var (name, snapshots) = Datastore(plan);
        var file = config.ClusterResetRestorePath;
        var where = $"--cluster-reset-restore-path {file}";
        if (file.Length == 0)
        {
            log.ClusterReset(snapshots?.Reset(config.ToNodeSettings(), config.OptionsOf(name))
                ?? $"the {name} datastore has nothing to reset; the server starts on its current data");
            return;
        }

        if (snapshots is null)
        {
            throw new ConfigException(where, $"the {name} datastore cannot restore snapshots; restore its data with its own tools and start without --cluster-reset-restore-path");
        }

        if (!File.Exists(file))
        {
            throw new ConfigException(where, "no such file; give a snapshot file ('coracle etcd-snapshot ls' lists the node's snapshots)");
        }

        try
        {
            var restored = snapshots.Restore(config.ToNodeSettings(), config.OptionsOf(name), Path.GetFullPath(file), now);
            if (restored.AlreadyRestored)
            {
                log.ClusterAlreadyRestored(file, restored.Sha256, "the datastore's '.restored.json' note");
            }
            else
            {
                log.ClusterRestored(file, restored.Revision, restored.Sha256, restored.MovedAside.Length > 0 ? restored.MovedAside : "(there was no old data)");
            }
        }
        catch (InvalidDataException e)
        {
            throw new ConfigException(where, $"{e.Message}; give a snapshot saved by 'coracle etcd-snapshot save' or 'etcdctl snapshot save' from this datastore (the data was not changed)");
        }
        catch (NotSupportedException e)
        {
            throw new ConfigException(where, $"{e.Message} (the data was not changed)");
        }
    }

    /// <summary>Step <c>snapshots</c>: registers the scheduler unless snapshots are off or the datastore has none.</summary>
    public static void RegisterScheduler(Supervisor supervisor, StartPlan plan, CoracleConfig config, DatastoreEndpoint? endpoint, ILoggerFactory loggers, ILogger log)
    {
        ArgumentNullException.ThrowIfNull(supervisor);
        ArgumentNullException.ThrowIfNull(config);
        var (name, snapshots) = Datastore(plan);
        if (config.EtcdDisableSnapshots)
        {
            log.SnapshotsDisabled();
            return;
        }

        if (snapshots is null || endpoint is null)
        {
            log.SnapshotsUnsupported(name);
            return;
        }

        var store = new SnapshotStore(config.SnapshotDir, config.NodeName, TimeProvider.System);
        var scheduler = new SnapshotScheduler(
            SnapshotSchedule.Parse(config.EtcdSnapshotScheduleCron),
            config.EtcdSnapshotRetention,
            store,
            async ct => (await SaveAsync(plan, config, store, SnapshotStore.ScheduledName, ct))!,
            TimeProvider.System,
            loggers.CreateLogger(ComponentName));
        supervisor.Add(new InProcessComponent
        {
            Name = ComponentName,
            DependsOn = [endpoint.ComponentName],
            Readiness = new CustomProbe(_ => Task.FromResult(true)),
            Run = scheduler.RunAsync,
            Restart = config.Restart,
            StopTimeout = config.StopTimeout,
        });
    }
}
