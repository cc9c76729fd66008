using System.Net;
using Coracle.Core.Configuration;

namespace Coracle.Core.Tests.Configuration;

public sealed class ConfigLoaderTests
{
    private static readonly Dictionary<string, string> NoEnvironment = new() { ["HOME"] = "/home/test" };
    private static readonly Dictionary<Setting, IReadOnlyList<string>> NoFlags = [];

    private static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", name);

    private static IReadOnlyList<string> Errors(string fixture, string role = "server")
    {
        var ex = Assert.Throws<ConfigException>(() => ConfigLoader.Load(role, Fixture(fixture), NoEnvironment, NoFlags));
        return ex.Errors.Select(e => e.ToString().Replace(Fixture(fixture), fixture, StringComparison.Ordinal)).ToList();
    }

    [Fact]
    public void Load_NoFileNoFlags_UsesK3sDefaults()
    {
        var config = ConfigLoader.Load("server", null, new Dictionary<string, string> { ["CORACLE_CONFIG_FILE"] = "" }, NoFlags);

        Assert.Equal(IPNetwork.Parse("10.42.0.0/16"), config.ClusterCidr);
        Assert.Equal(IPNetwork.Parse("10.43.0.0/16"), config.ServiceCidr);
        Assert.Equal(IPAddress.Parse("10.43.0.10"), config.ClusterDns);
        Assert.Equal(6443, config.HttpsListenPort);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, config.WriteKubeconfigMode);
        Assert.Equal(TimeSpan.FromSeconds(1), config.Restart.InitialBackoff);
        Assert.Equal("default", config.Sources[Settings.ClusterCidr].Source);
    }

    [Fact]
    public void Load_ValidFile_ReadsEveryValueWithItsPosition()
    {
        var config = ConfigLoader.Load("server", Fixture("valid.toml"), NoEnvironment, NoFlags);

        Assert.Equal("/var/lib/coracle-test", config.DataDir);
        Assert.Equal("gateway-1", config.NodeName);
        Assert.Equal(["192.168.1.10"], config.NodeIps);
        Assert.Equal(["traefik"], config.Disable);
        Assert.Equal("json", config.LogFormat);
        Assert.Equal(IPNetwork.Parse("10.52.0.0/16"), config.ClusterCidr);
        Assert.Equal(7443, config.HttpsListenPort);
        Assert.Equal("host-gw", config.PluginOptions["flannel"]["backend"]);
        Assert.Equal(TimeSpan.FromMilliseconds(500), config.Restart.InitialBackoff);
        Assert.Equal(TimeSpan.FromMinutes(1), config.Restart.MaxBackoff);
        Assert.Equal(5, config.Restart.CrashLoopLimit);
        Assert.Equal("native", config.PluginOptions["containerd"]["snapshotter"]);
        Assert.EndsWith("valid.toml:9:1", config.Sources[Settings.ClusterCidr].Source, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_EnvironmentOverridesFile_AndFlagsOverrideEnvironment()
    {
        var env = new Dictionary<string, string>(NoEnvironment)
        {
            ["CORACLE_CLUSTER_CIDR"] = "10.62.0.0/16",
            ["CORACLE_NODE_NAME"] = "from-env",
            ["CORACLE_DISABLE"] = "servicelb",
        };
        var flags = new Dictionary<Setting, IReadOnlyList<string>>
        {
            [Settings.NodeName] = ["from-flag"],
            [Settings.Disable] = ["traefik", "servicelb,metrics-server"],
        };

        var config = ConfigLoader.Load("server", Fixture("valid.toml"), env, flags);

        Assert.Equal(IPNetwork.Parse("10.62.0.0/16"), config.ClusterCidr);
        Assert.Equal("CORACLE_CLUSTER_CIDR", config.Sources[Settings.ClusterCidr].Source);
        Assert.Equal("from-flag", config.NodeName);
        Assert.Equal("--node-name", config.Sources[Settings.NodeName].Source);
        Assert.Equal(["traefik", "servicelb", "metrics-server"], config.Disable);
        Assert.Equal(IPNetwork.Parse("10.53.0.0/16"), config.ServiceCidr);
    }

    [Fact]
    public void Load_K8sBinVariable_OverridesComponentsDir()
    {
        var env = new Dictionary<string, string>(NoEnvironment) { ["CORACLE_K8S_BIN"] = "/opt/k8s/bin" };

        var config = ConfigLoader.Load("server", Fixture("valid.toml"), env, NoFlags);

        Assert.Equal("/opt/k8s/bin", config.ComponentsDir);
    }

    [Fact]
    public void Load_UnknownKey_NamesFileLineColumnAndSuggestion()
    {
        Assert.Equal(
            ["unknown-key.toml:3:1: unknown key 'server.clustr-dns'; did you mean 'cluster-dns'? (the shipped appliance.toml lists every key)"],
            Errors("unknown-key.toml"));
    }

    [Fact]
    public void Load_WrongTypes_ReportsEveryErrorAtOnce()
    {
        Assert.Equal(
            [
                "wrong-types.toml:1:11: node-ip: '192.168.1.300' is not an IP address; give addresses like 192.168.1.10 or fd00::10",
                "wrong-types.toml:4:21: server.https-listen-port: expected a whole number, found a string",
                "wrong-types.toml:5:16: server.cluster-cidr: expected a string in quotes, found a number",
                "wrong-types.toml:8:19: supervisor.restart-backoff: '-1s' is negative; durations must be zero or more, like 10s or 5m",
                "wrong-types.toml:9:20: supervisor.crash-loop-limit: expected a whole number, found a boolean",
            ],
            Errors("wrong-types.toml"));
    }

    [Fact]
    public void Load_BadCidr_SaysHowToWriteOne()
    {
        Assert.Equal(
            ["bad-cidr.toml:2:16: server.cluster-cidr: '10.42.0.0/33' is not a valid CIDR; use a network like 10.42.0.0/16"],
            Errors("bad-cidr.toml"));
    }

    [Fact]
    public void Load_ClusterCidrTooSmallForNodes_IsRejected()
    {
        Assert.Equal(
            ["small-cidr.toml:2:1: 10.42.0.0/25 cannot hold a /24 per node; use a prefix of /24 or shorter, like 10.42.0.0/16"],
            Errors("small-cidr.toml"));
    }

    [Fact]
    public void Load_UnknownSection_ListsKnownSections()
    {
        Assert.Equal(
            ["unknown-section.toml:1:2: unknown section [sever]; did you mean 'server'?; known sections: [server], [agent], [plugins], [supervisor], [update] and [plugins.NAME]"],
            Errors("unknown-section.toml"));
    }

    [Fact]
    public void Load_KeyInWrongSection_SaysWhereItBelongs()
    {
        Assert.Equal(
            ["misplaced.toml:1:1: unknown key 'cluster-cidr'; 'cluster-cidr' belongs in [server] (the shipped appliance.toml lists every key)"],
            Errors("misplaced.toml"));
    }

    [Fact]
    public void Load_InvalidChoice_ListsChoices()
    {
        Assert.Equal(
            ["bad-choice.toml:2:24: server.egress-selector-mode: 'wireguard' is not one of agent, pod, cluster, disabled"],
            Errors("bad-choice.toml"));
    }

    [Fact]
    public void Load_SyntaxError_PointsAtTheLine()
    {
        var errors = Errors("syntax.toml");

        Assert.NotEmpty(errors);
        Assert.StartsWith("syntax.toml:1:", errors[0], StringComparison.Ordinal);
        Assert.EndsWith("; fix the TOML syntax", errors[0], StringComparison.Ordinal);
    }

    [Fact]
    public void Load_MissingExplicitFile_IsAnError()
    {
        var ex = Assert.Throws<ConfigException>(() => ConfigLoader.Load("server", "/nonexistent/appliance.toml", NoEnvironment, NoFlags));

        Assert.Equal("--config: config file '/nonexistent/appliance.toml' does not exist; fix the path or remove the option", ex.Errors.Single().ToString());
    }

    [Fact]
    public void Load_BadFlagAndBadEnvironment_NameTheirSource()
    {
        var env = new Dictionary<string, string>(NoEnvironment) { ["CORACLE_SERVICE_CIDR"] = "nope" };
        var flags = new Dictionary<Setting, IReadOnlyList<string>> { [Settings.StopTimeout] = ["10 parsecs"] };

        var ex = Assert.Throws<ConfigException>(() => ConfigLoader.Load("server", Fixture("valid.toml"), env, flags));

        Assert.Equal(
            [
                "CORACLE_SERVICE_CIDR: 'nope' is not a valid CIDR; use a network like 10.42.0.0/16",
                "--stop-timeout: '10 parsecs' is not a duration; use a number with a unit (ms, s, m, h), like 10s or 5m",
            ],
            ex.Errors.Select(e => e.ToString()));
    }

    [Fact]
    public void Load_ClusterDnsOutsideServiceCidr_IsRejected()
    {
        var flags = new Dictionary<Setting, IReadOnlyList<string>> { [Settings.ClusterDns] = ["10.99.0.10"] };

        var ex = Assert.Throws<ConfigException>(() => ConfigLoader.Load("server", null, NoEnvironment, flags));

        Assert.Contains(ex.Errors, e => e.ToString() == "--cluster-dns: 10.99.0.10 is outside service-cidr 10.43.0.0/16; pick an address inside it, like the 10th");
    }

    [Fact]
    public void Load_AgentWithoutServerOrToken_SaysWhatIsMissing()
    {
        var ex = Assert.Throws<ConfigException>(() => ConfigLoader.Load("agent", null, NoEnvironment, NoFlags));

        Assert.Equal(
            [
                "--server: an agent needs the server to join; give --server https://SERVER:9345",
                "--token: an agent needs the server's token; give --token (see 'coracle token show' on the server)",
            ],
            ex.Errors.Select(e => e.ToString()));
    }
}
