using Coracle.Core.Supervision;
using Coracle.Plugins;
using Microsoft.Extensions.Time.Testing;

namespace Coracle.Core.Tests.Supervision;

public sealed class RestartTrackerTests
{
    private static readonly RestartPolicy Policy = new(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(8), 5, TimeSpan.FromMinutes(1));

    [Fact]
    public void OnExit_RepeatedCrashes_DoublesUpToTheMaximum()
    {
        var time = new FakeTimeProvider();
        var tracker = new RestartTracker(Policy, time);
        var delays = new List<TimeSpan?>();

        for (var i = 0; i < 5; i++)
        {
            delays.Add(tracker.OnExit(TimeSpan.FromMilliseconds(10)));
            time.Advance(TimeSpan.FromSeconds(1));
        }

        Assert.Equal(
            new TimeSpan?[] { TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(4), TimeSpan.FromSeconds(8), TimeSpan.FromSeconds(8) },
            delays);
        Assert.Equal(5, tracker.Restarts);
    }

    [Fact]
    public void OnExit_MoreCrashesThanTheLimitInTheWindow_GivesUp()
    {
        var time = new FakeTimeProvider();
        var tracker = new RestartTracker(Policy, time);
        for (var i = 0; i < 5; i++)
        {
            Assert.NotNull(tracker.OnExit(TimeSpan.Zero));
            time.Advance(TimeSpan.FromSeconds(2));
        }

        Assert.Null(tracker.OnExit(TimeSpan.Zero));
    }

    [Fact]
    public void OnExit_CrashesSpreadBeyondTheWindow_KeepRestarting()
    {
        var time = new FakeTimeProvider();
        var tracker = new RestartTracker(Policy, time);
        for (var i = 0; i < 20; i++)
        {
            Assert.NotNull(tracker.OnExit(TimeSpan.Zero));
            time.Advance(TimeSpan.FromSeconds(30));
        }
    }

    [Fact]
    public void OnExit_AfterALongHealthyRun_StartsBackoffOver()
    {
        var time = new FakeTimeProvider();
        var tracker = new RestartTracker(Policy, time);
        tracker.OnExit(TimeSpan.Zero);
        tracker.OnExit(TimeSpan.Zero);
        tracker.OnExit(TimeSpan.Zero);
        time.Advance(TimeSpan.FromMinutes(2));

        var delay = tracker.OnExit(TimeSpan.FromMinutes(2));

        Assert.Equal(TimeSpan.FromSeconds(1), delay);
    }

    [Fact]
    public void OnExit_NeverPolicy_DoesNotRestart()
    {
        var tracker = new RestartTracker(RestartPolicy.Never, new FakeTimeProvider());

        Assert.Null(tracker.OnExit(TimeSpan.Zero));
    }
}
