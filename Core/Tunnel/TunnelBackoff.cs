namespace Coracle.Core.Tunnel;

/// <summary>
/// The agent's reconnect delays: <see cref="Initial"/> doubling per failed attempt up to <see cref="Cap"/>, each with
/// "equal jitter" (a random delay between half the step and the step), so agents that lost the same server do not
/// all come back at the same instant. <see cref="ConnectionEnded"/> starts over only after a good connection: one
/// that completed the handshake and stayed up at least <see cref="StableAfter"/> (a server that accepts and drops at
/// once does not reset the backoff).
/// </summary>
internal sealed class TunnelBackoff
{
    private readonly Func<double> _random;
    private int _attempt;

    /// <param name="initial">The first step.</param>
    /// <param name="cap">The largest step.</param>
    /// <param name="stableAfter">How long a connection must have lasted for the next failure to start over.</param>
    /// <param name="random">A number in [0, 1) per delay (tests pass a fixed one).</param>
    public TunnelBackoff(TimeSpan initial, TimeSpan cap, TimeSpan stableAfter, Func<double>? random = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(initial, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThan(cap, initial);
        Initial = initial;
        Cap = cap;
        StableAfter = stableAfter;
        _random = random ?? Random.Shared.NextDouble;
    }

    /// <summary>The agent's default: 1 s doubling to 15 s, reset after a connection that lasted 10 s.</summary>
    public static TunnelBackoff Default() => new(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(15), TimeSpan.FromSeconds(10));

    public TimeSpan Initial { get; }

    public TimeSpan Cap { get; }

    public TimeSpan StableAfter { get; }

    /// <summary>Failed attempts since the last good connection.</summary>
    public int Attempt => _attempt;

    /// <summary>The delay before the next attempt; each call counts one more failed attempt.</summary>
    public TimeSpan Next()
    {
        var step = Step(_attempt);
        _attempt++;
        return TimeSpan.FromTicks(step.Ticks / 2 + (long)(step.Ticks / 2 * _random()));
    }

    /// <summary>The step (before jitter) after <paramref name="attempt"/> failures.</summary>
    public TimeSpan Step(int attempt)
    {
        var ticks = Initial.Ticks;
        for (var i = 0; i < attempt && ticks < Cap.Ticks; i++)
        {
            ticks *= 2;
        }

        return TimeSpan.FromTicks(Math.Min(Cap.Ticks, ticks));
    }

    /// <summary>A connection ended: start over if it was good (handshake done and up at least <see cref="StableAfter"/>).</summary>
    public void ConnectionEnded(bool handshake, TimeSpan upFor)
    {
        if (handshake && upFor >= StableAfter)
        {
            _attempt = 0;
        }
    }
}
