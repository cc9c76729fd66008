namespace Coracle.Core.Supervision;

/// <summary>
/// How many of a component's error lines reach coracle's log: at most <c>perWindow</c> in a fixed window that
/// starts with the first error line; the rest are counted, and the count is reported once the window is over.
/// Runs on a <see cref="TimeProvider"/> so tests use a fake clock.
/// </summary>
internal sealed class ErrorLineLimiter
{
    public const int DefaultPerWindow = 5;
    public static readonly TimeSpan DefaultWindow = TimeSpan.FromSeconds(10);

    private readonly TimeProvider _time;
    private readonly int _perWindow;
    private readonly TimeSpan _window;
    private long? _windowStart;
    private int _logged;
    private int _suppressed;

    public ErrorLineLimiter(TimeProvider time, int perWindow = DefaultPerWindow, TimeSpan? window = null)
    {
        _time = time;
        _perWindow = perWindow;
        _window = window ?? DefaultWindow;
    }

    /// <summary>Counts one error line; true when it may be logged, false when it only counts as suppressed.</summary>
    public bool Allow()
    {
        _windowStart ??= _time.GetTimestamp();
        if (_logged < _perWindow)
        {
            _logged++;
            return true;
        }

        _suppressed++;
        return false;
    }

    /// <summary>
    /// When the current window is over: ends it and returns how many lines it suppressed (0 when none); while it
    /// lasts, 0. Call it before <see cref="Allow"/> and after each batch of output.
    /// </summary>
    public int EndedWindow()
    {
        if (_windowStart is not { } start || _time.GetElapsedTime(start) < _window)
        {
            return 0;
        }

        return Reset();
    }

    /// <summary>Ends the current window now (the process exited or is stopping); returns what it suppressed.</summary>
    public int Drain() => Reset();

    private int Reset()
    {
        var suppressed = _suppressed;
        _windowStart = null;
        _logged = 0;
        _suppressed = 0;
        return suppressed;
    }
}
