using Coracle.Integration.Tests.Support;

namespace Coracle.Integration.Tests.Cli;

/// <summary>
/// Plan, then apply: `coracle config check` and `coracle server` make the same plan over the same bad input, report
/// every error of the configuration, the plugin selection and the plugins' options together with the same exit code,
/// and `server` leaves a fresh data dir untouched (not even created); a second server on a live data dir changes no file.
/// </summary>
[Trait("Category", "Integration")]
[Collection(HostPortsCollection.Name)]
public sealed class StartPlanTests : IDisposable
{
    private readonly TempDir _temp = new("coracle-plan");
    private readonly string _coracle;

    public StartPlanTests()
    {
        _coracle = TestPlugins.InstallHost(_temp.Combine("install"), TestPlugins.Basic, TestPlugins.Calico);
    }

    public void Dispose() => _temp.Dispose();

    /// <summary>Bad input: name, extra arguments, appliance.toml content (or null), the expected exit code and error lines.</summary>
    public static TheoryData<string, string[], string?, int, string[]> BadInput => new()
    {
        { "unknown plugin", ["--disable", "bogus"], null, 2, ["--disable: unknown plugin 'bogus'; installed plugins: calico, containerd, flannel, memdb, servicelb, sqlite, test-handler, traefik"] },
        { "bad plugin option", [], "[plugins.containerd]\nmode = \"aufs\"\n", 2, ["CONFIG: [plugins.containerd] mode: 'aufs' is not a mode; use mode = \"sleep\""] },
        { "unknown datastore scheme", ["--datastore-endpoint", "redis://db"], null, 2,
            ["--datastore-endpoint: no installed datastore serves 'redis://'; installed datastores: memdb (memdb://), sqlite (the default, sqlite://)"] },
        { "plugin's own scheme, bad option", ["--datastore-endpoint", "memdb://x"], "[plugins.memdb]\nsize = \"big\"\n", 2,
            ["CONFIG: [plugins.memdb] size: 'big' is not a number of megabytes; write for example size = \"64\""] },
        {
            "errors of all three phases together",
            ["--disable", "bogus", "--cluster-cidr", "10.42.0.0/30"],
            "[plugins.containerd]\nmode = \"aufs\"\n",
            2,
            [
                "--cluster-cidr: 10.42.0.0/30 cannot hold a /24 per node; use a prefix of /24 or shorter, like 10.42.0.0/16",
                "--disable: unknown plugin 'bogus'; installed plugins: calico, containerd, flannel, memdb, servicelb, sqlite, test-handler, traefik",
            ]
        },
        { "plugin setting, bad choice by flag", ["--memdb-journal", "maybe"], null, 2, ["--memdb-journal: 'maybe' is not one of on, off"] },
        { "plugin setting, bad choice in the file", [], "[plugins.memdb]\njournal = \"maybe\"\n", 2, ["CONFIG:2:11: plugins.memdb.journal: 'maybe' is not one of on, off"] },
        {
            "plugin setting, unknown key", [], "[plugins.memdb]\nsise = \"1\"\n", 2,
            ["CONFIG:2:1: unknown key 'sise' in [plugins.memdb]; did you mean 'size'?; the memdb plugin's keys: size, journal"]
        },
        { "two CNIs", ["--enable", "calico"], null, 2, ["2 cni plugins are selected (flannel, calico) but at most one may be active; keep one: set plugins.cni to the one you want, or --disable the other"] },
    };

    [Theory]
    [MemberData(nameof(BadInput))]
    public async Task ConfigCheckAndServer_BadInput_SameErrorsSameExitAndTheDataDirIsUntouched(string name, string[] args, string? toml, int exit, string[] expected)
    {
        var config = _temp.Combine(name.Replace(' ', '-') + ".toml");
        var extra = args.ToList();
        if (toml is not null)
        {
            File.WriteAllText(config, toml);
            extra.AddRange(["--config", config]);
        }

        var dataDir = _temp.Combine("fresh-" + name.Replace(' ', '-'));
        var (checkCode, _, checkErrors) = await CoracleProcess.RunAsync(_coracle, ["config", "check", "--data-dir", dataDir, .. extra]);
        var (serverCode, _, serverErrors) = await CoracleProcess.RunAsync(_coracle, ["server", "--data-dir", dataDir, "--write-kubeconfig", _temp.Combine("kc.yaml"), .. extra]);

        string[] Lines(string stderr) => stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Replace(config, "CONFIG", StringComparison.Ordinal)).ToArray();
        var wanted = expected.Select(e => "coracle: error: " + e).ToArray();
        Assert.Equal(exit, checkCode);
        Assert.Equal(exit, serverCode);
        foreach (var line in wanted)
        {
            Assert.Contains(line, Lines(checkErrors));
        }

