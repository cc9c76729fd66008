using Coracle.Core.Supervision;
using Coracle.Integration.Tests.Support;

namespace Coracle.Integration.Tests.Cli;

/// <summary>
/// The real <c>coracle</c> executable, installed with purpose-built plugins (a datastore serving a unix socket
/// and a runtime running <c>sleep</c>), driven as a user would.
/// </summary>
[Trait("Category", "Integration")]
[Collection(HostPortsCollection.Name)]
public sealed class CliTests : IDisposable
{
    private readonly TempDir _temp = new("coracle-cli");
    private readonly string _coracle;
    private readonly string _dataDir;

    public CliTests()
    {
        _coracle = TestPlugins.InstallHost(_temp.Combine("install"), TestPlugins.Basic, TestPlugins.Calico, TestPlugins.OtherArch);
        _dataDir = _temp.Combine("data");
    }

    public void Dispose() => _temp.Dispose();

    /// <summary>The admin kubeconfig goes to the temp dir, never to /etc/coracle of the test machine.</summary>
    private string Kubeconfig => _temp.Combine("admin.yaml");

    private Task<(int ExitCode, string Stdout, string Stderr)> Run(params string[] args) => CoracleProcess.RunAsync(_coracle, args);

    private async Task<string> WaitForStatusAsync(string component, string state)
    {
        var last = "";
        await Wait.UntilAsync(async () =>
        {
            var (code, stdout, _) = await Run("status", "--data-dir", _dataDir);
            last = stdout;
            return code == 0 && stdout.Split('\n').Any(l => l.StartsWith(component + " ", StringComparison.Ordinal) && l.Contains($" {state} ", StringComparison.Ordinal));
        }, $"{component} to be {state}");
        return last;
    }

