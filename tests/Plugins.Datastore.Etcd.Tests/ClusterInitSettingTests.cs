using Coracle.Core.Configuration;

namespace Coracle.Plugins.Datastore.Etcd.Tests;

/// <summary>Core's <c>--cluster-init</c> setting: off by default, and refused beside a datastore endpoint (exit 2).</summary>
public sealed class ClusterInitSettingTests
{
    private static CoracleConfig Load(params (Setting Setting, string Value)[] flags)
    {
        var all = new Dictionary<Setting, IReadOnlyList<string>>
        {
            [Settings.DataDir] = ["/tmp/etcdh-config"],
            [Settings.NodeName] = ["node-a"],
            [Settings.NodeIp] = ["192.168.50.10"],
        };
        foreach (var (setting, value) in flags)
        {
            all[setting] = [value];
        }

        return ConfigLoader.Load("server", null, new Dictionary<string, string> { ["CORACLE_CONFIG_FILE"] = "", ["HOME"] = "/root" }, all);
    }

    [Fact]
    public void Load_ClusterInit_OffByDefaultOnWithTheFlag()
    {
        Assert.False(Load().ClusterInit);
        Assert.True(Load((Settings.ClusterInit, "true")).ClusterInit);
    }

    [Fact]
    public void Load_ClusterInitWithDatastoreEndpoint_OneLineErrorExit2()
    {
        var e = Assert.Throws<ConfigException>(() => Load((Settings.ClusterInit, "true"), (Settings.DatastoreEndpoint, "https://db:2379")));
        Assert.Equal("--cluster-init: an embedded etcd cannot run beside datastore-endpoint's datastore; remove one of them", Assert.Single(e.Errors).ToString());
    }
}
