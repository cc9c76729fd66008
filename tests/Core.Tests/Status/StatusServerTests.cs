using Coracle.Core.Status;
using Microsoft.Extensions.Logging.Abstractions;

namespace Coracle.Core.Tests.Status;

/// <summary>The status socket: a real <see cref="StatusServer"/> on a temp unix socket, read by <see cref="StatusClient"/>.</summary>
public sealed class StatusServerTests : IDisposable
{
    private static readonly TimeSpan HangGuard = TimeSpan.FromSeconds(30);
    private readonly TempDir _temp = new("crt-st");

    public void Dispose() => _temp.Dispose();

    private string SocketPath => _temp.Combine("run", "coracle.sock");

    private static NodeStatus Snapshot(string nodeName = "node-a") => new(
        "server",
        nodeName,
        "0.1.0",
        4242,
        new DateTimeOffset(2025, 1, 2, 3, 4, 5, TimeSpan.Zero),
        [new ComponentView("kubelet", "process", "running", 99, 2, new DateTimeOffset(2025, 1, 2, 3, 5, 0, TimeSpan.Zero), "ready")],
        [new PluginView("sqlite", "datastore", "1.0.0", "x64,arm64", true, "default", "/plugins/sqlite")]);

    private static async Task<NodeStatus?> ReadAsync(string path)
    {
        using var guard = new CancellationTokenSource(HangGuard);
        return await StatusClient.ReadAsync(path, guard.Token);
    }

