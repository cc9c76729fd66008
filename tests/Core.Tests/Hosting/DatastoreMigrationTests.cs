using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Coracle.Core.Hosting;
using Coracle.Core.Tests.Support;
using Coracle.Core.Tests.Update;
using static Coracle.Core.Hosting.DatastoreMigration;

namespace Coracle.Core.Tests.Hosting;

/// <summary>
/// The SQLite → embedded etcd migration's decision (<see cref="DatastoreMigration.Decide"/>, every case) and the real
/// <c>coracle server --cluster-init</c> over an unreadable <c>state.db</c>: one error line naming the file, exit 1, no etcd
/// data, no marker and the file byte for byte as it was; and the real copy into Debian's etcd killed with SIGKILL at each
/// of its fault points, then started again: every key as it was, the marker gone, the SQLite file moved aside. The copy
/// under a real kube-apiserver: EmbeddedEtcdNodeTests.
/// </summary>
public sealed class DatastoreMigrationTests : IDisposable
{
    private readonly TempDir _temp = new("migr");

    public void Dispose() => _temp.Dispose();

    public static TheoryData<bool, string?, bool, string?, bool, string> Cases => new()
    {
        // joins, selected (null: cannot import), selected empty, marker's target, old data present → action
        { false, "etcd", true, null, true, nameof(Decision.Migrate) },
        { false, "etcd", true, null, false, nameof(Decision.None) },
        { false, "etcd", false, null, true, nameof(Decision.None) },
        { false, null, false, null, true, nameof(Decision.None) },
        { false, "etcd", false, "etcd", true, nameof(Decision.Resume) },
        { false, "etcd", false, "etcd", false, nameof(Decision.Finish) },
        { false, null, false, "etcd", true, nameof(Decision.Pending) },
        { false, "other", false, "etcd", true, nameof(Decision.Pending) },
        { true, "etcd", true, null, true, nameof(Decision.IgnoreJoined) },
        { true, "etcd", true, "etcd", true, nameof(Decision.IgnoreJoined) },
        { true, "etcd", false, null, true, nameof(Decision.None) },
        { true, "etcd", true, null, false, nameof(Decision.None) },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Decide_EveryCase_ExpectedAction(bool joins, string? selected, bool selectedIsEmpty, string? markerTo, bool oldDataPresent, string expected) =>
        Assert.Equal(Enum.Parse<Decision>(expected), Decide(joins, selected, selectedIsEmpty, markerTo, oldDataPresent));

    [Fact]
    public void CoracleServer_ClusterInitOverCorruptStateDb_Exit1OneLineNamingTheFileAndNothingChanged()
    {
        var dataDir = _temp.Combine("data");
        var db = Path.Combine(dataDir, "server", "db");
        Directory.CreateDirectory(db);
        var stateDb = Path.Combine(db, "state.db");
        var bytes = RandomNumberGenerator.GetBytes(16384);
        File.WriteAllBytes(stateDb, bytes);

        var (code, _, stderr) = Run.Tool(Executable, "server", "--data-dir", dataDir, "--cluster-init", "--node-name", "migr-1", "--node-ip", "127.0.0.1");

        Assert.True(code == 1, $"exit {code}: {stderr}");
        Assert.Equal(
            [$"coracle: error: datastore migration: the SQLite database {stateDb} cannot be read: SQLite Error 26: 'file is not a database'; this server copies it into the etcd datastore before it starts: restore it from a snapshot, or move it aside to start etcd empty (nothing was changed)"],
            stderr.Split('\n').Where(l => l.StartsWith("coracle: error:", StringComparison.Ordinal)));
        Assert.Equal(bytes, File.ReadAllBytes(stateDb));
        Assert.Equal([stateDb], Directory.GetFiles(db));
        Assert.Empty(Directory.GetDirectories(db));
        Assert.False(File.Exists(MarkerPath(dataDir)));
        Assert.False(Directory.Exists(Path.Combine(dataDir, "server", "tls")));
    }

    public static TheoryData<string> MigrationFaultPoints => [.. FaultPoints];

    [Theory]
    [MemberData(nameof(MigrationFaultPoints))]
    public async Task CoracleServer_ClusterInitKilledAtFaultPoint_NextStartFinishesTheCopyAndLosesNoKey(string point)
    {
        // The real host with the SQLite and etcd datastore plugins and containerd (a server needs a runtime), no Kubernetes binaries, on ports of its own.
        var host = Images.LayOut(_temp.Combine("host"), Images.RealHostWithPlugins("1.0.0", "Coracle.Plugins.Datastore.Sql", "Coracle.Plugins.Datastore.Etcd", "Coracle.Plugins.Runtime.Containerd"));

        Directory.CreateDirectory(_temp.Combine("no-k8s"));
        var dataDir = _temp.Combine("data");
        var ports = Enumerable.Range(0, 5).Select(_ => FreePorts.Next().ToString(CultureInfo.InvariantCulture)).ToArray();
        string[] server =
        [
            "server", "--data-dir", dataDir, "--node-name", "migr-" + point, "--node-ip", "127.0.0.1", "--components-dir", _temp.Combine("no-k8s"),
            "--https-listen-port", ports[0], "--supervisor-port", ports[1], "--write-kubeconfig", Path.Combine(dataDir, "admin.yaml"),
        ];
        string[] clusterInit = [.. server, "--cluster-init", "--etcd-client-port", ports[2], "--etcd-peer-port", ports[3], "--etcd-metrics-port", ports[4]];

        // 1. On SQLite: 40 keys written through the running server's datastore socket, one of them overwritten and one deleted.
        var expected = new SortedDictionary<string, string>(StringComparer.Ordinal);
        using var sqlite = new ServerRun(host, _temp.Path, server, null);
        try
        {
            var socket = "unix://" + Path.Combine(dataDir, "server", "db", "etcd.sock");
            await sqlite.UntilAsync(() => Etcdctl(["--endpoints", socket, "put", "/migr/k00", "v00"]).ExitCode == 0, "the SQLite datastore taking a write");
            for (var i = 0; i < 40; i++)
            {
                var (key, value) = ($"/migr/k{i:D2}", $"v{i:D2}-{new string('x', 200)}");
                Assert.True(Etcdctl(["--endpoints", socket, "put", key, value]).ExitCode == 0);
                expected[key] = value;
            }

            Assert.True(Etcdctl(["--endpoints", socket, "put", "/migr/k00", "overwritten"]).ExitCode == 0);
            expected["/migr/k00"] = "overwritten";
            Assert.True(Etcdctl(["--endpoints", socket, "del", "/migr/k39"]).ExitCode == 0);
            expected.Remove("/migr/k39");
        }
        finally
        {
            await sqlite.StopAsync();
        }

        var stateDb = Path.Combine(dataDir, "server", "db", "state.db");
        var marker = MarkerPath(dataDir);
        Assert.True(File.Exists(stateDb));

        // 2. Restarted with --cluster-init, killed (SIGKILL, from inside, as a power cut) at the fault point.
        using var killed = new ServerRun(host, _temp.Path, clusterInit, point);
        var exit = await killed.ExitAsync(TimeSpan.FromMinutes(2));
        Assert.True(exit == 137, $"exit {exit}, not killed at fault point {point}:\n{killed.Output}");
        Assert.True(File.Exists(marker), $"no marker after the kill at {point}");
        Assert.Equal(point == "retired", !File.Exists(stateDb));
        await Wait.UntilAsync(() => Naming(dataDir).Count == 0, $"the killed server's children (etcd) gone with it:\n{string.Join('\n', Naming(dataDir))}", 60);

        // 3. Started again: the copy is done again (or, after "retired", only the marker removed); every key is in etcd as written.
        using var again = new ServerRun(host, _temp.Path, clusterInit, null);
        try
        {
            await again.UntilAsync(() => !File.Exists(marker) && again.Output.Contains(point == "retired" ? "removing the marker" : "migrated ", StringComparison.Ordinal),
                "the migration finished");
            Assert.Contains(point == "retired" ? "had completed and the file was moved aside" : "was interrupted", again.Output, StringComparison.Ordinal);
            var tls = Path.Combine(dataDir, "server", "tls");
            string[] etcd = ["--endpoints", $"https://127.0.0.1:{ports[2]}", "--cacert", Path.Combine(tls, "etcd-server-ca.crt"),
                "--cert", Path.Combine(tls, "datastore-client.crt"), "--key", Path.Combine(tls, "datastore-client.key")];
            var got = new SortedDictionary<string, string>(StringComparer.Ordinal);
            await again.UntilAsync(
                () =>
                {
                    var (code, stdout) = Etcdctl([.. etcd, "get", "/migr/", "--prefix"]);
                    var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
                    got.Clear();
                    for (var i = 0; code == 0 && i + 1 < lines.Length; i += 2)
                    {
                        got[lines[i]] = lines[i + 1];
                    }

                    return code == 0;
                },
                "etcd answering the datastore-client certificate");
            Assert.Equal(expected, got);
            Assert.False(File.Exists(stateDb));
            Assert.True(File.Exists(stateDb + ".migrated"));
        }
        finally
        {
            await again.StopAsync();
        }
    }

    private static (int ExitCode, string Stdout) Etcdctl(string[] args)
    {
        var start = new ProcessStartInfo("etcdctl") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["ETCDCTL_API"] = "3";
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        _ = process.StandardError.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, stdout.Result);
    }

