using Coracle.Core.Tests.Support;
using Coracle.Core.Update;

namespace Coracle.Core.Tests.Update;

/// <summary>
/// A/B apply, the health gate and the boot guard end to end: the real coracle host (build output with the Basic test
/// plugin set, so no containerd or Kubernetes is needed) in the slots, bundles served over loopback HTTPS, systemd's
/// Restart=always played by <see cref="UnitHarness"/>.
/// </summary>
public sealed class ApplyTests : IDisposable
{
    private const string ExitAtStart = "#!/bin/sh\necho 'v3: failing at start' >&2\nexit 1\n";
    private readonly TempDir _temp = new("crt-ota");
    private readonly UpdatePki _pki;

    public ApplyTests() => _pki = new UpdatePki(_temp.Combine("pki"));

    public void Dispose() => _temp.Dispose();

    private string Root => _temp.Combine("root");

    private string DataDir => _temp.Combine("data");

    private UnitHarness Harness()
    {
        Directory.CreateDirectory(_temp.Combine("no-k8s"));
        return new UnitHarness(Root, DataDir,
        [
            "server", "--data-dir", DataDir, "--node-name", "ota", "--node-ip", "127.0.0.1", "--components-dir", _temp.Combine("no-k8s"),
            "--https-listen-port", FreePorts.Next().ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--supervisor-port", FreePorts.Next().ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--write-kubeconfig", Path.Combine(DataDir, "admin.yaml"),
        ]);
    }

    private string Bundle(string name, string version, List<(string, byte[], UnixFileMode)> files)
    {
        var image = Images.Tarball(_temp.Combine(name + ".tar.gz"), files);
        var bundle = _temp.Combine(name + ".cub");
        var (code, _, stderr) = Images.Cli(_temp.Path, null, "update", "bundle", "--image", image, "--key", _pki.Key("vendor"), "--cert", _pki.Cert("vendor"), "--version", version, "-o", bundle);
        Assert.True(code == 0, stderr);
        return bundle;
    }

    private (int Code, string Stdout, string Stderr) Apply(string source, IDictionary<string, string>? env = null, params string[] extra) =>
        Images.Cli(_temp.Path, env, ["update", "apply", source, "--install-root", Root, "--update-ca", _pki.Cert("ca"), "--download-ca", _pki.Cert("ca"),
            "--no-restart", "--update-trial-deadline", "60s", .. extra]);

    private UpdateState State => UpdateState.Read(Path.Combine(Root, "update", "state"))!;

    private string Current => new FileInfo(Path.Combine(Root, "current")).LinkTarget!;

    private string CurrentVersion => ImageInfo.TryRead(Path.Combine(Root, "current", "image.json"))!.Version;

    [Fact]
    public async Task Apply_V1ToV2OverHttps_MarkedGoodByTheNodesHealthGate()
    {
        Images.Install(Root, Images.RealHost("1.0.0"));
        await using var server = await BundleServer.StartAsync(_pki);
        server.Serve("v2.cub", Bundle("v2", "2.0.0", Images.RealHost("2.0.0")));

        var (code, stdout, stderr) = Apply(server.Url("v2.cub"));

        Assert.True(code == 0, stderr);
        Assert.Contains("version 2.0.0 is in slot b, current, on trial", stdout, StringComparison.Ordinal);
        Assert.Equal(("b", "a", 0), (State.Trial, State.Good, State.Attempts));
        using var unit = Harness();
        var rounds = await unit.BootAsync(maxRounds: 3);
        await unit.StopAsync();

        Assert.True(rounds == 1, unit.Log);
        Assert.Equal(("slots/b", "2.0.0"), (Current, CurrentVersion));
        Assert.Equal(("", "b", "good"), (State.Trial, State.Good, State.Result));
        Assert.Contains("update: slot b (version 2.0.0) is healthy after", unit.Log, StringComparison.Ordinal);
        var (_, status, _) = Images.Cli(_temp.Path, null, "update", "status", "--install-root", Root);
        Assert.Contains("last result: good at ", status, StringComparison.Ordinal);
        Assert.Matches(@"\nb +2\.0\.0 +test +good +\*", status);
        Assert.Matches(@"\na +1\.0\.0 +test +previous", status);
    }

