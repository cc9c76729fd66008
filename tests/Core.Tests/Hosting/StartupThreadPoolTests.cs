using System.Collections.Concurrent;
using Coracle.Core.Hosting;
using Coracle.Core.Supervision;
using Microsoft.Extensions.Time.Testing;

namespace Coracle.Core.Tests.Hosting;

/// <summary>
/// The thread pool's start-up minimum: raised when the node starts, put back once every component is ready or after the
/// cap, and left alone when the operator already set it that high. The pool itself is not touched: the getter and setter
/// are the test's own, so the test process's real thread pool keeps its settings.
/// </summary>
public sealed class StartupThreadPoolTests : IDisposable
{
    private readonly ConcurrentQueue<(int Workers, int Io)> _set = new();
    private readonly ListLoggerFactory _logs = new();
    private readonly FakeTimeProvider _time = new();

    public void Dispose() => _logs.Dispose();

    private static ComponentStatus C(string name, ComponentState state) => new(name, "process", state, null, 0, DateTimeOffset.UnixEpoch, "");

    private StartupThreadPool Raise(int workers) => StartupThreadPool.Raise(() => (workers, 7), (w, io) =>
    {
        _set.Enqueue((w, io));
        return true;
    });

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
        Assert.Equal([(StartupThreadPool.StartupMinimum, 7)], _set);
        Assert.False(pool.Restored);

        var settling = pool.RestoreWhenSettledAsync(() => components, _logs.CreateLogger("coracle"), _time);
        await AdvanceUntilAsync(() => false, TimeSpan.FromSeconds(5));
        Assert.False(pool.Restored);
        Assert.Single(_set);

        components = [C("datastore", ComponentState.Ready), C("kube-apiserver", ComponentState.Ready), C("kubelet", ComponentState.Unavailable)];
        await AdvanceUntilAsync(() => pool.Restored, TimeSpan.FromSeconds(5));
        await settling.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.True(pool.Restored);
        Assert.Equal([(StartupThreadPool.StartupMinimum, 7), (2, 7)], _set);
        Assert.Contains(_logs.Lines, l => l.Contains("thread pool minimum back to 2 workers (every component is ready,", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Raise_ComponentsNeverSettle_PutBackAtTheCap()
    {
        using var pool = Raise(2);
        var settling = pool.RestoreWhenSettledAsync(() => [C("kubelet", ComponentState.Backoff)], _logs.CreateLogger("coracle"), _time);
        await AdvanceUntilAsync(() => pool.Restored, StartupThreadPool.Cap + TimeSpan.FromSeconds(5));
        await settling.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal([(StartupThreadPool.StartupMinimum, 7), (2, 7)], _set);
        Assert.Contains(_logs.Lines, l => l.Contains($"(components still coming up after {(long)StartupThreadPool.Cap.TotalSeconds} s,", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Raise_OperatorMinimumAlreadyHigher_NeverChanged()
    {
        using var pool = Raise(24);
        await pool.RestoreWhenSettledAsync(() => [C("datastore", ComponentState.Ready)], _logs.CreateLogger("coracle"), _time);
        pool.Restore();

        Assert.True(pool.Restored);
        Assert.Empty(_set);
        Assert.Empty(_logs.Lines);
    }

    [Fact]
    public async Task Dispose_BeforeSettled_StopsWaitingAndLeavesTheRaisedMinimum()
    {
        var pool = Raise(2);
        var settling = pool.RestoreWhenSettledAsync(() => [C("kubelet", ComponentState.Starting)], _logs.CreateLogger("coracle"), _time);
        pool.Dispose();
        await settling.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal([(StartupThreadPool.StartupMinimum, 7)], _set);
        Assert.Empty(_logs.Lines);
    }
}
