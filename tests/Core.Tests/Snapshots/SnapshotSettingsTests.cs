using Coracle.Core.Configuration;
using Coracle.Core.Snapshots;
using Coracle.Core.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace Coracle.Core.Tests.Snapshots;

/// <summary>The snapshot and cluster-reset settings: K3s's defaults, and every bad value reported with its flag and the fix.</summary>
public sealed class SnapshotSettingsTests : IDisposable
{
    private readonly TempDir _dir = new("snapset");

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Load_Defaults_K3sScheduleRetentionAndFolder()
    {
        var config = TestConfig.Server(_dir.Path);

        Assert.Equal("0 */12 * * *", config.EtcdSnapshotScheduleCron);
        Assert.Equal(5, config.EtcdSnapshotRetention);
        Assert.Equal(Path.Combine(_dir.Path, "server", "db", "snapshots"), config.SnapshotDir);
        Assert.False(config.EtcdDisableSnapshots);
        Assert.False(config.ClusterReset);
        Assert.Equal("/backups", TestConfig.Server(_dir.Path, (Settings.EtcdSnapshotDir, "/backups")).SnapshotDir);
    }

    [Fact]
    public void Load_BadValues_EveryErrorWithItsFlagAndFix()
    {
        var e = Assert.Throws<ConfigException>(() => TestConfig.Server(_dir.Path,
            (Settings.EtcdSnapshotScheduleCron, "0 */12 * *"),
            (Settings.EtcdSnapshotRetention, "0"),
            (Settings.EtcdSnapshotDir, "relative/snaps"),
            (Settings.ClusterResetRestorePath, "/x/snap")));

        var errors = e.Errors.Select(x => x.ToString()).ToList();
        Assert.Equal(4, errors.Count);
        Assert.StartsWith("--etcd-snapshot-schedule-cron: '0 */12 * *' is not a 5-field cron expression (", errors[0], StringComparison.Ordinal);
        Assert.EndsWith("); write minute hour day month weekday, like \"0 */12 * * *\"", errors[0], StringComparison.Ordinal);
        Assert.Equal("--etcd-snapshot-retention: 0 snapshots would keep none; keep at least 1 (default 5)", errors[1]);
        Assert.Equal("--etcd-snapshot-dir: 'relative/snaps' is not an absolute path; use a path like /var/lib/coracle/server/db/snapshots", errors[2]);
        Assert.Equal("--cluster-reset-restore-path: a restore path needs --cluster-reset; add --cluster-reset or remove the restore path", errors[3]);
    }

    [Fact]
    public void ClusterReset_Off_DoesNothing()
    {
        // Without --cluster-reset the step returns before it looks at the plan or the datastore.
        ServerSnapshots.ClusterReset(null!, TestConfig.Server(_dir.Path), NullLogger.Instance, DateTimeOffset.UnixEpoch);
        Assert.Empty(Directory.EnumerateFileSystemEntries(_dir.Path));
    }
}