        Assert.Equal(Lines(checkErrors), Lines(serverErrors));
        Assert.False(Directory.Exists(dataDir), $"{dataDir} was created");
        Assert.False(File.Exists(_temp.Combine("kc.yaml")), "the --write-kubeconfig file was written");
    }

    [Fact]
    public async Task ConfigCheck_GoodInput_PrintsTheSettingsAndTheSelectionAndExitsZero()
    {
        var dataDir = _temp.Combine("data");
        var (code, stdout, stderr) = await CoracleProcess.RunAsync(_coracle, ["config", "check", "--data-dir", dataDir, "--datastore-endpoint", "memdb://x", "--disable", "traefik"]);

        Assert.True(code == 0, stderr);
        Assert.Contains("datastore-endpoint = \"********\"  # --datastore-endpoint", stdout, StringComparison.Ordinal);
        Assert.Contains("# datastore memdb: selected (datastore-endpoint)", stdout, StringComparison.Ordinal);
        Assert.Contains("# datastore sqlite: off (memdb is the active datastore)", stdout, StringComparison.Ordinal);
        Assert.Contains("# ingress traefik: off (disabled by --disable)", stdout, StringComparison.Ordinal);
        Assert.False(Directory.Exists(dataDir));
    }

    [Fact]
    public async Task ConfigCheck_PluginSettings_FromFileFlagAndEnvironmentWithTheirSources()
    {
        var config = _temp.Combine("memdb.toml");
        File.WriteAllText(config, "[plugins.memdb]\nsize = \"16\"\n");
        var env = new Dictionary<string, string> { ["CORACLE_MEMDB_JOURNAL"] = "off" };

        var (code, stdout, stderr) = await CoracleProcess.RunAsync(_coracle, env, "config", "check", "--config", config, "--data-dir", _temp.Combine("d"),
            "--datastore-endpoint", "memdb://x", "--flannel-backend", "none");
        var (helpCode, help, _) = await CoracleProcess.RunAsync(_coracle, "server", "--help");

        Assert.True(code == 0, stderr);
        Assert.Contains($"[plugins.memdb]\nsize = \"16\"  # {config}:2:1\njournal = \"off\"  # CORACLE_MEMDB_JOURNAL\n", stdout, StringComparison.Ordinal);
        Assert.Contains("[plugins.flannel]\nbackend = \"none\"  # --flannel-backend\n", stdout, StringComparison.Ordinal);
        Assert.Contains("# cni flannel: off (--flannel-backend = none)", stdout, StringComparison.Ordinal);
        Assert.Equal(0, helpCode);
        Assert.Contains("--memdb-journal", help, StringComparison.Ordinal);
        Assert.Contains("[env: CORACLE_MEMDB_JOURNAL]", help, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Server_SecondOnALiveDataDir_RefusedWithoutChangingAFile()
    {
        var dataDir = _temp.Combine("live");
        using var first = CoracleProcess.Start(_coracle, ["server", "--data-dir", dataDir, "--write-kubeconfig", _temp.Combine("first.yaml")]);
        await Wait.UntilAsync(async () => (await CoracleProcess.RunAsync(_coracle, ["status", "--data-dir", dataDir])).Stdout.Contains("runtime ", StringComparison.Ordinal), "the first node to run");
        var before = Snapshot(dataDir);

        var (code, _, stderr) = await CoracleProcess.RunAsync(_coracle,
            ["server", "--data-dir", dataDir, "--https-listen-port", "7443", "--write-kubeconfig", _temp.Combine("second.yaml")]);

        Assert.Equal(1, code);
        Assert.Contains($"coracle: error: data dir: data dir {dataDir} is in use by another coracle on this machine", stderr, StringComparison.Ordinal);
        Assert.Equal(before, Snapshot(dataDir));
        Assert.False(File.Exists(_temp.Combine("second.yaml")));
        Assert.Contains("https://127.0.0.1:6443", File.ReadAllText(Path.Combine(dataDir, "server", "cred", "admin.kubeconfig")), StringComparison.Ordinal);
    }

    /// <summary>
    /// An ingress that an earlier run configured and that this run turns off (<c>--disable traefik</c>) takes back what it
    /// put in place: its manifest is gone from the manifests folder (so the server's controller deletes its objects) and
    /// its cleanup ran.
    /// </summary>
    [Fact]
    public async Task Server_IngressOffOnARestart_ItsManifestRemovedAndItsCleanupRun()
    {
        var dataDir = _temp.Combine("off");
        var manifest = Path.Combine(dataDir, "server", "manifests", "traefik.yaml");
        var marker = Path.Combine(dataDir, "cleanup-traefik");
        using (CoracleProcess.Start(_coracle, ["server", "--data-dir", dataDir, "--write-kubeconfig", _temp.Combine("on.yaml")]))
        {
            await Wait.UntilAsync(async () => (await CoracleProcess.RunAsync(_coracle, ["status", "--data-dir", dataDir])).Stdout.Contains("runtime ", StringComparison.Ordinal), "the node to run");
            Assert.Equal("kind: Test\n", File.ReadAllText(manifest));
        }

        Assert.False(File.Exists(marker));
        using var second = CoracleProcess.Start(_coracle, ["server", "--data-dir", dataDir, "--disable", "traefik", "--write-kubeconfig", _temp.Combine("off.yaml")]);
        await Wait.UntilAsync(async () => (await CoracleProcess.RunAsync(_coracle, ["status", "--data-dir", dataDir])).Stdout.Contains("runtime ", StringComparison.Ordinal), "the node to run again");

        Assert.False(File.Exists(manifest), "traefik.yaml is still in the manifests folder");
        Assert.Equal("server", File.ReadAllText(marker));
        Assert.Contains("ingress: plugin traefik is off", second.Stdout + second.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Killall_PluginsWithCleanup_EachRunsSelectedOrNot()
    {
        // In a network namespace of its own, so the host's links and iptables rules are never touched.
        var netns = "cor-kill-" + Guid.NewGuid().ToString("N")[..6];
        var dataDir = _temp.Combine("killall");
        Directory.CreateDirectory(dataDir);
        File.WriteAllText(_temp.Combine("killall.toml"), "[plugins.memdb]\nsize = \"64\"\n");
        var env = new Dictionary<string, string> { ["CORACLE_MEMDB_JOURNAL"] = "off" };
        Assert.Equal(0, (await Tool("ip", "netns", "add", netns)).ExitCode);
        try
        {
            var (code, stdout, stderr) = await Tool(env, "nsenter", $"--net=/run/netns/{netns}", _coracle, "killall", "--data-dir", dataDir, "--config", _temp.Combine("killall.toml"));

            Assert.True(code == 0, stdout + stderr);
            Assert.Contains("killall: cleaned up after plugin flannel", stdout, StringComparison.Ordinal);
            Assert.Contains("killall: cleaned up after plugin memdb", stdout, StringComparison.Ordinal);
            Assert.Equal("10.42.0.0/16", File.ReadAllText(Path.Combine(dataDir, "cleanup-flannel")));
            Assert.Equal("size=64 journal=off", File.ReadAllText(Path.Combine(dataDir, "cleanup-memdb"))); // memdb was not selected (sqlite was); its settings from file and environment
        }
        finally
        {
            await Tool("ip", "netns", "delete", netns);
        }
    }

    private static Task<(int ExitCode, string Stdout, string Stderr)> Tool(string file, params string[] args) => Tool(null, file, args);

    private static async Task<(int ExitCode, string Stdout, string Stderr)> Tool(IDictionary<string, string>? env, string file, params string[] args)
    {
        var start = new System.Diagnostics.ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["CORACLE_CONFIG_FILE"] = "";
        start.Environment.Remove("CORACLE_K8S_BIN");
        foreach (var (key, value) in env ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }

        using var process = System.Diagnostics.Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, await stdout, await stderr);
    }

    /// <summary>Every file the second server could have written (certificates, kubeconfigs, token) with its content.</summary>
    private static Dictionary<string, string> Snapshot(string dataDir) =>
        Directory.EnumerateFiles(Path.Combine(dataDir, "server"), "*", SearchOption.AllDirectories)
            .Where(f => !f.EndsWith(".sock", StringComparison.Ordinal))
            .ToDictionary(f => f, f => Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(f))) + File.GetLastWriteTimeUtc(f).Ticks);
}