    /// <summary>Command lines of live processes naming <paramref name="text"/> (Killall's own /proc reader).</summary>
    private static List<string> Naming(string text) =>
        Coracle.Core.Node.ProcessTable.Read().Values.Select(p => p.CommandLine).Where(c => c.Contains(text, StringComparison.Ordinal)).ToList();

    /// <summary>One run of the laid-out coracle with a clean environment (Images.CleanEnvironment), its output collected.</summary>
    private sealed class ServerRun : IDisposable
    {
        private readonly Process _process;
        private readonly StringBuilder _output = new();

        public ServerRun(string host, string home, string[] args, string? fault)
        {
            var start = new ProcessStartInfo(Path.Combine(host, "coracle")) { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var arg in args)
            {
                start.ArgumentList.Add(arg);
            }

            Images.CleanEnvironment(start, home);
            if (fault is not null)
            {
                start.Environment["CORACLE_MIGRATION_FAULT"] = fault;
            }

            _process = new Process { StartInfo = start };
            _process.OutputDataReceived += (_, e) => Append(e.Data);
            _process.ErrorDataReceived += (_, e) => Append(e.Data);
            _process.Start();
            _process.BeginOutputReadLine();
            _process.BeginErrorReadLine();
        }

        public string Output
        {
            get
            {
                lock (_output)
                {
                    return _output.ToString();
                }
            }
        }

