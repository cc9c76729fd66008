using System.Net.Sockets;
using Coracle.Core.Node;
using Coracle.Core.Status;
using Coracle.Core.Tests.Status;

namespace Coracle.Core.Tests.Node;

/// <summary>
/// <c>coracle ctr</c>'s arguments (moved here from the containerd plugin, whose copy of the rule is gone), its fast
/// failure when the node recorded no runtime socket or the runtime does not answer, and how <c>ctr</c>/<c>kubectl</c>
/// find the running node. A fake <c>ctr</c> script records its arguments.
/// </summary>
public sealed class NodeToolsTests : IDisposable
{
    private readonly TempDir _temp = new("crt-ctr");
    private readonly StringWriter _errors = new();

    public void Dispose()
    {
        _errors.Dispose();
        _temp.Dispose();
    }

    private string DataDir => _temp.Combine("data");

    private string Marker => _temp.Combine("ctr-ran");

    private string DefaultSocket => Path.Combine(DataDir, "run", "containerd", "containerd.sock");

    /// <summary>DATA/run/node.json as a node that started writes it, its runtime endpoint <see cref="DefaultSocket"/>.</summary>
    private void RecordNode() => new NodeState { Role = "server", NodeName = "n", CriSocket = DefaultSocket }.Save(Path.Combine(DataDir, "run"));

    /// <summary>The environment of a user with no data dir flag: the config file empty, the record in the temp dir.</summary>
    private Dictionary<string, string> Environment(bool dataDirVariable = true)
    {
        _temp.WriteExecutable("bin/ctr", $"#!/bin/sh\necho \"$@\" > {Marker}\n");
        var env = new Dictionary<string, string>
        {
            ["CORACLE_CONFIG_FILE"] = _temp.Write("appliance.toml", ""),
            ["CORACLE_K8S_BIN"] = _temp.Combine("bin"),
            ["CORACLE_RUN_DIR"] = _temp.Combine("rundir"),
            ["PATH"] = "",
            ["HOME"] = _temp.Combine("home"),
        };
        if (dataDirVariable)
        {
            env["CORACLE_DATA_DIR"] = DataDir;
        }

        return env;
    }

    private static Socket Listen(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.Bind(new UnixDomainSocketEndPoint(path));
        socket.Listen(4);
        return socket;
    }

    [Fact]
    public async Task RunAsync_CtrNoRecordedRuntimeEndpoint_FailsWithOneLineErrorWithoutRunningCtr()
    {
        var code = await NodeTools.RunAsync("ctr", ["images", "ls"], Environment(), _errors);

        Assert.Equal(ExitCodes.RuntimeFailure, code);
        Assert.Equal(
            $"coracle: error: {Path.Combine(DataDir, "run", "node.json")} records no runtime endpoint; start the node with 'coracle server' first (check it with 'coracle status'), set CORACLE_DATA_DIR to its data dir or pass --address\n",
            _errors.ToString());
        Assert.False(File.Exists(Marker));
    }

    [Fact]
    public async Task RunAsync_CtrWithoutRuntimeSocket_FailsWithOneLineErrorWithoutRunningCtr()
    {
        RecordNode();

        var code = await NodeTools.RunAsync("ctr", ["images", "ls"], Environment(), _errors);

        Assert.Equal(ExitCodes.RuntimeFailure, code);
        Assert.Equal(
            $"coracle: error: {DefaultSocket}: the container runtime does not accept connections (no such socket); start the node with 'coracle server' (check it with 'coracle status') or set CORACLE_DATA_DIR to its data dir\n",
            _errors.ToString());
        Assert.False(File.Exists(Marker));
    }

