using System.Diagnostics;
using System.Security.Cryptography;
using Coracle.Core.Tests.Support;
using Coracle.Core.Tests.Update;

namespace Coracle.Core.Tests.Snapshots;

/// <summary>
/// <c>coracle etcd-snapshot save|ls|delete|prune</c> and <c>coracle server --cluster-reset-restore-path</c>, the real
/// executable of the build (Core/bin, with the repo's plugins) against the real SQLite datastore running where a server
/// runs it (<c>DATA/server/db/etcd.sock</c>, tests/Plugins.Datastore.Sql.TestHost), as a user would.
/// </summary>
[Trait("Category", "Integration")]
public sealed class SnapshotCliTests : IAsyncLifetime, IDisposable
{
    private readonly TempDir _dir = new("snapcli");
    private readonly ChildProcesses _children = new();
    private Process? _datastore;

    private string DataDir => _dir.Combine("data");

    private string DbDir => Path.Combine(DataDir, "server", "db");

    private string SnapshotDir => Path.Combine(DbDir, "snapshots");

    public Task InitializeAsync() => Task.CompletedTask;

    public void Dispose() => _dir.Dispose();

    public async Task DisposeAsync()
    {
        await StopDatastoreAsync();
    }

    private async Task StartDatastoreAsync()
    {
        Directory.CreateDirectory(DbDir);
        _datastore = _children.Start("dotnet", [DatastoreHostDll, Path.Combine(DbDir, "state.db"), Path.Combine(DbDir, "etcd.sock")]);
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!_children.Output.Contains("READY", StringComparison.Ordinal))
        {
            Assert.True(DateTime.UtcNow < deadline && !_datastore.HasExited, $"the datastore did not start:\n{_children.Output}");
            await Task.Delay(50);
        }
    }

    private async Task StopDatastoreAsync()
    {
        if (_datastore is { HasExited: false })
        {
            _datastore.Kill(entireProcessTree: true);
            await _datastore.WaitForExitAsync();
        }

        _datastore?.Dispose();
        _datastore = null;
    }

    /// <summary>The built coracle with a clean environment; its run dir (and HOME) under the test's folder.</summary>
    private (int ExitCode, string Stdout, string Stderr) Coracle(params string[] args) => Images.Cli(_dir.Combine("home"), null, args);

    private async Task<string> EtcdctlAsync(params string[] args)
    {
        var start = new ProcessStartInfo("etcdctl") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { "--endpoints", "unix://" + Path.Combine(DbDir, "etcd.sock") }.Concat(args))
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["ETCDCTL_API"] = "3";
        using var process = Process.Start(start)!;
        var stdout = await process.StandardOutput.ReadToEndAsync();
        var stderr = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, $"etcdctl {string.Join(' ', args)}: {stderr}");
        return stdout;
    }

    [Fact]
    public async Task SaveLsDeletePrune_RunningDatastore_WorkLikeK3s()
    {
        await StartDatastoreAsync();
        await EtcdctlAsync("put", "/registry/a", "1");

        var save = Coracle("etcd-snapshot", "save", "--data-dir", DataDir, "--node-name", "node-a");
        Assert.True(save.ExitCode == 0, save.Stderr);
        var name = Assert.Single(Directory.GetFiles(SnapshotDir), f => !f.EndsWith(".json", StringComparison.Ordinal));
        Assert.Matches(@"^on-demand-node-a-\d{10}$", Path.GetFileName(name));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(SnapshotDir));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(name));
        var bytes = await File.ReadAllBytesAsync(name);
        var sha = Convert.ToHexStringLower(bytes[^32..]);
        Assert.Equal(SHA256.HashData(bytes.AsSpan(0, bytes.Length - 32)), bytes[^32..]);
        Assert.Matches($@"^Snapshot {Path.GetFileName(name)} saved: {bytes.Length} bytes, revision 2, sha256 {sha}, in {name}\n$", save.Stdout);
        var sidecar = await File.ReadAllTextAsync(name + ".json");
        Assert.Contains("\"node\": \"node-a\"", sidecar, StringComparison.Ordinal);
        Assert.Contains($"\"sha256\": \"{sha}\"", sidecar, StringComparison.Ordinal);
        Assert.Contains("\"datastore\": \"sqlite\"", sidecar, StringComparison.Ordinal);

        var named = Coracle("etcd-snapshot", "save", "--data-dir", DataDir, "--node-name", "node-a", "--name", "before-upgrade", "--dir", _dir.Combine("elsewhere"));
        Assert.True(named.ExitCode == 0, named.Stderr);
        Assert.Matches(@"^before-upgrade-node-a-\d{10}$", Path.GetFileName(Assert.Single(Directory.GetFiles(_dir.Combine("elsewhere"), "before-upgrade-*"), f => !f.EndsWith(".json", StringComparison.Ordinal))));

        var ls = Coracle("etcd-snapshot", "ls", "--data-dir", DataDir, "--node-name", "node-a");
        Assert.Equal(0, ls.ExitCode);
        Assert.Matches($@"(?m)^{Path.GetFileName(name)}\s+file://{name}\s+{bytes.Length}\s+\S+Z\s+node-a\s+{sha}$", ls.Stdout);
        Assert.Equal(ls.Stdout, Coracle("etcd-snapshot", "list", "--data-dir", DataDir, "--node-name", "node-a").Stdout);

        // Three more with the default name, then keep two.
        foreach (var t in new[] { 1_700_000_001, 1_700_000_002, 1_700_000_003 })
        {
            File.Copy(name, Path.Combine(SnapshotDir, $"on-demand-node-a-{t}"));
        }

        var prune = Coracle("etcd-snapshot", "prune", "--data-dir", DataDir, "--node-name", "node-a", "--snapshot-retention", "2");
        Assert.True(prune.ExitCode == 0, prune.Stderr);
        Assert.Equal(
            "Snapshot on-demand-node-a-1700000002 deleted\nSnapshot on-demand-node-a-1700000001 deleted\nkept the newest 2 snapshots named on-demand-node-a-*; deleted 2\n",
            prune.Stdout);

        var delete = Coracle("etcd-snapshot", "delete", "--data-dir", DataDir, Path.GetFileName(name), "on-demand-node-a-1700000003");
        Assert.True(delete.ExitCode == 0, delete.Stderr);
        Assert.Empty(Directory.GetFiles(SnapshotDir));

        var missing = Coracle("etcd-snapshot", "delete", "--data-dir", DataDir, "nope");
        Assert.Equal((1, $"coracle: error: etcd-snapshot delete: no snapshot nope in {SnapshotDir}; 'coracle etcd-snapshot ls' lists them\n"), (missing.ExitCode, missing.Stderr));
        var badRetention = Coracle("etcd-snapshot", "prune", "--data-dir", DataDir, "--snapshot-retention", "0");
        Assert.Equal((2, "coracle: error: --snapshot-retention: '0' is not a number of snapshots of at least 1; write for example 5\n"), (badRetention.ExitCode, badRetention.Stderr));
        var badName = Coracle("etcd-snapshot", "save", "--data-dir", DataDir, "--name", "../x");
        Assert.Equal((2, "coracle: error: --name: '../x' is not a snapshot name; use letters, digits, '-', '_' and '.' (not first), like on-demand\n"), (badName.ExitCode, badName.Stderr));
    }

    [Fact]
    public void Save_NoServerRunning_OneLineExit1()
    {
        var save = Coracle("etcd-snapshot", "save", "--data-dir", DataDir, "--node-name", "node-a");

        Assert.Equal(1, save.ExitCode);
        Assert.Equal(
            $"coracle: error: etcd-snapshot save: no datastore answers on unix://{DbDir}/etcd.sock (the socket does not exist); start 'coracle server' on data dir {DataDir} or pass the running server's --data-dir\n",
            save.Stderr);
        Assert.False(Directory.Exists(SnapshotDir) && Directory.EnumerateFileSystemEntries(SnapshotDir).Any());
    }

    [Fact]
    public async Task ServerClusterReset_CorruptSnapshot_RefusedExit2DataUntouched()
    {
        await StartDatastoreAsync();
        await EtcdctlAsync("put", "/registry/a", "1");
        var file = _dir.Combine("snap.db");
        await EtcdctlAsync("snapshot", "save", file);
        await StopDatastoreAsync();
        var bytes = await File.ReadAllBytesAsync(file);
        bytes[4096] ^= 0x55;
        await File.WriteAllBytesAsync(file, bytes);
        var before = await File.ReadAllBytesAsync(Path.Combine(DbDir, "state.db"));

        var run = Coracle("server", "--data-dir", DataDir, "--node-name", "node-a", "--cluster-reset", "--cluster-reset-restore-path", file,
            "--write-kubeconfig", _dir.Combine("admin.yaml"));

        Assert.Equal(2, run.ExitCode);
        var error = Assert.Single(run.Stderr.Split('\n'), l => l.StartsWith("coracle: error:", StringComparison.Ordinal));
        Assert.Matches(
            $@"^coracle: error: --cluster-reset-restore-path {file}: checksum mismatch: the data hashes to sha256 [0-9a-f]{{64}} but the trailer says [0-9a-f]{{64}} \(the file is corrupt or truncated\); give a snapshot saved by 'coracle etcd-snapshot save' or 'etcdctl snapshot save' from this datastore \(the data was not changed\)$",
            error);
        Assert.Equal(before, await File.ReadAllBytesAsync(Path.Combine(DbDir, "state.db")));
        Assert.Equal(["db"], Directory.GetDirectories(Path.Combine(DataDir, "server")).Select(Path.GetFileName));
    }

    [Fact]
    public void ServerRestorePath_WithoutClusterReset_ConfigErrorExit2()
    {
        var run = Coracle("server", "--data-dir", DataDir, "--cluster-reset-restore-path", "/x/snap");

        Assert.Equal(2, run.ExitCode);
        Assert.Equal("coracle: error: --cluster-reset-restore-path: a restore path needs --cluster-reset; add --cluster-reset or remove the restore path\n", run.Stderr);
        Assert.False(Directory.Exists(DataDir));
    }

    private static string DatastoreHostDll =>
        Path.Combine(Images.RepoRoot, "tests", "Plugins.Datastore.Sql.TestHost", "bin", Images.Configuration, "net10.0", "Coracle.Plugins.Datastore.Sql.TestHost.dll");
}
