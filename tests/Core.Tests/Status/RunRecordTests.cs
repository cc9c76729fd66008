using System.Net.Sockets;
using Coracle.Core.Status;

namespace Coracle.Core.Tests.Status;

/// <summary>The running node's data dir, recorded so the tools find it without --data-dir.</summary>
public sealed class RunRecordTests : IDisposable
{
    private readonly TempDir _temp = new("crt-rec");

    public void Dispose() => _temp.Dispose();

    private string RecordFile => _temp.Combine("run", "data-dir");

    /// <summary>A listening status socket, as a running node has.</summary>
    internal static Socket ListenStatusSocket(string dataDir)
    {
        Directory.CreateDirectory(Path.Combine(dataDir, "run"));
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.Bind(new UnixDomainSocketEndPoint(Path.Combine(dataDir, "run", "coracle.sock")));
        socket.Listen(4);
        return socket;
    }

    /// <summary>
    /// A socket file nobody listens on, as a killed node leaves it. (.NET removes the file of a socket it bound when
    /// the socket is disposed, so the file is bound under another name and moved into place first.)
    /// </summary>
    internal static void DeadSocket(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var bound = path + ".bound";
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.Bind(new UnixDomainSocketEndPoint(bound));
        socket.Listen(1);
        File.Move(bound, path);
    }

    [Theory]
    [InlineData(true, null, "/run/coracle/data-dir")]
    [InlineData(false, "/run/user/1000", "/run/user/1000/coracle/data-dir")]
    [InlineData(false, null, "/home/ann/.coracle/run-data-dir")]
    [InlineData(false, "", "/home/ann/.coracle/run-data-dir")]
    public void PathFor_UserAndEnvironment_TheWellKnownPlace(bool root, string? xdgRuntimeDir, string expected)
    {
        var env = new Dictionary<string, string> { ["HOME"] = "/home/ann" };
        if (xdgRuntimeDir is not null)
        {
            env["XDG_RUNTIME_DIR"] = xdgRuntimeDir;
        }

        Assert.Equal(expected, RunRecord.PathFor(env, root));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void PathFor_CoracleRunDirSet_Overrides(bool root)
    {
        var env = new Dictionary<string, string> { ["CORACLE_RUN_DIR"] = "/tmp/r", ["XDG_RUNTIME_DIR"] = "/run/user/1000" };

        Assert.Equal("/tmp/r/data-dir", RunRecord.PathFor(env, root));
    }

    [Fact]
    public void Write_ThenRead_TheDataDirIn0600FileOf0700Folder()
    {
        RunRecord.Write(RecordFile, "/var/lib/coracle");

        Assert.Equal("/var/lib/coracle", RunRecord.Read(RecordFile));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(RecordFile));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(_temp.Combine("run")));
        Assert.Equal(["data-dir"], Directory.GetFiles(_temp.Combine("run")).Select(Path.GetFileName));
    }

    [Fact]
    public void Write_SecondNode_ReplacesTheRecord()
    {
        RunRecord.Write(RecordFile, "/data/one");
        RunRecord.Write(RecordFile, "/data/two");

        Assert.Equal("/data/two", RunRecord.Read(RecordFile));
    }

    [Fact]
    public void Read_NoRecord_Null() => Assert.Null(RunRecord.Read(RecordFile));

    [Fact]
    public void Read_NotAnAbsolutePath_Null()
    {
        _temp.Write("run/data-dir", "relative/dir\n");

        Assert.Null(RunRecord.Read(RecordFile));
    }

    [Fact]
    public void Remove_RecordOfThisNode_Removed()
    {
        RunRecord.Write(RecordFile, "/data/one");

        Assert.True(RunRecord.Remove(RecordFile, "/data/one"));
        Assert.False(File.Exists(RecordFile));
    }

    [Fact]
    public void Remove_RecordNamesAnotherNode_Kept()
    {
        RunRecord.Write(RecordFile, "/data/two");

        Assert.False(RunRecord.Remove(RecordFile, "/data/one"));
        Assert.Equal("/data/two", RunRecord.Read(RecordFile));
    }

    [Fact]
    public void Claim_Disposed_RemovesItsRecord()
    {
        var loggers = new ListLoggerFactory();
        using (var record = RunRecord.Claim(RecordFile, "/data/one", loggers.CreateLogger("coracle")))
        {
            Assert.NotNull(record);
            Assert.Equal("/data/one", RunRecord.Read(RecordFile));
        }

        Assert.False(File.Exists(RecordFile));
    }

    [Fact]
    public void Claim_UnwritablePlace_WarnsAndReturnsNull()
    {
        var blocker = _temp.Write("file", "not a folder");
        var loggers = new ListLoggerFactory();

        var record = RunRecord.Claim(Path.Combine(blocker, "data-dir"), "/data/one", loggers.CreateLogger("coracle"));

        Assert.Null(record);
        Assert.Contains(loggers.Lines, l => l.StartsWith($"[coracle] could not record the data dir in {blocker}/data-dir (", StringComparison.Ordinal));
    }

    [Fact]
    public void FindRunning_LiveStatusSocket_TheRecordedDataDir()
    {
        var dataDir = _temp.Combine("data");
        using var socket = ListenStatusSocket(dataDir);
        RunRecord.Write(RecordFile, dataDir);

        Assert.Equal(dataDir, RunRecord.FindRunning(RecordFile));
    }

    [Fact]
    public void FindRunning_StaleRecordWithDeadSocket_Null()
    {
        var dataDir = _temp.Combine("data");
        DeadSocket(Path.Combine(dataDir, "run", "coracle.sock"));
        RunRecord.Write(RecordFile, dataDir);

        Assert.True(File.Exists(Path.Combine(dataDir, "run", "coracle.sock")));
        Assert.Null(RunRecord.FindRunning(RecordFile));
    }

    [Fact]
    public void FindRunning_RecordedDataDirGone_Null()
    {
        RunRecord.Write(RecordFile, _temp.Combine("gone"));

        Assert.Null(RunRecord.FindRunning(RecordFile));
    }

    [Fact]
    public void FindRunning_NoRecord_Null() => Assert.Null(RunRecord.FindRunning(RecordFile));
}
