using Coracle.Core.Configuration;
using Coracle.Core.Hosting;
using Coracle.Core.Node;
using Coracle.Core.Supervision;
using Coracle.Integration.Tests.Support;

namespace Coracle.Integration.Tests.Hosting;

/// <summary>
/// The configure-plugins step with real add-on plugin assemblies: an active add-on writes its NAME.yaml into
/// DATA/server/manifests; one that is off (--disable, its own TurnsOff value, not implemented) has it removed at start, so
/// the manifests controller deletes its objects; an agent leaves the folder alone.
/// </summary>
[Trait("Category", "Integration")]
public sealed class AddonManifestsTests : IDisposable
{
    private readonly TempDir _temp = new("coracle-addons");
    private readonly string _plugins;

    public AddonManifestsTests()
    {
        _plugins = _temp.Combine("plugins");
        TestPlugins.Install(_plugins, TestPlugins.Basic, TestPlugins.Addon);
    }

    public void Dispose() => _temp.Dispose();

    private string Manifests => _temp.Combine("data", "server", "manifests");

    private string Configure(string role = "server", Dictionary<string, string>? environment = null, params string[] disable)
    {
        var flags = new Dictionary<Setting, IReadOnlyList<string>>
        {
            [Settings.DataDir] = [_temp.Combine("data")],
            [Settings.NodeName] = ["node-a"],
            [Settings.NodeIp] = ["192.168.50.10"],
            [Settings.PluginDirs] = [_plugins],
        };
        if (disable.Length > 0)
        {
            flags[Settings.Disable] = disable;
        }

        if (role == "server")
        {
            flags[Settings.WriteKubeconfig] = [_temp.Combine("admin.yaml")];
        }
        else
        {
            flags[Settings.Server] = ["https://192.168.50.1:9345"];
            flags[Settings.Token] = ["K10abc::server:secret"];
        }

        var env = new Dictionary<string, string>(environment ?? []) { ["CORACLE_CONFIG_FILE"] = "", ["HOME"] = _temp.Path };
        var plan = StartPlan.Make(role, null, env, flags, "x64");
        Assert.Empty(plan.Errors);
        var loggers = new ListLoggerFactory();
        var steps = new NodeSteps(plan, plan.Config, loggers, new HostFacts(false, false, new Dictionary<string, string>(), false));
        var supervisor = new Supervisor(loggers);
        try
        {
            steps.ConfigurePlugins(supervisor);
        }
        finally
        {
            // The datastore starts early, during ConfigurePlugins.
            supervisor.StopAsync().GetAwaiter().GetResult();
        }

        return string.Join('\n', loggers.Lines);
    }

    [Fact]
    public void ConfigurePlugins_ActiveAddon_WritesItsManifest()
    {
        var log = Configure();

        Assert.Equal("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: test-addon\n  namespace: default\ndata:\n  mode: on\n",
            File.ReadAllText(Path.Combine(Manifests, "test-addon.yaml")));
        Assert.DoesNotContain("addon test-addon is off", log, StringComparison.Ordinal);
    }

    [Fact]
    public void ConfigurePlugins_DisabledAddon_RemovesItsManifestAndReEnablingWritesItBack()
    {
        Configure();

        var log = Configure(disable: "test-addon");

        Assert.False(File.Exists(Path.Combine(Manifests, "test-addon.yaml")));
        Assert.Contains("[coracle] addon test-addon is off (disabled by --disable); its manifest test-addon.yaml is removed", log, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(Manifests, "traefik.yaml")), "other plugins' manifests stay");

        Configure();

        Assert.True(File.Exists(Path.Combine(Manifests, "test-addon.yaml")));
    }

    [Fact]
    public void ConfigurePlugins_AddonTurnedOffByItsSetting_RemovesItsManifest()
    {
        Configure();

        var log = Configure(environment: new() { ["CORACLE_TEST_ADDON_MODE"] = "off" });

        Assert.False(File.Exists(Path.Combine(Manifests, "test-addon.yaml")));
        Assert.Contains("[coracle] addon test-addon is off (CORACLE_TEST_ADDON_MODE = off); its manifest test-addon.yaml is removed", log, StringComparison.Ordinal);
    }

    [Fact]
    public void ConfigurePlugins_AddonNotImplemented_RemovesAStaleManifest()
    {
        Directory.CreateDirectory(Manifests);
        File.WriteAllText(Path.Combine(Manifests, "idle-addon.yaml"), "kind: Stale\n");

        var log = Configure();

        Assert.False(File.Exists(Path.Combine(Manifests, "idle-addon.yaml")));
        Assert.Contains("[coracle] addon idle-addon is off (not implemented in this build); its manifest idle-addon.yaml is removed", log, StringComparison.Ordinal);
    }

    [Fact]
    public void ConfigurePlugins_Agent_LeavesTheManifestsFolderAlone()
    {
        Directory.CreateDirectory(Manifests);
        File.WriteAllText(Path.Combine(Manifests, "test-addon.yaml"), "kind: Kept\n");

        var log = Configure("agent");

        Assert.Equal("kind: Kept\n", File.ReadAllText(Path.Combine(Manifests, "test-addon.yaml")));
        Assert.DoesNotContain("addon ", log, StringComparison.Ordinal);
    }
}
