using Coracle.Plugins.LoadBalancer.ServiceLb;
using Xunit;

namespace Coracle.Plugins.LoadBalancer.Tests.ServiceLb;

public sealed class IptablesRulesTests
{
    [Fact]
    public void RestoreInput_TwoBackends_RandomPickThenLastAndMasquerade()
    {
        Forward[] forwards = [new("default/web", "http", "TCP", "192.168.1.10", 8080, [new("10.42.1.7", 80, "b"), new("10.42.0.5", 80, "a")], Masquerade: true)];

        var text = IptablesRules.RestoreInput(forwards);

        Assert.Equal(
            """
            *nat
            :CORACLE-SVCLB - [0:0]
            :CORACLE-SVCLB-POSTROUTING - [0:0]
            -A CORACLE-SVCLB -d 192.168.1.10/32 -p tcp -m tcp --dport 8080 -m comment --comment default/web:http -m statistic --mode random --probability 0.5000000000 -j DNAT --to-destination 10.42.0.5:80
            -A CORACLE-SVCLB -d 192.168.1.10/32 -p tcp -m tcp --dport 8080 -m comment --comment default/web:http -j DNAT --to-destination 10.42.1.7:80
            -A CORACLE-SVCLB-POSTROUTING -p tcp -m conntrack --ctstate DNAT --ctorigdst 192.168.1.10/32 --ctorigdstport 8080 -m comment --comment default/web:http -j MASQUERADE
            COMMIT

            """.ReplaceLineEndings("\n"),
            text);
    }

    [Fact]
    public void RestoreInput_LocalPolicyUdpUnnamedPort_NoMasquerade()
    {
        Forward[] forwards = [new("ns1/dns", "", "UDP", "192.168.1.10", 53, [new("10.42.0.9", 5353, "a")], Masquerade: false)];

        var rules = IptablesRules.Render(forwards);

        var (chain, rule) = Assert.Single(rules);
        Assert.Equal(IptablesRules.Chain, chain);
        Assert.Equal("-d 192.168.1.10/32 -p udp -m udp --dport 53 -m comment --comment ns1/dns:53 -j DNAT --to-destination 10.42.0.9:5353", string.Join(' ', rule));
    }

    [Fact]
    public void RestoreInput_NoForwards_EmptiesTheChainsOnly()
    {
        Assert.Equal("*nat\n:CORACLE-SVCLB - [0:0]\n:CORACLE-SVCLB-POSTROUTING - [0:0]\nCOMMIT\n", IptablesRules.RestoreInput([]));
    }

    [Fact]
    public void Render_NoBackends_NoRules()
    {
        Assert.Empty(IptablesRules.Render([new Forward("default/web", "http", "TCP", "192.168.1.10", 8080, [], Masquerade: true)]));
    }

    [Fact]
    public void Render_ThreeBackends_ProbabilitiesSplitEvenly()
    {
        LbBackend[] three = [new("10.42.0.1", 80, "a"), new("10.42.0.2", 80, "a"), new("10.42.0.3", 80, "a")];

        var rules = IptablesRules.Render([new Forward("default/web", "http", "TCP", "192.168.1.10", 80, three, Masquerade: false)]);

        Assert.Equal(
            ["--probability 0.3333333333", "--probability 0.5000000000", ""],
            rules.Select(r => string.Join(' ', r.Rule)).Select(r => r.Contains("--probability", StringComparison.Ordinal) ? r.Substring(r.IndexOf("--probability", StringComparison.Ordinal), 26) : ""));
    }
}
