using Coracle.Core.Logging;
using Microsoft.Extensions.Logging;

namespace Coracle.Core.Snapshots;

/// <summary>
/// Scheduled snapshots (K3s's <c>etcd-snapshot-schedule-cron</c>): at every time of the schedule, one snapshot named
/// <see cref="SnapshotStore.ScheduledName"/>, then the older scheduled ones beyond the retention are deleted. A failed
/// snapshot is logged and the schedule goes on. Time comes from a <see cref="TimeProvider"/>, so tests drive it.
/// </summary>
internal sealed class SnapshotScheduler(
    SnapshotSchedule schedule,
    int retention,
    SnapshotStore store,
    Func<CancellationToken, Task<SnapshotRecord>> save,
    TimeProvider time,
    ILogger log)
{
    /// <summary>When the next snapshot is due; null before the loop runs.</summary>
    public DateTimeOffset? NextAt { get; private set; }

    /// <summary>Scheduled snapshots taken (failed ones not counted).</summary>
    public int Taken { get; private set; }

    /// <summary>Runs until cancelled.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var first = true;
        while (!cancellationToken.IsCancellationRequested)
        {
            var now = time.GetUtcNow();
            if (schedule.Next(now) is not { } next)
            {
                await Task.Delay(Timeout.Infinite, cancellationToken);
                return;
            }

            if (first)
            {
                log.SnapshotScheduled(schedule.Text, retention, store.Directory, next);
                first = false;
            }

            NextAt = next;

            // Task.Delay takes at most about 49 days; a yearly schedule waits in steps of a day.
            for (var left = next - now; left > TimeSpan.Zero; left = next - time.GetUtcNow())
            {
                await Task.Delay(left < TimeSpan.FromDays(1) ? left : TimeSpan.FromDays(1), time, cancellationToken);
            }
            try
            {
                var record = await save(cancellationToken);
                Taken++;
                log.SnapshotSaved(record.Name, record.Size, record.Revision, record.Sha256);
                foreach (var pruned in store.Prune(SnapshotStore.ScheduledName, retention))
                {
                    log.SnapshotPruned(pruned, retention);
                }
            }
            catch (Exception e) when (e is SnapshotException or IOException or UnauthorizedAccessException)
            {
                log.SnapshotFailed(e.Message, schedule.Next(time.GetUtcNow()) ?? DateTimeOffset.MaxValue);
            }
        }
    }
}