    private static int PidOf(string status, string component)
    {
        var line = status.Split('\n').Single(l => l.StartsWith(component + " ", StringComparison.Ordinal));
        return int.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[2], System.Globalization.CultureInfo.InvariantCulture);
    }

    [Fact]
    public async Task Server_FreshDataDir_RunsComposedAndStopsCleanlyOnSigterm()
    {
        using var server = CoracleProcess.Start(_coracle, ["server", "--data-dir", _dataDir, "--write-kubeconfig", Kubeconfig, "--disable", "traefik"]);

        var status = await WaitForStatusAsync("runtime", "ready");
        Assert.Matches(@"datastore\s+ready", status);
        Assert.Matches(@"servicelb\s+unavailable\s+-\s+0\s+loadbalancer plugin servicelb is not implemented in this build", status);
        Assert.Matches(@"kube-apiserver\s+unavailable\s+-\s+0\s+binary not found in /usr/lib/coracle/bin", status);
        var sleeper = PidOf(status, "runtime");
        Assert.True(Native.IsAlive(sleeper));
        Assert.Equal("test", File.ReadAllText(Path.Combine(_dataDir, "plugins", "containerd", "handlers.txt")));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(_dataDir, "run", "coracle.sock")));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(_dataDir));

        var (listCode, list, _) = await Run("plugins", "list", "--data-dir", _dataDir);
        Assert.Equal(0, listCode);
        Assert.Matches(@"traefik\s+ingress\s+0\.1\.0\s+any\s+off\s+disabled by --disable", list);
        Assert.Matches(@"calico\s+cni\s+0\.1\.0\s+any\s+off\s+flannel is the active cni", list);
        Assert.Matches(@"riscv-lb\s+loadbalancer\s+0\.1\.0\s+riscv64\s+off\s+built for riscv64", list);
        Assert.Matches(@"sqlite\s+datastore\s+0\.1\.0\s+any\s+selected\s+default datastore", list);

        // The thread pool's start-up minimum is put back once every component is ready or unavailable (StartupThreadPool).
        var restored = new System.Text.RegularExpressions.Regex(@"thread pool minimum back to \d+ workers \(every component is ready, \d+ ms after the supervisor started\)");
        await Wait.UntilAsync(() => restored.IsMatch(server.Stderr), "the thread pool's start-up minimum put back");
        Assert.Matches(restored, server.Stderr);

        Native.Kill(server.Pid, Native.SigTerm);

        Assert.Equal(0, await server.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.False(Native.IsAlive(sleeper));
        Assert.Contains("stopped cleanly", server.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(_dataDir, "run", "coracle.sock")));
    }

    /// <summary>Log lines at warning or worse in coracle's text format (time, level, [component], message).</summary>
    private static List<string> Warnings(IEnumerable<string> lines) =>
        lines.Where(l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^\S+ (WARN|ERROR|FATAL) ")).ToList();

    [Fact]
    public async Task Server_ChildOutput_GoesToItsLogFileNotTheConsoleAndTheStopWarnsNothing()
    {
        // A stand-in kube-apiserver in the components folder: an ordinary line, an error line, and on SIGTERM an error
        // line and exit 1, as the real one does. It never becomes ready (nothing answers its probe); it only talks.
        var bin = _temp.Combine("k8s-bin");
        _temp.WriteExecutable("k8s-bin/kube-apiserver", """
            #!/bin/sh
            echo "I1206 15:04:05.000000       1 server.go:1] ordinary apiserver chatter"
            echo "E1206 15:04:05.123456       1 server.go:2] etcd not reachable" >&2
            trap 'echo "E1206 15:04:06.000000       1 server.go:3] shutting down: context canceled" >&2; exit 1' TERM
            while true; do sleep 0.1; done
            """.Replace("            ", "", StringComparison.Ordinal));
        var logFile = Path.Combine(_dataDir, "logs", "kube-apiserver.log");
        using var server = CoracleProcess.Start(_coracle, ["server", "--data-dir", _dataDir, "--write-kubeconfig", Kubeconfig],
            new Dictionary<string, string> { ["CORACLE_K8S_BIN"] = bin });

        await Wait.UntilAsync(() => File.Exists(logFile) && File.ReadAllText(logFile).Contains("etcd not reachable", StringComparison.Ordinal), "kube-apiserver's output in its log file");
        await Wait.UntilAsync(() => server.Stderr.Contains("etcd not reachable", StringComparison.Ordinal), "the error line in coracle's log");
        Native.Kill(server.Pid, Native.SigTerm);
        Assert.Equal(0, await server.WaitForExitAsync(TimeSpan.FromSeconds(60)));

        var file = File.ReadAllText(logFile);
        Assert.Contains("ordinary apiserver chatter", file, StringComparison.Ordinal);
        Assert.Contains("shutting down: context canceled", file, StringComparison.Ordinal);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(logFile));
        var console = server.Stderr.Split('\n');
        Assert.DoesNotContain(console, l => l.Contains("ordinary apiserver chatter", StringComparison.Ordinal));
        Assert.Contains(console, l => l.EndsWith($"INFO  [kube-apiserver] output to {logFile}", StringComparison.Ordinal));
        Assert.Contains(console, l => l.EndsWith("WARN  [kube-apiserver] E1206 15:04:05.123456       1 server.go:2] etcd not reachable", StringComparison.Ordinal));
        var afterSigterm = console.SkipWhile(l => !l.Contains("received SIGTERM; stopping", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(afterSigterm);
        Assert.Empty(Warnings(afterSigterm));
        Assert.Contains(afterSigterm, l => l.EndsWith("INFO  [kube-apiserver] stopped", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Status_WithoutDataDir_FindsTheRunningNodeThroughItsRecord()
    {
        var runDir = _temp.Combine("run-record");
        var env = new Dictionary<string, string> { ["CORACLE_RUN_DIR"] = runDir };
        using var server = CoracleProcess.Start(_coracle, ["server", "--data-dir", _dataDir, "--write-kubeconfig", Kubeconfig], env);
        await WaitForStatusAsync("runtime", "ready");

        var (code, stdout, stderr) = await CoracleProcess.RunAsync(_coracle, env, "status");
        var (listCode, list, _) = await CoracleProcess.RunAsync(_coracle, env, "plugins", "list");

        Assert.True(code == 0, stderr);
        Assert.StartsWith($"server ", stdout, StringComparison.Ordinal);
        Assert.Contains($"pid {server.Pid} ", stdout, StringComparison.Ordinal);
        Assert.Matches(@"runtime\s+ready", stdout);
        Assert.Equal(0, listCode);
        Assert.StartsWith($"plugins of the running server (pid {server.Pid}):", list, StringComparison.Ordinal);
        Assert.Equal(_dataDir + "\n", File.ReadAllText(Path.Combine(runDir, "data-dir")));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(runDir, "data-dir")));

        Native.Kill(server.Pid, Native.SigTerm);
        Assert.Equal(0, await server.WaitForExitAsync(TimeSpan.FromSeconds(30)));

        Assert.False(File.Exists(Path.Combine(runDir, "data-dir")));
        var (afterCode, _, afterStderr) = await CoracleProcess.RunAsync(_coracle, env, "status");
        Assert.Equal(1, afterCode);
        Assert.StartsWith("coracle: error: no coracle node is running with data dir ", afterStderr, StringComparison.Ordinal);
        Assert.DoesNotContain(_dataDir, afterStderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Server_JsonLogFormat_WritesOneJsonObjectPerLine()
    {
        using var server = CoracleProcess.Start(_coracle, ["server", "--data-dir", _dataDir, "--log-format", "json", "--write-kubeconfig", _temp.Combine("admin.yaml")]);
        await WaitForStatusAsync("runtime", "ready");
        Native.Kill(server.Pid, Native.SigTerm);
        Assert.Equal(0, await server.WaitForExitAsync(TimeSpan.FromSeconds(30)));

        var lines = server.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.NotEmpty(lines);
        foreach (var line in lines)
        {
            using var json = System.Text.Json.JsonDocument.Parse(line);
            Assert.True(json.RootElement.TryGetProperty("component", out _), line);
            Assert.True(json.RootElement.TryGetProperty("msg", out _), line);
        }

        Assert.Contains(lines, l => l.Contains("\"component\":\"supervisor\"", StringComparison.Ordinal) || l.Contains("\"component\":\"coracle\"", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Server_KilledWithSigkill_LeavesNoChildBehind()
    {
        using var server = CoracleProcess.Start(_coracle, ["server", "--data-dir", _dataDir, "--write-kubeconfig", Kubeconfig]);
        var sleeper = PidOf(await WaitForStatusAsync("runtime", "ready"), "runtime");

        Native.Kill(server.Pid, Native.SigKill);
        await server.WaitForExitAsync(TimeSpan.FromSeconds(30));

        await Wait.UntilAsync(() => !Native.IsAlive(sleeper), "the orphaned child to die with its parent", 10);
    }

    [Fact]
    public async Task Server_SecondInstanceOnTheSameDataDir_IsRefused()
    {
        using var server = CoracleProcess.Start(_coracle, ["server", "--data-dir", _dataDir, "--write-kubeconfig", Kubeconfig]);
        await WaitForStatusAsync("runtime", "ready");

        var (code, _, stderr) = await Run("server", "--data-dir", _dataDir, "--write-kubeconfig", Kubeconfig);

        Assert.Equal(1, code);
        Assert.Contains($"coracle: error: data dir: data dir {_dataDir} is in use by another coracle on this machine ({_dataDir}/run/coracle.lock is locked); stop it first", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Server_BadConfigFile_ExitsTwoWithFileLineColumn()
    {
        var config = _temp.Combine("appliance.toml");
        await File.WriteAllTextAsync(config, "[server]\ncluster-cidr = \"10.42.0.0/33\"\n");

        var (code, _, stderr) = await Run("server", "--config", config, "--data-dir", _dataDir, "--write-kubeconfig", Kubeconfig);

        Assert.Equal(2, code);
        Assert.Equal($"coracle: error: {config}:2:16: server.cluster-cidr: '10.42.0.0/33' is not a valid CIDR; use a network like 10.42.0.0/16\n", stderr);
        Assert.False(Directory.Exists(_dataDir));
    }

    [Fact]
    public async Task Server_BadPluginOption_ExitsTwoNamingTheKey()
    {
        var config = _temp.Combine("appliance.toml");
        await File.WriteAllTextAsync(config, "[plugins.containerd]\nmode = \"fast\"\n");

        var (code, _, stderr) = await Run("server", "--config", config, "--data-dir", _dataDir, "--write-kubeconfig", Kubeconfig);

        Assert.Equal(2, code);
        Assert.Contains($"coracle: error: {config}: [plugins.containerd] mode: 'fast' is not a mode; use mode = \"sleep\"", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Server_WorldWritablePluginFolder_ExitsThree()
    {
        var plugins = Path.Combine(Path.GetDirectoryName(_coracle)!, "plugins");
        File.SetUnixFileMode(plugins, (UnixFileMode)0x1FF);

        var (code, _, stderr) = await Run("server", "--data-dir", _dataDir, "--write-kubeconfig", Kubeconfig);

        Assert.Equal(3, code);
        Assert.Contains($"plugin path '{plugins}' is world-writable (mode 777)", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Server_TwoCnis_ExitsTwo()
    {
        var (code, _, stderr) = await Run("server", "--data-dir", _dataDir, "--write-kubeconfig", Kubeconfig, "--enable", "calico");

        Assert.Equal(2, code);
        // The plan fails before anything is logged or started: the error is the whole output.
        Assert.Equal("coracle: error: 2 cni plugins are selected (flannel, calico) but at most one may be active; keep one: set plugins.cni to the one you want, or --disable the other\n", stderr);
        Assert.DoesNotContain("step: start supervisor", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UnknownFlag_ExitsTwo()
    {
        var (code, _, stderr) = await Run("server", "--no-such-flag");

        Assert.Equal(2, code);
        Assert.Contains("--no-such-flag", stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("server")]
    [InlineData("agent")]
    [InlineData("plugins", "list")]
    [InlineData("config", "check")]
    [InlineData("status")]
    [InlineData("version")]
    public async Task Help_EveryCommand_ExitsZeroWithUsage(params string[] command)
    {
        var (code, stdout, _) = await Run([.. command, "--help"]);

        Assert.Equal(0, code);
        Assert.Contains("Usage:", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ConfigCheck_PrintsEffectiveValuesWithSources()
    {
        var config = _temp.Combine("appliance.toml");
        await File.WriteAllTextAsync(config, "[server]\ncluster-cidr = \"10.52.0.0/16\"\n");

        var (code, stdout, _) = await Run("config", "check", "--config", config, "--node-name", "edge-7", "--token", "s3cret");

        Assert.Equal(0, code);
        Assert.Contains($"cluster-cidr = \"10.52.0.0/16\"  # {config}:2:1", stdout, StringComparison.Ordinal);
        Assert.Contains("node-name = \"edge-7\"  # --node-name", stdout, StringComparison.Ordinal);
        Assert.Contains("service-cidr = \"10.43.0.0/16\"  # default", stdout, StringComparison.Ordinal);
        Assert.Contains("token = \"********\"  # --token", stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("s3cret", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ConfigCheck_BadValues_ExitsTwoListingAll()
    {
        var (code, _, stderr) = await Run("config", "check", "--cluster-dns", "10.99.0.10", "--supervisor-port", "70000");

        Assert.Equal(2, code);
        Assert.Equal(
            "coracle: error: --cluster-dns: 10.99.0.10 is outside service-cidr 10.43.0.0/16; pick an address inside it, like the 10th\n" +
            "coracle: error: --supervisor-port: 70000 is not a TCP port; use 1-65535\n",
            stderr);
    }

    [Fact]
    public async Task Status_NoNodeRunning_ExitsOneWithTheFix()
    {
        var (code, _, stderr) = await Run("status", "--data-dir", _dataDir);

        Assert.Equal(1, code);
        Assert.Equal($"coracle: error: no coracle node is running with data dir {_dataDir} (nothing answers on {_dataDir}/run/coracle.sock); start one with 'coracle server' or pass --data-dir\n", stderr);
    }

    [Fact]
    public async Task Version_PrintsTheVersion()
    {
        var (code, stdout, _) = await Run("version");

        Assert.Equal(0, code);
        Assert.StartsWith("coracle version 0.1.0 (.NET 10.", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Killall_RunningServer_StopsWhatTheNodeStartedButNotAStrangerNamingTheDataDir()
    {
        using var server = CoracleProcess.Start(_coracle, ["server", "--data-dir", _dataDir, "--write-kubeconfig", Kubeconfig, "--disable", "traefik"]);
        var sleeper = PidOf(await WaitForStatusAsync("runtime", "ready"), "runtime");
        var records = PidRecords.ReadAll(PidRecords.DirFor(Path.Combine(_dataDir, "run")));
        Assert.Contains(records, r => r.Name == "coracle" && r.Pid == server.Pid);
        Assert.Contains(records, r => r.Name == "runtime" && r.Pid == sleeper);

        // A stranger whose command line names the data dir (argv[0] = DATA/server/stranger).
        using var stranger = System.Diagnostics.Process.Start("bash", ["-c", "exec -a \"$0\" sleep 1000", Path.Combine(_dataDir, "server", "stranger")]);
        var netns = "cor-kill-" + Guid.NewGuid().ToString("N")[..6];
        Assert.Equal(0, (await CoracleProcess.RunAsync("ip", "netns", "add", netns)).ExitCode);
        try
        {
            // In a network namespace of its own, so the host's iptables rules are never touched.
            var (code, stdout, stderr) = await CoracleProcess.RunAsync("nsenter", $"--net=/run/netns/{netns}", _coracle, "killall", "--data-dir", _dataDir);

            Assert.True(code == 0, stdout + stderr);
            Assert.Contains($"killall: stopping coracle (pid {server.Pid})", stdout, StringComparison.Ordinal);
            Assert.Equal(0, await server.WaitForExitAsync(TimeSpan.FromSeconds(30)));
            Assert.False(Native.IsAlive(sleeper));
            Assert.False(stranger.HasExited, "killall killed a stranger whose arguments name the data dir");
            Assert.Empty(PidRecords.ReadAll(PidRecords.DirFor(Path.Combine(_dataDir, "run"))));
        }
        finally
        {
            stranger.Kill();
            await CoracleProcess.RunAsync("ip", "netns", "delete", netns);
        }
    }

    [Fact]
    public async Task SecretsEncrypt_UnknownProviderAndStatusOff_OneErrorLineExitTwoThenDisabled()
    {
        var (code, stdout, stderr) = await Run("secrets-encrypt", "rotate-keys", "--data-dir", _dataDir, "--secrets-encryption-provider", "aesgcm");

        Assert.Equal(2, code);
        Assert.Equal("", stdout);
        Assert.Equal("coracle: error: --secrets-encryption-provider: 'aesgcm' is not one of aescbc, secretbox\n", stderr);

        (code, stdout, _) = await Run("secrets-encrypt", "status", "--data-dir", _dataDir, "--secrets-encryption");

        Assert.Equal(0, code);
        Assert.StartsWith("Encryption Status: Disabled\n--secrets-encryption is on, but ", stdout, StringComparison.Ordinal);
    }
}
