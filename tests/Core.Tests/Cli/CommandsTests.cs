using Coracle.Core.Cli;
using Coracle.Core.Configuration;
using Coracle.Core.Status;
using Coracle.Core.Tests.Status;

namespace Coracle.Core.Tests.Cli;

/// <summary>Which node status, plugins list, kubectl and ctr talk to when the user names no data dir.</summary>
public sealed class CommandsTests : IDisposable
{
    private readonly TempDir _temp = new("crt-cli");

    public void Dispose() => _temp.Dispose();

    private string Running => _temp.Combine("running");

    private Dictionary<string, string> Env(params (string Key, string Value)[] extra)
    {
        var env = new Dictionary<string, string>
        {
            ["CORACLE_CONFIG_FILE"] = _temp.Write("empty.toml", ""),
            ["CORACLE_RUN_DIR"] = _temp.Combine("rundir"),
            ["HOME"] = _temp.Combine("home"),
        };
        foreach (var (key, value) in extra)
        {
            env[key] = value;
        }

        return env;
    }

    private static CoracleConfig Load(Dictionary<string, string> env, string? configFile = null, string? dataDirFlag = null)
    {
        var flags = new Dictionary<Setting, IReadOnlyList<string>>();
        if (dataDirFlag is not null)
        {
            flags[Settings.DataDir] = [dataDirFlag];
        }

        return ConfigLoader.Load("server", configFile, env, flags);
    }

    private void RecordRunningNode(Dictionary<string, string> env) => RunRecord.Write(Path.Combine(env["CORACLE_RUN_DIR"], "data-dir"), Running);

    private static NodeStatus WithStates(params string[] states) => new(
        "server", "node-a", "0.1.0", 4242, DateTimeOffset.UnixEpoch,
        [.. states.Select((state, i) => new ComponentView($"c{i}", "process", state, null, 0, DateTimeOffset.UnixEpoch, ""))],
        []);

    [Fact]
    public void Unhealthy_StartingPendingBackoffUnavailableOrReady_NoneSoStatusExitsZero()
    {
        Assert.Null(Commands.Unhealthy(WithStates("ready", "starting", "pending", "backoff", "unavailable", "stopped")));
    }

    [Fact]
    public void Unhealthy_FailedAndDegraded_NamedInOrderSoStatusExitsOne()
    {
        Assert.Equal("c1 is degraded, c3 is failed", Commands.Unhealthy(WithStates("ready", "degraded", "starting", "failed")));
    }

    [Fact]
    public void PreferRunningNode_NoDataDirGiven_TheRecordedRunningNode()
    {
        var env = Env();
        using var socket = RunRecordTests.ListenStatusSocket(Running);
        RecordRunningNode(env);

        var config = Commands.PreferRunningNode(Load(env), env);

        Assert.Equal(Running, config.DataDir);
        Assert.Equal(Path.Combine(Running, "run", "coracle.sock"), config.StatusSocket);
    }

    [Fact]
    public void PreferRunningNode_DataDirFlag_Kept()
    {
        var env = Env();
        using var socket = RunRecordTests.ListenStatusSocket(Running);
        RecordRunningNode(env);

        Assert.Equal("/srv/other", Commands.PreferRunningNode(Load(env, dataDirFlag: "/srv/other"), env).DataDir);
    }

    [Fact]
    public void PreferRunningNode_DataDirVariable_Kept()
    {
        var env = Env(("CORACLE_DATA_DIR", "/srv/other"));
        using var socket = RunRecordTests.ListenStatusSocket(Running);
        RecordRunningNode(env);

        Assert.Equal("/srv/other", Commands.PreferRunningNode(Load(env), env).DataDir);
    }

    [Fact]
    public void PreferRunningNode_DataDirInConfigFile_Kept()
    {
        var env = Env();
        var file = _temp.Write("appliance.toml", "data-dir = \"/srv/other\"\n");
        using var socket = RunRecordTests.ListenStatusSocket(Running);
        RecordRunningNode(env);

        Assert.Equal("/srv/other", Commands.PreferRunningNode(Load(env, configFile: file), env).DataDir);
    }

    [Fact]
    public void PreferRunningNode_StaleRecord_TheDefault()
    {
        var env = Env();
        RunRecordTests.DeadSocket(Path.Combine(Running, "run", "coracle.sock"));
        RecordRunningNode(env);
        var loaded = Load(env);

        Assert.Equal(loaded.DataDir, Commands.PreferRunningNode(loaded, env).DataDir);
        Assert.NotEqual(Running, loaded.DataDir);
    }
}