    [Fact]
    public async Task Apply_ServerRunningOnRealDatastore_TakesPreUpdateSnapshotBeforeTheSwitch()
    {
        Images.Install(Root, Images.RealHostWithPlugins("1.0.0", "Coracle.Plugins.Datastore.Sql", "Coracle.Plugins.Runtime.Containerd"));
        using var unit = Harness();
        try
        {
            Assert.Equal(1, await unit.BootAsync(maxRounds: 2)); // v1's server runs the real SQLite datastore

            var (code, stdout, stderr) = Apply(Bundle("v2", "2.0.0", Images.RealHost("2.0.0")), null, "--data-dir", DataDir);

            Assert.True(code == 0, stderr + unit.Log);
            Assert.Contains("version 2.0.0 is in slot b, current, on trial", stdout, StringComparison.Ordinal);
            var snapshot = Assert.Single(Directory.GetFiles(Path.Combine(DataDir, "server", "db", "snapshots"), "pre-update-ota-*"),
                f => !f.EndsWith(".json", StringComparison.Ordinal));
            var bytes = await File.ReadAllBytesAsync(snapshot);
            Assert.Equal("SQLite format 3\0"u8.ToArray(), bytes[..16]); // the datastore's copy, in etcd's framing
            Assert.Equal(System.Security.Cryptography.SHA256.HashData(bytes.AsSpan(0, bytes.Length - 32)), bytes[^32..]);
        }
        finally
        {
            await unit.StopAsync();
        }
    }

    [Fact]
    public async Task Apply_V3ExitsAtStartThenV4NotExecutable_EachRolledBackToV2ByTheBootGuard()
    {
        Images.Install(Root, Images.RealHost("2.0.0"));
        using var unit = Harness();

        var v3 = Apply(Bundle("v3", "3.0.0", Images.Scripted("3.0.0", ExitAtStart)));
        Assert.True(v3.Code == 0, v3.Stderr);
        var rounds = await unit.BootAsync(maxRounds: 6);
        await unit.StopAsync();

        // Three failed trial starts, the fourth start is the guard's rollback to the good slot.
        Assert.True(rounds == 4, unit.Log);
        Assert.Equal(("slots/a", "2.0.0"), (Current, CurrentVersion));
        Assert.Equal(("", "a", "rolled-back"), (State.Trial, State.Good, State.Result));
        Assert.Equal("slot b did not become healthy in 3 trial starts (each within 60 s); rolled back to slot a", State.Reason);
        Assert.Contains("v3: failing at start", unit.Log, StringComparison.Ordinal);

        // v4: its coracle is not executable at all (mode 0644, not even a script).
        var v4 = Apply(Bundle("v4", "4.0.0", Images.Scripted("4.0.0", "\u007fELF garbage", mode: (UnixFileMode)0x1A4)));
        Assert.True(v4.Code == 0, v4.Stderr);
        rounds = await unit.BootAsync(maxRounds: 6);
        await unit.StopAsync();

        Assert.True(rounds == 4, unit.Log);
        Assert.Contains("ExecStart " + Path.Combine(Root, "current", "coracle") + " failed", unit.Log, StringComparison.Ordinal);
        Assert.Equal(("slots/a", "2.0.0"), (Current, CurrentVersion));
        Assert.Equal(("", "a", "rolled-back"), (State.Trial, State.Good, State.Result));
    }

    public static TheoryData<string> Faults => new(UpdateApplier.FaultPoints);

