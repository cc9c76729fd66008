using Coracle.Core.Configuration;
using Coracle.Core.Hosting;
using Coracle.Core.Node;
using Coracle.Core.Supervision;
using Coracle.Integration.Tests.Support;

namespace Coracle.Integration.Tests.Hosting;

/// <summary>
/// Step <c>datastore</c> (<see cref="NodeSteps.ConfigureDatastoreEarly"/>) with the real SQL datastore plugin, as the
/// build placed it in the host's plugins/ folder: on its unix socket it needs no certificate, so it is configured and
/// started before step certificates; with <c>listen-address</c> it reads the node's certificates, so it is left to step
/// configure plugins, registering nothing, and a missing certificate still stops the start there with its one-line error.
/// </summary>
[Trait("Category", "Integration")]
public sealed class EarlyDatastoreTests : IDisposable
{
    private readonly TempDir _temp = new("coracle-early-ds");
    private readonly ListLoggerFactory _loggers = new();
    private readonly Supervisor _supervisor;

    public EarlyDatastoreTests()
    {
        var plugins = _temp.Combine("plugins");
        Directory.CreateDirectory(plugins);
        File.SetUnixFileMode(plugins, (UnixFileMode)0x1ED);
        foreach (var plugin in new[] { "Coracle.Plugins.Datastore.Sql", "Coracle.Plugins.Runtime.Containerd" })
        {
            TestPlugins.CopyTree(Path.Combine(TestPlugins.CoreOutputDir, "plugins", plugin), Path.Combine(plugins, plugin));
        }

        _supervisor = new Supervisor(_loggers);
    }

    public void Dispose()
    {
        _supervisor.StopAsync().GetAwaiter().GetResult();
        _temp.Dispose();
    }

    private string DataDir => _temp.Combine("data");

    private NodeSteps Steps(string sqliteOptions = "")
    {
        var configFile = _temp.Combine("coracle.toml");
        File.WriteAllText(configFile, sqliteOptions.Length > 0 ? $"[plugins.sqlite]\n{sqliteOptions}\n" : "");
        var flags = new Dictionary<Setting, IReadOnlyList<string>>
        {
            [Settings.DataDir] = [DataDir],
            [Settings.NodeName] = ["node-a"],
            [Settings.NodeIp] = ["192.168.50.10"],
            [Settings.PluginDirs] = [_temp.Combine("plugins")],
            [Settings.Cni] = ["none"],
            [Settings.WriteKubeconfig] = [_temp.Combine("admin.yaml")],
        };
        var env = new Dictionary<string, string> { ["CORACLE_CONFIG_FILE"] = configFile, ["HOME"] = _temp.Path };
        var plan = StartPlan.Make("server", configFile, env, flags, "x64");
        Assert.Empty(plan.Errors);
        return new NodeSteps(plan, plan.Config, _loggers, new HostFacts(false, false, new Dictionary<string, string>(), false));
    }

    [Fact]
    public async Task ConfigureDatastoreEarly_SqliteOnItsSocket_StartsItBeforeAnyCertificateExists()
    {
        var steps = Steps();

        Assert.True(steps.ConfigureDatastoreEarly(_supervisor));

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await _supervisor.WaitReadyAsync("datastore", timeout.Token);
        Assert.False(Directory.Exists(Path.Combine(DataDir, "server", "tls")));
        Assert.Contains(_loggers.Lines, l => l.EndsWith("datastore: started early, while the start-up steps go on", StringComparison.Ordinal));
        Assert.True(File.Exists(Path.Combine(DataDir, "server", "db", "etcd.sock")));
    }

    [Fact]
    public void ConfigureDatastoreEarly_ListenAddressNeedsTheDatastoreCertificate_RegistersNothingAndLeavesItToConfigurePlugins()
    {
        var steps = Steps("listen-address = \"127.0.0.1:2379\"");

        Assert.False(steps.ConfigureDatastoreEarly(_supervisor));

        Assert.Empty(_supervisor.Snapshot());
        Assert.Contains(_loggers.Lines, l => l.EndsWith(
            "datastore plugin sqlite reads the node's certificates; it is configured and started after step certificates, token and kubeconfigs", StringComparison.Ordinal));
        Assert.DoesNotContain(_loggers.Lines, l => l.Contains("started early", StringComparison.Ordinal));
    }

    [Fact]
    public void ConfigurePlugins_ListenAddressWithoutCertificates_FailsThereWithTheOneLineError()
    {
        var steps = Steps("listen-address = \"127.0.0.1:2379\"");
        Assert.False(steps.ConfigureDatastoreEarly(_supervisor));

        var error = Assert.Throws<ConfigException>(() => steps.ConfigurePlugins(_supervisor));

        Assert.Contains("listen-address needs the node's 'datastore' TLS certificate, which is missing; run the server once to create certificates or remove listen-address", error.Message, StringComparison.Ordinal);
        Assert.Empty(_supervisor.Snapshot());
    }
}