    [Fact]
    public async Task RunAsync_CtrWithDeadContainerdSocket_FailsWithConnectionRefused()
    {
        // containerd died and left its socket file behind.
        RecordNode();
        RunRecordTests.DeadSocket(DefaultSocket);

        var code = await NodeTools.RunAsync("ctr", ["containers", "ls"], Environment(), _errors);

        Assert.Equal(ExitCodes.RuntimeFailure, code);
        Assert.StartsWith($"coracle: error: {DefaultSocket}: the container runtime does not accept connections (connection refused); ", _errors.ToString(), StringComparison.Ordinal);
        Assert.Single(_errors.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.False(File.Exists(Marker));
    }

    [Fact]
    public async Task RunAsync_CtrWithUserAddressNobodyAnswers_FailsNamingThatSocket()
    {
        var other = _temp.Combine("other.sock");

        var code = await NodeTools.RunAsync("ctr", ["--address", other, "version"], Environment(), _errors);

        Assert.Equal(ExitCodes.RuntimeFailure, code);
        Assert.StartsWith($"coracle: error: {other}: the container runtime does not accept connections (no such socket); ", _errors.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task RunAsync_CtrWithListeningSocket_RunsCtrOnIt()
    {
        RecordNode();
        using var containerd = Listen(DefaultSocket);

        var code = await NodeTools.RunAsync("ctr", ["images", "ls"], Environment(), _errors);

        Assert.Equal(0, code);
        Assert.Equal($"--address {DefaultSocket} --namespace k8s.io images ls\n", File.ReadAllText(Marker));
        Assert.Empty(_errors.ToString());
    }

    [Fact]
    public async Task RunAsync_CtrUserAddressNoRecordedNode_RunsCtrOnThatAddress()
    {
        var other = _temp.Combine("other.sock");
        using var runtime = Listen(other);

        var code = await NodeTools.RunAsync("ctr", ["--address", other, "images", "ls"], Environment(), _errors);

        Assert.Equal(0, code);
        Assert.Equal($"--namespace k8s.io --address {other} images ls\n", File.ReadAllText(Marker));
        Assert.Empty(_errors.ToString());
    }

    [Fact]
    public async Task RunAsync_CtrHelp_RunsWithoutASocket()
    {
        var code = await NodeTools.RunAsync("ctr", ["--help"], Environment(), _errors);

        Assert.Equal(0, code);
        Assert.True(File.Exists(Marker));
    }

    [Fact]
    public async Task RunAsync_NoDataDirGiven_UsesTheRecordedRunningNode()
    {
        var env = Environment(dataDirVariable: false);
        using var status = RunRecordTests.ListenStatusSocket(DataDir);
        RecordNode();
        using var containerd = Listen(DefaultSocket);
        RunRecord.Write(Path.Combine(env["CORACLE_RUN_DIR"], "data-dir"), DataDir);

        var code = await NodeTools.RunAsync("ctr", ["tasks", "ls"], env, _errors);

        Assert.Equal(0, code);
        Assert.Equal($"--address {DefaultSocket} --namespace k8s.io tasks ls\n", File.ReadAllText(Marker));
    }

    [Fact]
    public async Task RunAsync_StaleRecord_FallsBackToTheDefaultDataDir()
    {
        var env = Environment(dataDirVariable: false);
        // The node was killed: its record and socket file stay, nothing answers.
        RunRecordTests.DeadSocket(Path.Combine(DataDir, "run", "coracle.sock"));

        using var containerd = Listen(DefaultSocket);
        RunRecord.Write(Path.Combine(env["CORACLE_RUN_DIR"], "data-dir"), DataDir);

        await NodeTools.RunAsync("ctr", ["tasks", "ls"], env, _errors);

        // The default data dir (/var/lib/coracle as root) was used, whatever runs there: never the stale record's.
        Assert.False(File.Exists(Marker) && File.ReadAllText(Marker).Contains(DataDir, StringComparison.Ordinal));
        Assert.DoesNotContain(DataDir, _errors.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(new[] { "images", "ls" }, "/s")]
    [InlineData(new[] { "-n", "default", "containers", "ls" }, "/s")]
    [InlineData(new[] { "--address", "/other.sock", "version" }, "/other.sock")]
    [InlineData(new[] { "-a=unix:///other.sock", "version" }, "/other.sock")]
    [InlineData(new[] { "--address=/x.sock", "version" }, "/x.sock")]
    [InlineData(new[] { "--address", "tcp://127.0.0.1:1", "version" }, null)]
    [InlineData(new string[0], null)]
    [InlineData(new[] { "--help" }, null)]
    [InlineData(new[] { "images", "--help" }, null)]
    [InlineData(new[] { "help" }, null)]
    [InlineData(new[] { "--version" }, null)]
    [InlineData(new[] { "-n", "x" }, null)]
    public void CtrDialledSocket_Arguments_TheSocketToCheck(string[] args, string? expected) =>
        Assert.Equal(expected, NodeTools.CtrDialledSocket("/s", args));

    [Fact]
    public void CtrArguments_PlainCommand_AddsAddressAndK8sNamespace()
    {
        Assert.Equal(
            ["--address", "/run/coracle/containerd/containerd.sock", "--namespace", "k8s.io", "images", "ls"],
            NodeTools.CtrArguments("/run/coracle/containerd/containerd.sock", ["images", "ls"], null));
    }

    [Fact]
    public void CtrArguments_UserNamespace_Kept()
    {
        Assert.Equal(
            ["--address", "/s", "-n", "default", "containers", "ls"],
            NodeTools.CtrArguments("/s", ["-n", "default", "containers", "ls"], null));
    }

    [Fact]
    public void CtrArguments_UserAddressAndNamespaceFlags_NothingAdded()
    {
        Assert.Equal(
            ["-a", "/other.sock", "--namespace=x", "version"],
            NodeTools.CtrArguments("/s", ["-a", "/other.sock", "--namespace=x", "version"], null));
    }

    [Fact]
    public void CtrArguments_NamespaceFromEnvironment_NotOverridden()
    {
        Assert.Equal(["--address", "/s", "tasks", "ls"], NodeTools.CtrArguments("/s", ["tasks", "ls"], "moby"));
    }

    [Fact]
    public void CtrArguments_FlagAfterSubcommand_NotTakenAsGlobal()
    {
        Assert.Equal(
            ["--address", "/s", "--namespace", "k8s.io", "images", "ls", "-n", "x"],
            NodeTools.CtrArguments("/s", ["images", "ls", "-n", "x"], null));
    }
}
