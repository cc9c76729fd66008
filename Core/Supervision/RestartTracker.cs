using Coracle.Plugins;

namespace Coracle.Core.Supervision;

/// <summary>
/// Exponential backoff with a crash-loop limit. Pure logic over a <see cref="TimeProvider"/>, so tests
/// drive it with a fake clock.
/// </summary>
internal sealed class RestartTracker
{
    private readonly RestartPolicy _policy;
    private readonly TimeProvider _time;
    private readonly Queue<DateTimeOffset> _recent = new();
    private TimeSpan _next;

    public RestartTracker(RestartPolicy policy, TimeProvider time)
    {
        _policy = policy;
        _time = time;
        _next = policy.InitialBackoff;
    }

    /// <summary>Restarts so far.</summary>
    public int Restarts { get; private set; }

    /// <summary>
    /// Records an exit. Returns the delay before the next start, or null when the component has crashed
    /// more than the limit within the window (or the policy never restarts).
    /// </summary>
    public TimeSpan? OnExit(TimeSpan uptime)
    {
        if (_policy.CrashLoopLimit <= 0)
        {
            return null;
        }

        var now = _time.GetUtcNow();
        while (_recent.Count > 0 && now - _recent.Peek() > _policy.CrashLoopWindow)
        {
            _recent.Dequeue();
        }

        if (uptime >= _policy.MaxBackoff * 2 && uptime > TimeSpan.Zero)
        {
            _next = _policy.InitialBackoff; // it ran well for a while: start the backoff over.
        }

        if (_recent.Count >= _policy.CrashLoopLimit)
        {
            return null;
        }

        _recent.Enqueue(now);
        Restarts++;
        var delay = _next;
        var doubled = TimeSpan.FromTicks(Math.Max(1, _next.Ticks) * 2);
        _next = doubled > _policy.MaxBackoff ? _policy.MaxBackoff : doubled;
        return delay;
    }
}
