using System.Net;
using Coracle.Plugins.Ingress.Yarp;

namespace Coracle.Plugins.Ingress.Tests;

public sealed class YarpSettingsTests
{
    private static Dictionary<string, string> Defaults() => new()
    {
        ["http-port"] = "80", ["https-port"] = "443", ["bind-address"] = "0.0.0.0", ["request-timeout"] = "60s", ["default-class"] = "true",
    };

    [Fact]
    public void Parse_Defaults_AreTheDocumentedOnes()
    {
        var s = YarpSettings.Parse(Defaults());

        Assert.Equal(new YarpSettings(IPAddress.Any, 80, 443, TimeSpan.FromSeconds(60), true), s);
    }

    [Theory]
    [InlineData("http-port", "0", "http-port '0' is not a port; set a number from 1 to 65535")]
    [InlineData("https-port", "70000", "https-port '70000' is not a port; set a number from 1 to 65535")]
    [InlineData("https-port", "80", "http-port and https-port are both 80; give them different ports")]
    [InlineData("bind-address", "node1", "bind-address 'node1' is not an IP address; set one of the node's addresses, 0.0.0.0 or ::")]
    [InlineData("request-timeout", "10 parsecs", "request-timeout '10 parsecs' is not a positive duration; write it like 30s, 2m or 1h")]
    [InlineData("request-timeout", "0s", "request-timeout '0s' is not a positive duration; write it like 30s, 2m or 1h")]
    [InlineData("default-class", "maybe", "default-class 'maybe' is not true or false")]
    public void Parse_BadValue_NamesTheKeyAndTheFix(string key, string value, string message)
    {
        var options = Defaults();
        options[key] = value;

        var e = Assert.Throws<PluginConfigException>(() => new YarpPlugin().ValidateOptions(null!, options, "/nonexistent"));

        Assert.Equal(key, e.Key);
        Assert.Equal(message, e.Message);
    }

    [Fact]
    public void Parse_DurationsInGoStyle()
    {
        var options = Defaults();
        options["request-timeout"] = "1m30s";

        Assert.Equal(TimeSpan.FromSeconds(90), YarpSettings.Parse(options).RequestTimeout);
    }
}
