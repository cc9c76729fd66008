namespace Coracle.Core.Tunnel;

/// <summary>
/// Keeps refusal logs readable: at most one line per key (a CONNECT target) per <see cref="Window"/>; the next line
/// says how many refusals of that key were not logged in between.
/// </summary>
internal sealed class RefusalLimiter
{
    private const int MaxKeys = 1024;
    private readonly TimeProvider _time;
    private readonly Dictionary<string, (DateTimeOffset Logged, int Suppressed)> _keys = new(StringComparer.Ordinal);

    public RefusalLimiter(TimeProvider? time = null, TimeSpan? window = null)
    {
        _time = time ?? TimeProvider.System;
        Window = window ?? TimeSpan.FromMinutes(1);
    }

    public TimeSpan Window { get; }

    /// <summary>True when a refusal of <paramref name="key"/> should be logged now; <paramref name="suppressed"/> is how many were not since the last line.</summary>
    public bool ShouldLog(string key, out int suppressed)
    {
        var now = _time.GetUtcNow();
        lock (_keys)
        {
            if (_keys.TryGetValue(key, out var entry) && now - entry.Logged < Window)
            {
                _keys[key] = (entry.Logged, entry.Suppressed + 1);
                suppressed = 0;
                return false;
            }

            if (_keys.Count >= MaxKeys)
            {
                foreach (var old in _keys.Where(k => now - k.Value.Logged >= Window).Select(k => k.Key).ToList())
                {
                    _keys.Remove(old);
                }
            }

            suppressed = entry.Suppressed;
            if (_keys.Count < MaxKeys || _keys.ContainsKey(key))
            {
                _keys[key] = (now, 0);
            }

            return true;
        }
    }
}
