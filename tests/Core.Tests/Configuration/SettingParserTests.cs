using Coracle.Core.Configuration;

namespace Coracle.Core.Tests.Configuration;

public sealed class SettingParserTests
{
    [Theory]
    [InlineData("250ms", 250)]
    [InlineData("10s", 10_000)]
    [InlineData("5m", 300_000)]
    [InlineData("1h30m", 5_400_000)]
    [InlineData("1.5s", 1_500)]
    [InlineData("0", 0)]
    public void TryParseDuration_GoStyle_Parses(string text, long milliseconds)
    {
        Assert.True(SettingParser.TryParseDuration(text, out var value, out var error), error);
        Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), value);
    }

    [Theory]
    [InlineData("-1s", "'-1s' is negative; durations must be zero or more, like 10s or 5m")]
    [InlineData("10", "'10' is not a duration; use a number with a unit (ms, s, m, h), like 10s or 5m")]
    [InlineData("3d", "'3d' has an unknown unit 'd'; use ms, s, m or h")]
    public void TryParseDuration_BadInput_ExplainsTheFix(string text, string expected)
    {
        Assert.False(SettingParser.TryParseDuration(text, out _, out var error));
        Assert.Equal(expected, error);
    }

    [Fact]
    public void Parse_ListFromRepeatsAndCommas_Flattens()
    {
        var value = SettingParser.Parse(Settings.Disable, ["traefik", "servicelb, metrics-server"], out var error);

        Assert.Null(error);
        Assert.Equal(["traefik", "servicelb", "metrics-server"], (string[])value);
    }

    [Theory]
    [InlineData("0600", "\"0600\"")]
    [InlineData("644", "\"0644\"")]
    public void ParseScalar_FileMode_RoundTrips(string text, string formatted)
    {
        var value = SettingParser.ParseScalar(Settings.WriteKubeconfigMode, text, out var error);

        Assert.Null(error);
        Assert.Equal(formatted, SettingParser.Format(value));
    }

    [Fact]
    public void ParseScalar_BadFileMode_IsRejected()
    {
        SettingParser.ParseScalar(Settings.WriteKubeconfigMode, "rw-r--r--", out var error);

        Assert.Equal("'rw-r--r--' is not an octal file mode; use a mode like 0600 or 0644", error);
    }
}
