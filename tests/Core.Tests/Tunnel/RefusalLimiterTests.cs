using Coracle.Core.Tunnel;
using Microsoft.Extensions.Time.Testing;

namespace Coracle.Core.Tests.Tunnel;

public sealed class RefusalLimiterTests
{
    [Fact]
    public void ShouldLog_SameTargetWithinAMinute_OneLineThenTheCountOfTheSuppressed()
    {
        var time = new FakeTimeProvider();
        var limiter = new RefusalLimiter(time);

        Assert.True(limiter.ShouldLog("10.1.2.3:443", out var first));
        Assert.Equal(0, first);
        for (var i = 0; i < 5; i++)
        {
            time.Advance(TimeSpan.FromSeconds(10));
            Assert.False(limiter.ShouldLog("10.1.2.3:443", out _));
        }

        Assert.True(limiter.ShouldLog("10.9.9.9:443", out _));
        time.Advance(TimeSpan.FromSeconds(10));
        Assert.True(limiter.ShouldLog("10.1.2.3:443", out var suppressed));
        Assert.Equal(5, suppressed);
        Assert.False(limiter.ShouldLog("10.1.2.3:443", out _));
    }
}
