using System.Collections.Concurrent;
using Coracle.Core.Hosting;
using Coracle.Core.Supervision;
using Microsoft.Extensions.Time.Testing;

namespace Coracle.Core.Tests.Hosting;

/// <summary>
/// The thread pool's start-up minimum: raised when the node starts, put back once every component is ready or after the
/// cap (with the thread-count goal: the runtime's rule that a lower maximum clamps the goal and a lower minimum does not is
/// modelled by <see cref="FakePool"/>), and left alone when the operator already set it that high. The test process's real
/// thread pool is not touched.
/// </summary>
public sealed class StartupThreadPoolTests : IDisposable
{
    private readonly FakePool _pool = new();
    private readonly ListLoggerFactory _logs = new();
    private readonly FakeTimeProvider _time = new();

    public void Dispose() => _logs.Dispose();

    private static ComponentStatus C(string name, ComponentState state) => new(name, "process", state, null, 0, DateTimeOffset.UnixEpoch, "");

    private StartupThreadPool Raise(int workers)
    {
        _pool.MinWorkers = workers;
        _pool.Goal = workers;
        return StartupThreadPool.Raise(_pool);
    }

    /// <summary>The runtime's rules (PortableThreadPool): a higher minimum raises the goal, a lower one leaves it; a lower maximum clamps it.</summary>
    private sealed class FakePool : StartupThreadPool.IThreadPoolLimits
    {
        public ConcurrentQueue<string> Calls { get; } = new();

        public int MinWorkers { get; set; }

        public int MaxWorkers { get; private set; } = 32767;

        public int Goal { get; set; }

        public (int Workers, int Io) Min => (MinWorkers, 7);

        public (int Workers, int Io) Max => (MaxWorkers, 1000);

        public bool SetMin(int workers, int io)
        {
            Calls.Enqueue($"min {workers} {io}");
            MinWorkers = workers;
            Goal = Math.Max(Goal, workers);
            return true;
        }

        public bool SetMax(int workers, int io)
        {
            Calls.Enqueue($"max {workers} {io}");
            if (workers < MinWorkers)
            {
                return false;
            }

            MaxWorkers = workers;
            Goal = Math.Min(Goal, workers);
            return true;
        }
    }

    /// <summary>Advances the fake clock in poll-sized steps until <paramref name="done"/> or the step budget is spent.</summary>
    private async Task AdvanceUntilAsync(Func<bool> done, TimeSpan budget)
    {
        for (var spent = TimeSpan.Zero; !done() && spent < budget; spent += TimeSpan.FromMilliseconds(250))
        {
            _time.Advance(TimeSpan.FromMilliseconds(250));
            await Task.Delay(5);
        }
    }

    [Fact]
    public async Task Raise_DefaultMinimum_RaisedThenPutBackOnceEveryComponentIsReady()
    {
        IReadOnlyList<ComponentStatus> components = [C("datastore", ComponentState.Ready), C("kube-apiserver", ComponentState.Starting)];
        using var pool = Raise(2);
        Assert.Equal(["min 16 7"], _pool.Calls);
        Assert.Equal(16, _pool.Goal);
        Assert.False(pool.Restored);

        var settling = pool.RestoreWhenSettledAsync(() => components, _logs.CreateLogger("coracle"), _time);
        await AdvanceUntilAsync(() => false, TimeSpan.FromSeconds(5));
        Assert.False(pool.Restored);
        Assert.Single(_pool.Calls);

        components = [C("datastore", ComponentState.Ready), C("kube-apiserver", ComponentState.Ready), C("kubelet", ComponentState.Unavailable)];
        await AdvanceUntilAsync(() => pool.Restored, TimeSpan.FromSeconds(5));
        await settling.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.True(pool.Restored);
        var floor = Math.Max(2, Environment.ProcessorCount);
        Assert.Equal(["min 16 7", "min 2 7", $"max {floor} 1000", "max 32767 1000"], _pool.Calls);
        Assert.Equal((2, 32767, floor), (_pool.MinWorkers, _pool.MaxWorkers, _pool.Goal));
        Assert.Contains(_logs.Lines, l => l.Contains("thread pool minimum back to 2 workers (every component is ready,", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Raise_ComponentsNeverSettle_PutBackAtTheCap()
    {
        using var pool = Raise(2);
        var settling = pool.RestoreWhenSettledAsync(() => [C("kubelet", ComponentState.Backoff)], _logs.CreateLogger("coracle"), _time);
        await AdvanceUntilAsync(() => pool.Restored, StartupThreadPool.Cap + TimeSpan.FromSeconds(5));
        await settling.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal((2, 32767, Math.Max(2, Environment.ProcessorCount)), (_pool.MinWorkers, _pool.MaxWorkers, _pool.Goal));
        Assert.Contains(_logs.Lines, l => l.Contains($"(components still coming up after {(long)StartupThreadPool.Cap.TotalSeconds} s,", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Raise_OperatorMinimumAlreadyHigher_NeverChanged()
    {
        using var pool = Raise(24);
        await pool.RestoreWhenSettledAsync(() => [C("datastore", ComponentState.Ready)], _logs.CreateLogger("coracle"), _time);
        pool.Restore();

        Assert.True(pool.Restored);
        Assert.Empty(_pool.Calls);
        Assert.Empty(_logs.Lines);
    }

    [Fact]
    public async Task Dispose_BeforeSettled_StopsWaitingAndLeavesTheRaisedMinimum()
    {
        var pool = Raise(2);
        var settling = pool.RestoreWhenSettledAsync(() => [C("kubelet", ComponentState.Starting)], _logs.CreateLogger("coracle"), _time);
        pool.Dispose();
        await settling.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal(["min 16 7"], _pool.Calls);
        Assert.Empty(_logs.Lines);
    }
}
