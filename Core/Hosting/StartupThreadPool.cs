using Coracle.Core.Logging;
using Coracle.Core.Supervision;
using Coracle.Core.Update;
using Microsoft.Extensions.Logging;

namespace Coracle.Core.Hosting;

/// <summary>
/// The thread pool's minimum for the start-up burst only (docs/benchmarks.md, "the thread pool's minimum"). At start many
/// components start at once and some hold a pool thread for a moment (process spawns, file IO); with the default minimum
/// (one thread per core) the pool adds a thread only about every 0.5 s, so a start showed gaps of 0.5–0.9 s in which
/// nothing ran. Kept raised for good, the extra idle workers cost 25–30 % more CPU per watch event and keep-alive. So the
/// minimum is raised to <see cref="StartupMinimum"/> when the node starts and put back once every component is ready
/// (or reported unavailable), or after <see cref="Cap"/> at the latest. Lowering the minimum alone would leave the pool's
/// thread-count goal where the start raised it (the runtime lowers the goal only through its hill climbing, under load),
/// so <see cref="Restore"/> also sets the maximum to the original minimum for a moment, which clamps the goal, and then
/// puts the maximum back; the extra threads retire on their own after the runtime's idle timeout. A minimum already at
/// or above <see cref="StartupMinimum"/> (set by the operator in the runtime configuration or
/// <c>DOTNET_ThreadPool_ForceMinWorkerThreads</c>) is left alone.
/// </summary>
internal sealed class StartupThreadPool : IDisposable
{
    public const int StartupMinimum = 16;

    public static readonly TimeSpan Cap = TimeSpan.FromSeconds(120);

    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(250);

    private readonly CancellationTokenSource _stop = new();
    private readonly IThreadPoolLimits _pool;
    private readonly int _workers;
    private readonly int _io;
    private int _restored;

    private StartupThreadPool(int workers, int io, IThreadPoolLimits pool)
    {
        _workers = workers;
        _io = io;
        _pool = pool;
    }

    /// <summary>The pool's minimum and maximum (the process's own <see cref="ThreadPool"/>, or a test's).</summary>
    public interface IThreadPoolLimits
    {
        (int Workers, int Io) Min { get; }

        (int Workers, int Io) Max { get; }

        bool SetMin(int workers, int io);

        bool SetMax(int workers, int io);
    }

    private sealed class ProcessThreadPool : IThreadPoolLimits
    {
        public (int Workers, int Io) Min
        {
            get
            {
                ThreadPool.GetMinThreads(out var workers, out var io);
                return (workers, io);
            }
        }

        public (int Workers, int Io) Max
        {
            get
            {
                ThreadPool.GetMaxThreads(out var workers, out var io);
                return (workers, io);
            }
        }

        public bool SetMin(int workers, int io) => ThreadPool.SetMinThreads(workers, io);

        public bool SetMax(int workers, int io) => ThreadPool.SetMaxThreads(workers, io);
    }

    /// <summary>True once the original minimum is back (or was never changed).</summary>
    public bool Restored => Volatile.Read(ref _restored) == 1;

    /// <summary>Raises the worker minimum to <see cref="StartupMinimum"/> unless it already is that high.</summary>
    public static StartupThreadPool Raise(IThreadPoolLimits? pool = null)
    {
        pool ??= new ProcessThreadPool();
        var (workers, io) = pool.Min;
        var raised = new StartupThreadPool(workers, io, pool);
        if (workers >= StartupMinimum || !pool.SetMin(StartupMinimum, io))
        {
            raised._restored = 1;
        }

        return raised;
    }

    /// <summary>
    /// Puts the original minimum back once <see cref="UpdateGate.Why"/> finds every component ready or unavailable, or
    /// after <see cref="Cap"/>; logs which. Runs in the background until then or until disposed.
    /// </summary>
    public Task RestoreWhenSettledAsync(Func<IReadOnlyList<ComponentStatus>> components, ILogger log, TimeProvider? time = null)
    {
        if (Restored)
        {
            return Task.CompletedTask;
        }

        time ??= TimeProvider.System;
        return RunAsync(components, log, time);
    }

    private async Task RunAsync(Func<IReadOnlyList<ComponentStatus>> components, ILogger log, TimeProvider time)
    {
        var started = time.GetTimestamp();
        // Taken once: the node disposes this object when it stops, and a disposed source's Token would throw.
        var stop = _stop.Token;
        try
        {
            while (true)
            {
                var waited = time.GetElapsedTime(started);
                if (UpdateGate.Why(components()) is null)
                {
                    Restore();
                    log.ThreadPoolMinimumRestored(_workers, "every component is ready", (long)waited.TotalMilliseconds);
                    return;
                }

                if (waited >= Cap)
                {
                    Restore();
                    log.ThreadPoolMinimumRestored(_workers, $"components still coming up after {(long)Cap.TotalSeconds} s", (long)waited.TotalMilliseconds);
                    return;
                }

                await Task.Delay(Poll, time, stop);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Puts the original minimum back (once), and the thread-count goal with it (the maximum clamps the goal).</summary>
    public void Restore()
    {
        if (Interlocked.Exchange(ref _restored, 1) == 0)
        {
            _pool.SetMin(_workers, _io);
            var (maxWorkers, maxIo) = _pool.Max;
            if (_pool.SetMax(Math.Max(_workers, Environment.ProcessorCount), maxIo))
            {
                _pool.SetMax(maxWorkers, maxIo);
            }
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _stop.Dispose();
    }
}
