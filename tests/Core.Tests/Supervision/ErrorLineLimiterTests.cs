using Coracle.Core.Supervision;
using Microsoft.Extensions.Time.Testing;

namespace Coracle.Core.Tests.Supervision;

public sealed class ErrorLineLimiterTests
{
    [Fact]
    public void Allow_BurstOfErrors_FiveLoggedRestCounted()
    {
        var limiter = new ErrorLineLimiter(new FakeTimeProvider());

        var allowed = Enumerable.Range(0, 12).Select(_ => limiter.Allow()).ToList();

        Assert.Equal([true, true, true, true, true, false, false, false, false, false, false, false], allowed);
    }

    [Fact]
    public void EndedWindow_WhileTheWindowLasts_ReportsNothing()
    {
        var time = new FakeTimeProvider();
        var limiter = new ErrorLineLimiter(time);
        for (var i = 0; i < 8; i++)
        {
            limiter.Allow();
        }

        time.Advance(TimeSpan.FromSeconds(9));

        Assert.Equal(0, limiter.EndedWindow());
    }

    [Fact]
    public void EndedWindow_AfterTenSeconds_ReportsTheSuppressedOnceAndOpensANewWindow()
    {
        var time = new FakeTimeProvider();
        var limiter = new ErrorLineLimiter(time);
        for (var i = 0; i < 8; i++)
        {
            limiter.Allow();
        }

        time.Advance(TimeSpan.FromSeconds(10));

        Assert.Equal(3, limiter.EndedWindow());
        Assert.Equal(0, limiter.EndedWindow());
        Assert.True(limiter.Allow());
    }

    [Fact]
    public void EndedWindow_NothingSuppressed_ReportsZero()
    {
        var time = new FakeTimeProvider();
        var limiter = new ErrorLineLimiter(time);
        limiter.Allow();
        time.Advance(TimeSpan.FromMinutes(1));

        Assert.Equal(0, limiter.EndedWindow());
    }

    [Fact]
    public void Drain_WithinTheWindow_ReportsAndResets()
    {
        var limiter = new ErrorLineLimiter(new FakeTimeProvider(), perWindow: 2);
        for (var i = 0; i < 5; i++)
        {
            limiter.Allow();
        }

        Assert.Equal(3, limiter.Drain());
        Assert.Equal(0, limiter.Drain());
        Assert.True(limiter.Allow());
    }
}