        /// <summary>Polls <paramref name="condition"/> until it holds; fails with the output if the server exits or 2 minutes pass.</summary>
        public async Task UntilAsync(Func<bool> condition, string what)
        {
            var deadline = DateTime.UtcNow.AddMinutes(2);
            while (!condition())
            {
                Assert.True(DateTime.UtcNow < deadline && !_process.HasExited, $"{what}: {(_process.HasExited ? $"coracle exited {_process.ExitCode}" : "timed out")}\n{Output}");
                await Task.Delay(200);
            }
        }

        public async Task<int> ExitAsync(TimeSpan timeout)
        {
            using var cts = new CancellationTokenSource(timeout);
            try
            {
                await _process.WaitForExitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync();
            }

            return _process.ExitCode;
        }

        /// <summary>SIGTERM, as systemd stops it; killed if it has not stopped within a minute.</summary>
        public async Task StopAsync()
        {
            if (!_process.HasExited)
            {
                using (var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(CultureInfo.InvariantCulture)])!)
                {
                    await kill.WaitForExitAsync();
                }

                await ExitAsync(TimeSpan.FromMinutes(1));
            }
        }

        public void Dispose()
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit();
            }

            _process.Dispose();
        }

        private void Append(string? line)
        {
            if (line is not null)
            {
                lock (_output)
                {
                    _output.AppendLine(line);
                }
            }
        }
    }

    private static string Executable
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Directory.Packages.props")))
            {
                dir = dir.Parent;
            }

            return Path.Combine(dir!.FullName, "Core", "bin", new DirectoryInfo(AppContext.BaseDirectory).Parent!.Name, "net10.0", "coracle");
        }
    }
}
