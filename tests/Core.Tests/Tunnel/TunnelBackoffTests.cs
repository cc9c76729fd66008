using Coracle.Core.Tunnel;

namespace Coracle.Core.Tests.Tunnel;

/// <summary>The agent's reconnect delays, with the jitter's random number fixed.</summary>
public sealed class TunnelBackoffTests
{
    private static TunnelBackoff Backoff(double random) =>
        new(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(15), TimeSpan.FromSeconds(10), () => random);

    [Fact]
    public void Next_FailedAttempts_DoublesFromOneSecondToTheCapOf15()
    {
        var backoff = Backoff(random: 1.0);

        var delays = Enumerable.Range(0, 7).Select(_ => backoff.Next().TotalSeconds).ToList();

        Assert.Equal([1, 2, 4, 8, 15, 15, 15], delays);
        Assert.Equal(7, backoff.Attempt);
    }

    [Theory]
    [InlineData(0.0, 0.5, 7.5)]
    [InlineData(0.5, 0.75, 11.25)]
    public void Next_Jitter_IsBetweenHalfTheStepAndTheStep(double random, double first, double capped)
    {
        var backoff = Backoff(random);

        Assert.Equal(first, backoff.Next().TotalSeconds);
        for (var i = 0; i < 10; i++)
        {
            backoff.Next();
        }

        Assert.Equal(capped, backoff.Next().TotalSeconds);
    }

    [Fact]
    public void ConnectionEnded_AfterAGoodConnection_StartsOverAtTheFirstStep()
    {
        var backoff = Backoff(random: 1.0);
        for (var i = 0; i < 5; i++)
        {
            backoff.Next();
        }

        backoff.ConnectionEnded(handshake: true, upFor: TimeSpan.FromSeconds(10));

        Assert.Equal(0, backoff.Attempt);
        Assert.Equal(TimeSpan.FromSeconds(1), backoff.Next());
    }

    [Theory]
    [InlineData(true, 9.9)]
    [InlineData(false, 3600)]
    public void ConnectionEnded_ShortOrWithoutHandshake_KeepsBackingOff(bool handshake, double upForSeconds)
    {
        var backoff = Backoff(random: 1.0);
        for (var i = 0; i < 5; i++)
        {
            backoff.Next();
        }

        backoff.ConnectionEnded(handshake, TimeSpan.FromSeconds(upForSeconds));

        Assert.Equal(TimeSpan.FromSeconds(15), backoff.Next());
    }

    [Fact]
    public void Step_ManyAttemptsWithALongFirstStep_StaysAtTheCapWithoutOverflow()
    {
        var backoff = new TunnelBackoff(TimeSpan.FromHours(1), TimeSpan.FromDays(1), TimeSpan.Zero);

        Assert.Equal(TimeSpan.FromDays(1), backoff.Step(int.MaxValue));
    }
}