    [Theory]
    [MemberData(nameof(Faults))]
    public async Task Apply_KilledAtFaultPoint_BootsIntoAGoodSlot(string point)
    {
        Images.Install(Root, Images.RealHost("1.0.0"));
        await using var server = await BundleServer.StartAsync(_pki);
        server.Serve("v2.cub", Bundle("v2", "2.0.0", Images.RealHost("2.0.0")));

        var (code, _, stderr) = Apply(server.Url("v2.cub"), new Dictionary<string, string> { ["CORACLE_UPDATE_FAULT"] = point });

        Assert.True(code == 137, $"exit {code}: {stderr}");
        Assert.Contains($"fault point {point}", stderr, StringComparison.Ordinal);
        using var unit = Harness();
        await unit.BootAsync(maxRounds: 5);
        await unit.StopAsync();

        // Before the switch, version 1 boots (a trial written but not switched to is dropped); after it, version 2
        // boots on trial and the node marks it good. Either way: no trial left, current is the good slot.
        var switched = point is "switch" or "restart";
        Assert.Equal(switched ? ("slots/b", "2.0.0") : ("slots/a", "1.0.0"), (Current, CurrentVersion));
        // Killed before the first state write (download, verify): no state file, the installed slot a is the good one.
        var state = UpdateState.Read(Path.Combine(Root, "update", "state")) ?? new UpdateState { Good = "a" };
        Assert.Equal("", state.Trial);
        Assert.Equal(Current, "slots/" + state.Good);
        if (point == "trial")
        {
            Assert.Equal("interrupted", state.Result);
        }

        if (!switched)
        {
            // The interrupted update can be applied again; after a kill mid-download it resumes.
            var again = Apply(server.Url("v2.cub"));
            Assert.True(again.Code == 0, again.Stderr);
            Assert.Equal("slots/b", Current);
            if (point == "download")
            {
                Assert.Contains("resuming " + server.Url("v2.cub") + " at byte ", again.Stderr, StringComparison.Ordinal);
                Assert.Contains(server.RangeStarts, start => start > 0);
            }
        }
    }

    [Fact]
    public async Task Apply_TruncatedDownload_RefusedThenResumed()
    {
        Images.Install(Root, Images.Scripted("2.0.0", "#!/bin/sh\nexit 0\n"));
        var before = Images.TreeHash(Path.Combine(Root, "slots", "a"));
        await using var server = await BundleServer.StartAsync(_pki);
        var bundle = Bundle("v3", "3.0.0", Images.RealHost("3.0.0"));
        server.Serve("v3.cub", bundle);
        server.Truncate = true;

        var (code, _, stderr) = Apply(server.Url("v3.cub"));

        Assert.Equal(ExitCodes.RuntimeFailure, code);
        var line = Images.ErrorLine(stderr);
        Assert.StartsWith($"coracle: error: {server.Url("v3.cub")}: the download stopped after ", line, StringComparison.Ordinal);
        Assert.Contains($" of {new FileInfo(bundle).Length} bytes (", line, StringComparison.Ordinal);
        Assert.EndsWith("; run the same command again: it resumes where it stopped", line, StringComparison.Ordinal);
        Assert.Equal("slots/a", Current);
        Assert.Equal(before, Images.TreeHash(Path.Combine(Root, "slots", "a")));

        server.Truncate = false;
        var again = Apply(server.Url("v3.cub"));

        Assert.True(again.Code == 0, again.Stderr);
        Assert.Contains(server.RangeStarts, start => start > 0);
        Assert.Contains("resuming " + server.Url("v3.cub") + " at byte ", again.Stderr, StringComparison.Ordinal);
        Assert.Equal(("slots/b", "3.0.0"), (Current, CurrentVersion));
    }

    [Fact]
    public void Apply_PlainHttpUrl_RefusedExitCode2()
    {
        Images.Install(Root, Images.Scripted("2.0.0", "#!/bin/sh\nexit 0\n"));

        var (code, _, stderr) = Apply("http://127.0.0.1:1/v3.cub");

        Assert.Equal(ExitCodes.InvalidConfig, code);
        Assert.Equal("coracle: error: http://127.0.0.1:1/v3.cub: http:// is not allowed for bundles; serve bundles over https:// (or pass --allow-http on a trusted network)", Images.ErrorLine(stderr));
        Assert.Equal("slots/a", Current);
    }

    [Fact]
    public void Rollback_ByHand_SwitchesToTheOtherSlotAndRecordsWhy()
    {
        Images.Install(Root, Images.Scripted("2.0.0", "#!/bin/sh\nexit 0\n"));
        var applied = Apply(Bundle("v3", "3.0.0", Images.Scripted("3.0.0", "#!/bin/sh\nexit 0\n")));
        Assert.True(applied.Code == 0, applied.Stderr);

        var (code, stdout, stderr) = Images.Cli(_temp.Path, null, "update", "rollback", "--install-root", Root, "--no-restart");

        Assert.True(code == 0, stderr);
        Assert.StartsWith("current -> slots/a (version 2.0.0)", stdout, StringComparison.Ordinal);
        Assert.Equal(("slots/a", "", "a", "rolled-back"), (Current, State.Trial, State.Good, State.Result));
        Assert.Equal("by hand from slot b (version 3.0.0) to slot a", State.Reason);
    }
}
