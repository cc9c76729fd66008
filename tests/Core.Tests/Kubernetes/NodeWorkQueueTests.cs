using System.Collections.Concurrent;
using Coracle.Core.Kubernetes;
using Microsoft.Extensions.Time.Testing;

namespace Coracle.Core.Tests.Kubernetes;

public sealed class NodeWorkQueueTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task RunAsync_NameAddedTwiceBeforeAPass_WorkedOnceThenAfterPassRuns()
    {
        var queue = new NodeWorkQueue(TimeSpan.FromSeconds(5), new FakeTimeProvider());
        var worked = new ConcurrentQueue<string>();
        var passes = new SemaphoreSlim(0);
        using var stop = new CancellationTokenSource();
        queue.Add("a");
        queue.Add("a");
        queue.Add("b");
        queue.Signal();
        var running = queue.RunAsync((name, _) => { worked.Enqueue(name); return Task.FromResult(true); }, () => passes.Release(), stop.Token);

        Assert.True(await passes.WaitAsync(Wait));
        Assert.Equal(["a", "b"], worked.Order(StringComparer.Ordinal));
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => running);
    }

    [Fact]
    public async Task RunAsync_SignalWithNothingQueued_StillRunsAPass()
    {
        var queue = new NodeWorkQueue(TimeSpan.FromSeconds(5), new FakeTimeProvider());
        var passes = new SemaphoreSlim(0);
        using var stop = new CancellationTokenSource();
        var running = queue.RunAsync((_, _) => throw new InvalidOperationException("nothing was queued"), () => passes.Release(), stop.Token);
        queue.Signal();

        Assert.True(await passes.WaitAsync(Wait));
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => running);
    }

    [Fact]
    public async Task RunAsync_WorkFails_TriedAgainNoSoonerThanTheRetryDelay()
    {
        var time = new FakeTimeProvider();
        var queue = new NodeWorkQueue(TimeSpan.FromSeconds(5), time);
        var tried = new ConcurrentQueue<DateTimeOffset>();
        using var stop = new CancellationTokenSource();
        queue.Add("n1");
        queue.Signal();
        var running = queue.RunAsync((_, _) => { tried.Enqueue(time.GetUtcNow()); return Task.FromResult(tried.Count > 1); }, () => { }, stop.Token);

        // Fake time moves one second per step until the retry came; the retry's fake time says when it came.
        for (var step = 0; step < 300 && tried.Count < 2; step++)
        {
            await Task.Delay(50);
            time.Advance(TimeSpan.FromSeconds(1));
        }

        var times = tried.ToArray();
        Assert.True(times.Length >= 2, "the failed name was not tried again");
        Assert.True(times[1] - times[0] >= TimeSpan.FromSeconds(5), $"tried again after {times[1] - times[0]}");
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => running);
    }
}
