using Coracle.Core.Supervision;

namespace Coracle.Core.Tests.Supervision;

public sealed class ProbeWaitsTests
{
    [Fact]
    public void ProbeWaits_OneSecondInterval_StartsAt50MsAndDoublesUpToTheInterval()
    {
        var waits = ComponentRunner.ProbeWaits(TimeSpan.FromSeconds(1)).Take(8).Select(w => (int)w.TotalMilliseconds);

        Assert.Equal([50, 100, 200, 400, 800, 1000, 1000, 1000], waits);
    }

    [Fact]
    public void ProbeWaits_IntervalBelowTheFirstRetry_UsesTheIntervalThroughout()
    {
        var waits = ComponentRunner.ProbeWaits(TimeSpan.FromMilliseconds(20)).Take(3).Select(w => (int)w.TotalMilliseconds);

        Assert.Equal([20, 20, 20], waits);
    }

    [Fact]
    public void ProbeWaits_DefaultInterval_NeverExceedsIt()
    {
        var interval = new Plugins.CustomProbe(_ => Task.FromResult(true)).Interval;

        Assert.All(ComponentRunner.ProbeWaits(interval).Take(20), w => Assert.InRange(w, ComponentRunner.FirstProbeRetry, interval));
    }
}