    [Fact]
    public async Task Constructor_NewSocket_IsOwnerReadWriteOnlyInAPrivateDirectory()
    {
        await using var server = new StatusServer(SocketPath, () => Snapshot(), NullLogger.Instance);

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(SocketPath));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Path.GetDirectoryName(SocketPath)!));
    }

    [Fact]
    public async Task ReadAsync_ServerRunning_ReturnsTheCallbacksSnapshot()
    {
        var expected = Snapshot();
        await using var server = new StatusServer(SocketPath, () => expected, NullLogger.Instance);

        var status = await ReadAsync(SocketPath);

        Assert.NotNull(status);
        Assert.Equal(expected.Role, status.Role);
        Assert.Equal(expected.NodeName, status.NodeName);
        Assert.Equal(expected.Version, status.Version);
        Assert.Equal(expected.Pid, status.Pid);
        Assert.Equal(expected.StartedAt, status.StartedAt);
        Assert.Equal(expected.Components, status.Components);
        Assert.Equal(expected.Plugins, status.Plugins);
    }

    [Fact]
    public async Task ReadAsync_NodeWithAddons_CarriesTheAddonRows()
    {
        var addon = new AddonView("coredns", "coredns.yaml", "applied", 8, 0, 1, ["docker.io/rancher/mirrored-coredns-coredns:1.10.1"],
            "image missing: docker.io/rancher/mirrored-coredns-coredns:1.10.1 (put it in DATA/agent/images or a registry)");
        await using var server = new StatusServer(SocketPath, () => Snapshot() with { Addons = [addon] }, NullLogger.Instance);

        var status = await ReadAsync(SocketPath);

        var read = Assert.Single(status!.Addons!);
        Assert.Equal(addon with { MissingImages = [] }, read with { MissingImages = [] });
        Assert.Equal(addon.MissingImages, read.MissingImages);
    }

    [Fact]
    public async Task ReadAsync_EachRequest_TakesAFreshSnapshot()
    {
        var calls = 0;
        await using var server = new StatusServer(SocketPath, () => Snapshot($"node-{Interlocked.Increment(ref calls)}"), NullLogger.Instance);

        var first = await ReadAsync(SocketPath);
        var second = await ReadAsync(SocketPath);

        Assert.Equal("node-1", first?.NodeName);
        Assert.Equal("node-2", second?.NodeName);
    }

    [Fact]
    public async Task Constructor_SocketAlreadyServed_ThrowsAnotherCoracleIsRunning()
    {
        await using var first = new StatusServer(SocketPath, () => Snapshot("first"), NullLogger.Instance);

        var ex = Assert.Throws<InvalidOperationException>(() => new StatusServer(SocketPath, () => Snapshot("second"), NullLogger.Instance));

        Assert.Equal($"another coracle is already running with this data dir ({SocketPath} answers); stop it first", ex.Message);
        Assert.Equal("first", (await ReadAsync(SocketPath))?.NodeName);
    }

    [Fact]
    public async Task Constructor_StaleSocketFile_ReplacesItAndServes()
    {
        RunRecordTests.DeadSocket(SocketPath);
        Assert.True(File.Exists(SocketPath));

        await using var server = new StatusServer(SocketPath, () => Snapshot("fresh"), NullLogger.Instance);

        Assert.Equal("fresh", (await ReadAsync(SocketPath))?.NodeName);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(SocketPath));
    }

    [Fact]
    public async Task Constructor_RegularFileInThePlace_ReplacesIt()
    {
        _temp.Write(Path.Combine("run", "coracle.sock"), "not a socket");

        await using var server = new StatusServer(SocketPath, () => Snapshot("fresh"), NullLogger.Instance);

        Assert.Equal("fresh", (await ReadAsync(SocketPath))?.NodeName);
    }

    [Fact]
    public async Task DisposeAsync_Stopped_RemovesTheSocketAndClientsGetNull()
    {
        var server = new StatusServer(SocketPath, () => Snapshot(), NullLogger.Instance);
        Assert.NotNull(await ReadAsync(SocketPath));

        await server.DisposeAsync();

        Assert.False(File.Exists(SocketPath));
        Assert.Null(await ReadAsync(SocketPath));
    }

    [Fact]
    public async Task ReadAsync_NoSocketFile_ReturnsNull()
    {
        Assert.Null(await ReadAsync(SocketPath));
        Assert.False(StatusClient.TryConnect(SocketPath));
    }

    [Fact]
    public async Task ReadAsync_StaleSocketFileWithoutListener_ReturnsNull()
    {
        RunRecordTests.DeadSocket(SocketPath);

        Assert.Null(await ReadAsync(SocketPath));
        Assert.False(StatusClient.TryConnect(SocketPath));
    }

    [Fact]
    public void TryConnect_PathLongerThanASocketAddress_ReturnsFalse()
    {
        var path = _temp.Combine(new string('x', 200) + ".sock");

        Assert.False(StatusClient.TryConnect(path));
    }

    [Fact]
    public void TryConnect_ListeningSocket_ReturnsTrue()
    {
        using var listener = RunRecordTests.ListenStatusSocket(_temp.Path);

        Assert.True(StatusClient.TryConnect(_temp.Combine("run", "coracle.sock")));
    }

    [Fact]
    public async Task ReadAsync_SeveralClientsAtOnce_AllGetTheSnapshot()
    {
        await using var server = new StatusServer(SocketPath, () => Snapshot(), NullLogger.Instance);

        var all = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => ReadAsync(SocketPath))).WaitAsync(HangGuard);

        Assert.All(all, s => Assert.Equal("node-a", s?.NodeName));
    }

    /// <summary>
    /// More clients at once than a listen backlog holds: on Linux a connect to a unix socket whose backlog is full fails
    /// with EAGAIN at once; the client must try again rather than report "no node running" (killall relies on it).
    /// </summary>
    [Fact]
    public async Task ReadAsync_MoreClientsAtOnceThanTheBacklog_AllGetTheSnapshot()
    {
        await using var server = new StatusServer(SocketPath, () => Snapshot(), NullLogger.Instance);

        var all = await Task.WhenAll(Enumerable.Range(0, 64).Select(_ => ReadAsync(SocketPath))).WaitAsync(HangGuard);

        Assert.All(all, s => Assert.Equal("node-a", s?.NodeName));
    }
}
