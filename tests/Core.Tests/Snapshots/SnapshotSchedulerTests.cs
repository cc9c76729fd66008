using System.Globalization;
using System.Threading.Channels;
using Coracle.Core.Snapshots;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Coracle.Core.Tests.Snapshots;

/// <summary>The snapshot schedule (cron, UTC) and the scheduler driven by a <see cref="FakeTimeProvider"/>: no sleeps.</summary>
public sealed class SnapshotSchedulerTests : IDisposable
{
    private readonly TempDir _dir = new("snapsched");

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData("0 */12 * * *", "2026-12-07T02:50:00Z", "2026-12-07T12:00:00Z")]
    [InlineData("0 */12 * * *", "2026-12-07T12:00:00Z", "2026-12-08T00:00:00Z")]
    [InlineData("*/5 * * * *", "2026-12-07T02:50:30Z", "2026-12-07T02:55:00Z")]
    [InlineData("30 3 * * 1", "2026-12-07T02:50:00Z", "2026-12-07T03:30:00Z")]
    public void Next_CronExpression_FirstTimeAfter(string cron, string after, string expected)
    {
        var next = SnapshotSchedule.Parse(cron).Next(DateTimeOffset.Parse(after, CultureInfo.InvariantCulture));
        Assert.Equal(DateTimeOffset.Parse(expected, CultureInfo.InvariantCulture), next);
    }

    [Theory]
    [InlineData("0 */12 * *")]
    [InlineData("61 * * * *")]
    [InlineData("every day")]
    public void Problem_BadExpression_SaysHowToWriteOne(string cron)
    {
        var problem = SnapshotSchedule.Problem(cron);
        Assert.NotNull(problem);
        Assert.StartsWith($"'{cron}' is not a 5-field cron expression (", problem, StringComparison.Ordinal);
        Assert.EndsWith("); write minute hour day month weekday, like \"0 */12 * * *\"", problem, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RunAsync_TimeAdvances_SnapshotsAtEveryScheduledTimeAndKeepsRetention()
    {
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-12-07T02:50:00Z", CultureInfo.InvariantCulture));
        var store = new SnapshotStore(_dir.Path, "node-a", time);
        var taken = Channel.CreateUnbounded<DateTimeOffset>();
        var scheduler = new SnapshotScheduler(SnapshotSchedule.Parse("0 */12 * * *"), 2, store, _ =>
        {
            // Stands in for the datastore's stream: a file named as the store names it.
            var now = time.GetUtcNow();
            var name = $"{SnapshotStore.ScheduledName}-node-a-{now.ToUnixTimeSeconds()}";
            File.WriteAllText(Path.Combine(_dir.Path, name), "x");
            taken.Writer.TryWrite(now);
            return Task.FromResult(new SnapshotRecord(name, Path.Combine(_dir.Path, name), 1, now, "node-a", "", "sqlite", 1));
        }, time, NullLogger.Instance);
        File.WriteAllText(Path.Combine(_dir.Path, "on-demand-node-a-100"), "mine");
        using var stop = new CancellationTokenSource();
        var run = scheduler.RunAsync(stop.Token);

        var expected = new[] { "2026-12-07T12:00:00Z", "2026-12-08T00:00:00Z", "2026-12-08T12:00:00Z" }
            .Select(t => DateTimeOffset.Parse(t, CultureInfo.InvariantCulture)).ToList();
        foreach (var at in expected)
        {
            await WaitUntil(() => scheduler.NextAt == at);
            time.Advance(at - time.GetUtcNow() - TimeSpan.FromSeconds(1));
            Assert.False(taken.Reader.TryRead(out _));
            time.Advance(TimeSpan.FromSeconds(1));
            Assert.Equal(at, await taken.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
        }

        await WaitUntil(() => scheduler.Taken == 3 && scheduler.NextAt == expected[^1].AddHours(12));
        stop.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run);

        // Retention 2 of the scheduled name; another name is never pruned.
        Assert.Equal(
            ["etcd-snapshot-node-a-" + expected[1].ToUnixTimeSeconds(), "etcd-snapshot-node-a-" + expected[2].ToUnixTimeSeconds(), "on-demand-node-a-100"],
            Directory.GetFiles(_dir.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task RunAsync_SnapshotFails_LogsAndKeepsTheSchedule()
    {
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-12-07T11:59:00Z", CultureInfo.InvariantCulture));
        var store = new SnapshotStore(_dir.Path, "node-a", time);
        var attempts = 0;
        var scheduler = new SnapshotScheduler(SnapshotSchedule.Parse("0 */12 * * *"), 5, store, _ =>
        {
            attempts++;
            throw new SnapshotException("no datastore answers on unix:///x");
        }, time, NullLogger.Instance);
        using var stop = new CancellationTokenSource();
        var run = scheduler.RunAsync(stop.Token);
        await WaitUntil(() => scheduler.NextAt is not null);
        time.Advance(TimeSpan.FromMinutes(1));
        await WaitUntil(() => scheduler.NextAt == DateTimeOffset.Parse("2026-12-08T00:00:00Z", CultureInfo.InvariantCulture));
        Assert.Equal(1, attempts);
        Assert.Equal(0, scheduler.Taken);
        stop.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run);
    }

    /// <summary>Waits (bounded) for the scheduler's own task to reach a state; the fake clock does not move meanwhile.</summary>
    private static async Task WaitUntil(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "the scheduler did not reach the expected state");
            await Task.Delay(10);
        }
    }
}
