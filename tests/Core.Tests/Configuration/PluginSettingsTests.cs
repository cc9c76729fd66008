using Coracle.Core.Composition;
using Coracle.Core.Configuration;
using Coracle.Core.Hosting;
using Coracle.Core.Join;
using Coracle.Core.Tests.Support;
using Coracle.Plugins;

namespace Coracle.Core.Tests.Configuration;

/// <summary>
/// Settings a plugin declares go through the same table as Coracle's own: TOML key with its position, flag,
/// environment variable, default, allowed values, <c>config default</c>, and the agent's copy of cluster-wide values.
/// </summary>
public sealed class PluginSettingsTests : IDisposable
{
    private static readonly Dictionary<string, string> NoEnvironment = new() { ["HOME"] = "/home/test" };
    private static readonly Dictionary<Setting, IReadOnlyList<string>> NoFlags = [];
    private readonly TempDir _dir = new("coracle-plugin-settings");

    public void Dispose() => _dir.Dispose();

    private string Toml(string text)
    {
        var path = _dir.Combine($"a{Guid.NewGuid():N}.toml");
        File.WriteAllText(path, text);
        return path;
    }

    private static (CoracleConfig Config, IReadOnlyList<string> Errors) Load(string? file, Dictionary<string, string>? env = null, Dictionary<Setting, IReadOnlyList<string>>? flags = null)
    {
        var (config, errors) = ConfigLoader.LoadAll("server", file, env ?? new Dictionary<string, string>(NoEnvironment) { ["CORACLE_CONFIG_FILE"] = "" }, flags ?? NoFlags, FakeFlannel.Settings);
        return (config, errors.Select(e => e.ToString()).ToList());
    }

    [Fact]
    public void Declared_NamesFollowThePluginAndK3s()
    {
        var backend = FakeFlannel.Backend;
        var vni = FakeFlannel.Settings.Single(s => s.Key == "vni");

        Assert.Equal("flannel-backend", backend.Flag);
        Assert.Equal("CORACLE_FLANNEL_BACKEND", backend.EnvironmentVariable);
        Assert.Equal("plugins.flannel.backend", backend.Path);
        Assert.True(backend.ServerOnly); // cluster-wide: agents take the server's
        Assert.Equal("flannel-vni", vni.Flag);
        Assert.Equal(SettingKind.Integer, vni.Kind);
        Assert.Equal(["flannel-masq"], FakeFlannel.Settings.Single(s => s.Key == "ip-masq").Aliases);
    }

    [Fact]
    public void Load_NothingGiven_HandsThePluginEveryDefault()
    {
        var (config, errors) = Load(null);

        Assert.Empty(errors);
        Assert.Equal(new Dictionary<string, string> { ["backend"] = "vxlan", ["iface"] = "", ["vni"] = "1", ["ip-masq"] = "true" }, config.OptionsOf("flannel"));
        Assert.Equal("default", config.Sources[FakeFlannel.Backend].Source);
    }

    [Fact]
    public void Load_TomlThenEnvironmentThenFlag_LaterWinsWithItsSource()
    {
        var file = Toml("[plugins.flannel]\nbackend = \"host-gw\"\nvni = 7\n");

        var (fromFile, _) = Load(file);
        var (fromEnv, _) = Load(file, new Dictionary<string, string>(NoEnvironment) { ["CORACLE_FLANNEL_BACKEND"] = "none" });
        var (fromFlag, _) = Load(file, new Dictionary<string, string>(NoEnvironment) { ["CORACLE_FLANNEL_BACKEND"] = "none" },
            new Dictionary<Setting, IReadOnlyList<string>> { [FakeFlannel.Backend] = ["vxlan"] });

        Assert.Equal("host-gw", fromFile.OptionsOf("flannel")["backend"]);
        Assert.Equal("7", fromFile.OptionsOf("flannel")["vni"]);
        Assert.Equal($"{file}:2:1", fromFile.Sources[FakeFlannel.Backend].Source);
        Assert.Equal("none", fromEnv.OptionsOf("flannel")["backend"]);
        Assert.Equal("CORACLE_FLANNEL_BACKEND", fromEnv.Sources[FakeFlannel.Backend].Source);
        Assert.Equal("vxlan", fromFlag.OptionsOf("flannel")["backend"]);
        Assert.Equal("--flannel-backend", fromFlag.Sources[FakeFlannel.Backend].Source);
    }

    [Fact]
    public void Load_BadValues_AreReportedTogetherWithPositionsLikeCoreSettings()
    {
        var file = Toml("[plugins.flannel]\nbackend = \"wireguard\"\nvni = \"seven\"\nbakend = \"x\"\n\n[server]\ncluster-cidr = \"nope\"\n");

        var (_, errors) = Load(file, new Dictionary<string, string>(NoEnvironment) { ["CORACLE_FLANNEL_VNI"] = "x" });

        Assert.Equal(
        [
            $"{file}:2:11: plugins.flannel.backend: 'wireguard' is not one of vxlan, host-gw, none",
            $"{file}:3:7: plugins.flannel.vni: expected a whole number, found a string",
            $"{file}:4:1: unknown key 'bakend' in [plugins.flannel]; did you mean 'backend'?; the flannel plugin's keys: backend, iface, vni, ip-masq",
            $"{file}:7:16: server.cluster-cidr: 'nope' is not a valid CIDR; use a network like 10.42.0.0/16",
            "CORACLE_FLANNEL_VNI: 'x' is not a whole number",
        ], errors);
    }

    [Fact]
    public void Load_PluginFlagWrittenAsACoreKey_SaysWhereItBelongs()
    {
        var file = Toml("flannel-backend = \"host-gw\"\n");

        var (_, errors) = Load(file);

        Assert.Equal([$"{file}:1:1: unknown key 'flannel-backend'; 'flannel-backend' is the flannel plugin's: write it as backend under [plugins.flannel] (the shipped appliance.toml lists every key)"], errors);
    }

    [Fact]
    public void Load_TableOfAPluginWithoutDeclarations_PassesThroughAsWritten()
    {
        var file = Toml("[plugins.other]\nanything = \"goes\"\n");

        var (config, errors) = Load(file);

        Assert.Empty(errors);
        Assert.Equal("goes", config.OptionsOf("other")["anything"]);
    }

    [Fact]
    public void DefaultConfig_ListsPluginSettingsInTheirTable()
    {
        var text = DefaultConfigWriter.Render(FakeFlannel.Settings);

        Assert.Contains("\n[plugins.flannel]\n# Settings of the flannel plugin (used when it is installed)\n", text, StringComparison.Ordinal);
        Assert.Contains("# Flannel backend; none turns flannel off (vxlan | host-gw | none).\n# flag --flannel-backend (server; agents take the server's value), env CORACLE_FLANNEL_BACKEND\nbackend = \"vxlan\"\n", text, StringComparison.Ordinal);
        Assert.Contains("\nvni = 1\n", text, StringComparison.Ordinal);

        // Read back, the rendered file gives the defaults and no error.
        var (config, errors) = Load(Toml(text));
        Assert.Empty(errors);
        Assert.Equal("vxlan", config.OptionsOf("flannel")["backend"]);
    }

    [Fact]
    public void Check_FlagTakenByCoracleOrAnotherPlugin_IsAnError()
    {
        var clash = FakeFlannel.Entry with
        {
            Metadata = new PluginMetadata("other", ExtensionPoints.Cni),
            Folder = "/plugins/other",
            Settings = [FakeFlannel.Backend with { Plugin = "other" }, FakeFlannel.Backend with { Plugin = "other", Key = "x", Flag = "node-ip" }],
        };

        var errors = PluginSettings.Check([FakeFlannel.Entry, clash]);

        Assert.Equal(
        [
            "plugin 'other' in /plugins/other declares flag --flannel-backend, which plugin flannel already has; rename the flag in its [PluginSetting] attribute",
            "plugin 'other' in /plugins/other declares flag --node-ip, which coracle already has; rename the flag in its [PluginSetting] attribute",
        ], errors);
    }

    [Fact]
    public void AgentJoined_TakesTheServersClusterWideValuesOnly()
    {
        var (agentConfig, _) = ConfigLoader.LoadAll("agent", null, new Dictionary<string, string>(NoEnvironment) { ["CORACLE_CONFIG_FILE"] = "" },
            new Dictionary<Setting, IReadOnlyList<string>> { [Settings.Server] = ["https://10.0.0.1:9345"], [Settings.Token] = ["K10abc::server:secret"] },
            FakeFlannel.Settings);
        var cluster = new ClusterConfigResponse
        {
            ClusterCidr = "10.60.0.0/16",
            ServiceCidr = "10.61.0.0/16",
            ClusterDns = "10.61.0.10",
            ClusterDomain = "edge.local",
            ServerUrl = "https://10.0.0.1:6443",
            ServerNodeName = "server",
            PluginSettings = new() { ["flannel"] = new() { ["backend"] = "none", ["iface"] = "eth9" }, ["absent"] = new() { ["x"] = "y" } },
        };

        var joined = AgentStart.Joined(agentConfig, cluster, FakeFlannel.Settings);

        Assert.Equal("10.60.0.0/16", joined.ClusterCidr.ToString());
        Assert.Equal("none", joined.OptionsOf("flannel")["backend"]);
        Assert.Equal("server", joined.Sources[FakeFlannel.Backend].Source);
        Assert.Equal("", joined.OptionsOf("flannel")["iface"]); // not cluster-wide: the agent's own
        Assert.Equal(FakeFlannel.Backend, PluginSelector.TurnedOffBy(FakeFlannel.Entry, joined));
        Assert.Null(PluginSelector.TurnedOffBy(FakeFlannel.Entry, agentConfig));
        Assert.Equal("vxlan", agentConfig.OptionsOf("flannel")["backend"]); // the original is unchanged
        Assert.Equal("none", joined.LoadBalancer); // the server named no load balancer: the agent runs none
        Assert.Equal("servicelb", AgentStart.Joined(agentConfig, cluster with { LoadBalancer = "servicelb" }, FakeFlannel.Settings).LoadBalancer);
        Assert.Equal("none", joined.Ingress); // nor an ingress
        Assert.Equal("yarp", AgentStart.Joined(agentConfig, cluster with { Ingress = "yarp" }, FakeFlannel.Settings).Ingress);
    }
}
