using Coracle.Core.Supervision;
using Coracle.Integration.Tests.Support;
using Coracle.Plugins;

namespace Coracle.Integration.Tests.Supervision;

/// <summary>The supervisor against real child processes.</summary>
[Trait("Category", "Integration")]
public sealed class SupervisorTests : IDisposable
{
    private static readonly RestartPolicy Fast = new(TimeSpan.FromMilliseconds(50), TimeSpan.FromMilliseconds(200), 3, TimeSpan.FromMinutes(1));
    private readonly TempDir _temp = new("coracle-sup");
    private readonly ListLoggerFactory _logs = new();
    private readonly Supervisor _supervisor;

    public SupervisorTests()
    {
        _supervisor = new Supervisor(_logs);
    }

    public void Dispose()
    {
        _supervisor.StopAsync().GetAwaiter().GetResult();
        _temp.Dispose();
    }

    private string Script(string name, string body)
    {
        var path = _temp.Combine(name + ".sh");
        File.WriteAllText(path, "#!/bin/bash\n" + body + "\n");
        File.SetUnixFileMode(path, (UnixFileMode)0x1ED);
        return path;
    }

    /// <summary>Ready once the script has installed its signal trap (so the test does not race the shell).</summary>
    private CustomProbe Trapped(string name) =>
        new(_ => Task.FromResult(File.Exists(_temp.Combine(name + ".trapped"))));

    private ComponentStatus StatusOf(string name) => _supervisor.Snapshot().Single(c => c.Name == name);

    [Fact]
    public async Task Start_LongRunningProcess_IsReadyAndStopsOnSigterm()
    {
        _supervisor.Add(new ProcessComponent { Name = "sleeper", FileName = "/bin/sleep", Arguments = ["600"] });

        _supervisor.Start(CancellationToken.None);
        await _supervisor.WaitReadyAsync("sleeper", CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));
        var pid = StatusOf("sleeper").Pid!.Value;
        Assert.True(Native.IsAlive(pid));
        Assert.Equal(ComponentState.Ready, StatusOf("sleeper").State);

        await _supervisor.StopAsync();

        Assert.False(Native.IsAlive(pid));
        Assert.Equal(ComponentState.Stopped, StatusOf("sleeper").State);
        Assert.Contains(_logs.Lines, l => l.StartsWith("[sleeper] starting: ", StringComparison.Ordinal) && l.EndsWith("/bin/sleep 600", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Start_CrashingProcess_RestartsWithBackoffThenGivesUp()
    {
        _supervisor.Add(new ProcessComponent { Name = "crasher", FileName = Script("crash", "echo dying; exit 3"), Restart = Fast, Readiness = new TcpProbe("127.0.0.1", 1) });

        _supervisor.Start(CancellationToken.None);
        await Wait.UntilAsync(() => StatusOf("crasher").State == ComponentState.Failed, "the crash loop limit");

        Assert.Equal(3, StatusOf("crasher").Restarts);
        Assert.Equal("crash loop: exit code 3", StatusOf("crasher").Detail);
        await Assert.ThrowsAsync<InvalidOperationException>(() => _supervisor.WaitReadyAsync("crasher", CancellationToken.None));
        Assert.Equal(4, _logs.Lines.Count(l => l == "[crasher] dying"));
        Assert.Contains(_logs.Lines, l => l.StartsWith("[crasher] crash loop: 3 restarts within 1m; giving up", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Start_SlowStarter_DependentWaitsForItsReadiness()
    {
        var port = FreePorts.Next();
        var marker = _temp.Combine("ready-when-dependent-started");
        _supervisor.Add(new ProcessComponent
        {
            Name = "slow",
            FileName = Script("slow", $"sleep 1; exec python3 -m http.server {port} --bind 127.0.0.1"),
            Readiness = new HttpProbe(new Uri($"http://127.0.0.1:{port}/")),
        });
        _supervisor.Add(new ProcessComponent
        {
            Name = "dependent",
            FileName = "/bin/sleep",
            Arguments = ["600"],
            DependsOn = ["slow"],
            BeforeStart = _ =>
            {
                File.WriteAllText(marker, StatusOf("slow").State.ToString());
                return Task.CompletedTask;
            },
        });

        _supervisor.Start(CancellationToken.None);
        await _supervisor.WaitReadyAsync("dependent", CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal("Ready", File.ReadAllText(marker));
    }

    [Fact]
    public async Task StopAsync_Dependencies_StopInReverseOrder()
    {
        var order = _temp.Combine("order");
        string Body(string name) => $"trap 'echo {name} >> {order}; exit 0' TERM; touch {_temp.Combine(name + ".trapped")}; while true; do sleep 0.05; done";
        _supervisor.Add(new ProcessComponent { Name = "c", FileName = Script("c", Body("c")), DependsOn = ["b"], Readiness = Trapped("c") });
        _supervisor.Add(new ProcessComponent { Name = "a", FileName = Script("a", Body("a")), Readiness = Trapped("a") });
        _supervisor.Add(new ProcessComponent { Name = "b", FileName = Script("b", Body("b")), DependsOn = ["a"], Readiness = Trapped("b") });

        _supervisor.Start(CancellationToken.None);
        await _supervisor.WaitReadyAsync("c", CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));
        await _supervisor.StopAsync();

        Assert.Equal(["c", "b", "a"], File.ReadAllLines(order));
    }

    [Fact]
    public async Task StartEarly_ComponentWithoutDependencies_RunsBeforeStartAndStartTakesItOverWithoutASecondRun()
    {
        var order = _temp.Combine("order");
        var starts = _temp.Combine("starts");
        string Body(string name) => $"echo {name} >> {starts}; trap 'echo {name} >> {order}; exit 0' TERM; touch {_temp.Combine(name + ".trapped")}; while true; do sleep 0.05; done";
        _supervisor.Add(new ProcessComponent { Name = "store", FileName = Script("store", Body("store")), Readiness = Trapped("store") });
        _supervisor.Add(new ProcessComponent { Name = "server", FileName = Script("server", Body("server")), DependsOn = ["store"], Readiness = Trapped("server") });

        Assert.True(_supervisor.StartEarly("store"));
        Assert.True(_supervisor.StartEarly("store"));
        await _supervisor.WaitReadyAsync("store", CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(ComponentState.Pending, StatusOf("server").State);
        var pid = StatusOf("store").Pid;

        _supervisor.Start(CancellationToken.None);
        await _supervisor.WaitReadyAsync("server", CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(pid, StatusOf("store").Pid);
        await _supervisor.StopAsync();

        Assert.Equal(["store", "server"], File.ReadAllLines(starts));
        Assert.Equal(["server", "store"], File.ReadAllLines(order));
        Assert.Contains("[supervisor] store: started early, while the start-up steps go on", _logs.Lines);
    }

    [Fact]
    public async Task BeginShutdown_InProcessComponentEndsByItselfOnTheSameSignal_NotReportedAsFailedNorRestarted()
    {
        // A Kestrel host still starting when SIGTERM arrives is stopped by ASP.NET Core's own signal handling, before the
        // supervisor's stop reaches it: the node stops, so that is no failure.
        var signal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var runs = 0;
        _supervisor.Add(new InProcessComponent
        {
            Name = "web",
            Restart = Fast,
            Run = async _ =>
            {
                Interlocked.Increment(ref runs);
                await signal.Task;
                throw new OperationCanceledException("the application is shutting down");
            },
        });
        _supervisor.Start(CancellationToken.None);
        await _supervisor.WaitReadyAsync("web", CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));

        _supervisor.BeginShutdown();
        signal.SetResult();
        await Wait.UntilAsync(() => _logs.Lines.Any(l => l.StartsWith("[web] exited while the node stops", StringComparison.Ordinal)), "the exit while stopping");
        await _supervisor.StopAsync();

        Assert.Equal(1, runs);
        Assert.Contains("[web] exited while the node stops (the application is shutting down); not restarted", _logs.Lines);
        Assert.DoesNotContain(_logs.Lines, l => l.Contains("failed to start", StringComparison.Ordinal) || (l.Contains("restart", StringComparison.Ordinal) && !l.Contains("not restarted", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task StartEarly_ThenStopWithoutStart_StopsTheEarlyComponent()
    {
        // A start-up step failed after the datastore started early: the node stops it without ever starting the rest.
        _supervisor.Add(new ProcessComponent { Name = "store", FileName = "/bin/sleep", Arguments = ["600"] });
        _supervisor.Add(new ProcessComponent { Name = "other", FileName = "/bin/sleep", Arguments = ["600"] });

        Assert.True(_supervisor.StartEarly("store"));
        await _supervisor.WaitReadyAsync("store", CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));
        var pid = StatusOf("store").Pid!.Value;
        await _supervisor.StopAsync();

        Assert.False(Native.IsAlive(pid));
        Assert.Equal(ComponentState.Stopped, StatusOf("store").State);
        Assert.Equal(ComponentState.Pending, StatusOf("other").State);
    }

    [Fact]
    public void StartEarly_DependentOrUnknownComponent_StartsNothingAndAfterStartIsRefused()
    {
        _supervisor.Add(new ProcessComponent { Name = "store", FileName = "/bin/sleep", Arguments = ["600"] });
        _supervisor.Add(new ProcessComponent { Name = "server", FileName = "/bin/sleep", Arguments = ["600"], DependsOn = ["store"] });

        Assert.False(_supervisor.StartEarly("server"));
        Assert.False(_supervisor.StartEarly("absent"));
        Assert.Equal(ComponentState.Pending, StatusOf("server").State);
        Assert.Equal(ComponentState.Pending, StatusOf("store").State);

        _supervisor.Start(CancellationToken.None);
        var e = Assert.Throws<InvalidOperationException>(() => _supervisor.StartEarly("store"));
        Assert.Equal("component store started early after the supervisor started", e.Message);
    }

    [Fact]
    public async Task StopAsync_ClientDeclaresStopsBefore_StopsBeforeItsServerThoughRegisteredFirst()
    {
        // The flannel case: an in-node client registered before the server it watches, with no start dependency on it.
        var order = _temp.Combine("order");
        string Body(string name) => $"trap 'echo {name} >> {order}; exit 0' TERM; touch {_temp.Combine(name + ".trapped")}; while true; do sleep 0.05; done";
        _supervisor.Add(new ProcessComponent { Name = "client", FileName = Script("client", Body("client")), StopsBefore = ["server", "absent"], Readiness = Trapped("client") });
        _supervisor.Add(new ProcessComponent { Name = "store", FileName = Script("store", Body("store")), Readiness = Trapped("store") });
        _supervisor.Add(new ProcessComponent { Name = "server", FileName = Script("server", Body("server")), DependsOn = ["store"], Readiness = Trapped("server") });

        _supervisor.Start(CancellationToken.None);
        await _supervisor.WaitReadyAsync("server", CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));
        await _supervisor.WaitReadyAsync("client", CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));
        await _supervisor.StopAsync();

        Assert.Equal(["client", "server", "store"], File.ReadAllLines(order));
    }

    [Fact]
    public async Task RestartAsync_ChosenComponents_RestartGracefullyInStartOrderWithoutBackoffOrCrashCount()
    {
        // Certificate renewal's restart: a and b load certificates, c does not.
        var order = _temp.Combine("order");
        string Body(string name) => $"echo {name} start >> {order}; trap 'echo {name} term >> {order}; exit 0' TERM; touch {_temp.Combine(name + ".trapped")}; while true; do sleep 0.05; done";
        _supervisor.Add(new ProcessComponent { Name = "b", FileName = Script("b", Body("b")), DependsOn = ["a"], Readiness = Trapped("b"), RestartOnCertificateRenewal = true, Restart = Fast });
        _supervisor.Add(new ProcessComponent { Name = "a", FileName = Script("a", Body("a")), Readiness = Trapped("a"), RestartOnCertificateRenewal = true, Restart = Fast });
        _supervisor.Add(new ProcessComponent { Name = "c", FileName = Script("c", Body("c")), Readiness = Trapped("c"), Restart = Fast });
        _supervisor.Start(CancellationToken.None);
        await _supervisor.WaitReadyAsync("b", CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));
        await _supervisor.WaitReadyAsync("c", CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));
        var before = new[] { "a", "b", "c" }.ToDictionary(n => n, n => StatusOf(n).Pid);

        var restarted = await _supervisor.RestartAsync(spec => spec.RestartOnCertificateRenewal, "certificates renewed: x", TimeSpan.FromSeconds(30), CancellationToken.None);

        Assert.Equal(["a", "b"], restarted);
        Assert.Equal(["a start", "b start", "a term", "a start", "b term", "b start"], File.ReadAllLines(order).Where(l => !l.StartsWith('c')));
        Assert.Equal(["c start"], File.ReadAllLines(order).Where(l => l.StartsWith('c')));
        foreach (var name in new[] { "a", "b" })
        {
            Assert.Equal(ComponentState.Ready, StatusOf(name).State);
            Assert.NotEqual(before[name], StatusOf(name).Pid);
            Assert.Equal(0, StatusOf(name).Restarts);
            Assert.Contains($"[{name}] restarting now: certificates renewed: x", _logs.Lines);
        }

        Assert.Equal(before["c"], StatusOf("c").Pid);
    }

    [Fact]
    public async Task RestartAsync_StoppedOrUnstartedComponent_IsSkipped()
    {
        _supervisor.Add(new ProcessComponent { Name = "done", FileName = "/bin/true", Restart = RestartPolicy.Never, RestartOnCertificateRenewal = true });
        _supervisor.Start(CancellationToken.None);
        await Wait.UntilAsync(() => StatusOf("done").State == ComponentState.Stopped, "the run-once component completed");

        var restarted = await _supervisor.RestartAsync(spec => spec.RestartOnCertificateRenewal, "renewed", TimeSpan.FromSeconds(5), CancellationToken.None);

        Assert.Empty(restarted);
        Assert.Equal(ComponentState.Stopped, StatusOf("done").State);
    }

    [Fact]
    public async Task StopAsync_ProcessIgnoringSigterm_IsKilledAfterTheTimeout()
    {
        _supervisor.Add(new ProcessComponent
        {
            Name = "stubborn",
            FileName = Script("stubborn", $"trap '' TERM; touch {_temp.Combine("stubborn.trapped")}; while true; do sleep 0.05; done"),
            StopTimeout = TimeSpan.FromMilliseconds(300),
            Readiness = Trapped("stubborn"),
        });
        _supervisor.Start(CancellationToken.None);
        await _supervisor.WaitReadyAsync("stubborn", CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));
        var pid = StatusOf("stubborn").Pid!.Value;

        await _supervisor.StopAsync();

        Assert.False(Native.IsAlive(pid));
        Assert.Contains("[stubborn] did not stop within 300 ms; killing", _logs.Lines);
    }

    [Fact]
    public async Task Start_ProcessOutput_IsLoggedUnderTheComponentName()
    {
        _supervisor.Add(new ProcessComponent
        {
            Name = "talker",
            FileName = Script("talker", "echo to-stdout; echo to-stderr >&2; exec sleep 600"),
        });

        _supervisor.Start(CancellationToken.None);
        await Wait.UntilAsync(() => _logs.Lines.Contains("[talker] to-stderr") && _logs.Lines.Contains("[talker] to-stdout"), "the child's output");
    }

    [Fact]
    public async Task Start_KilledProcess_IsRestarted()
    {
        _supervisor.Add(new ProcessComponent { Name = "victim", FileName = "/bin/sleep", Arguments = ["600"], Restart = Fast });
        _supervisor.Start(CancellationToken.None);
        await _supervisor.WaitReadyAsync("victim", CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));
        var first = StatusOf("victim").Pid!.Value;

        Native.Kill(first, Native.SigKill);

        await Wait.UntilAsync(() => StatusOf("victim") is { State: ComponentState.Ready, Pid: { } pid } && pid != first, "a new victim process");
        Assert.Equal(1, StatusOf("victim").Restarts);
        Assert.Contains(_logs.Lines, l => l.StartsWith("[victim] exited (killed by signal 9); restart 1", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Start_InProcessServiceThatThrows_IsRestarted()
    {
        var runs = 0;
        _supervisor.Add(new InProcessComponent
        {
            Name = "flaky",
            Restart = Fast,
            Run = async ct =>
            {
                if (Interlocked.Increment(ref runs) == 1)
                {
                    throw new InvalidOperationException("first run fails");
                }

                await Task.Delay(Timeout.Infinite, ct);
            },
        });

        _supervisor.Start(CancellationToken.None);
        await Wait.UntilAsync(() => StatusOf("flaky").State == ComponentState.Ready && runs == 2, "the second run");

        Assert.Contains(_logs.Lines, l => l.StartsWith("[flaky] exited (failed: first run fails); restart 1", StringComparison.Ordinal));
    }

    [Fact]
    public void Start_UnknownDependency_IsRefused()
    {
        _supervisor.Add(new ProcessComponent { Name = "kubelet", FileName = "/bin/true", DependsOn = ["containerd"] });
        _supervisor.ReportUnavailable("containerd", "binary not found in /usr/bin");

        var ex = Assert.Throws<InvalidOperationException>(() => _supervisor.Start(CancellationToken.None));

        Assert.Equal("kubelet depends on containerd, which is not available: binary not found in /usr/bin", ex.Message);
    }

    [Fact]
    public void Start_DependencyCycle_IsRefused()
    {
        _supervisor.Add(new ProcessComponent { Name = "a", FileName = "/bin/true", DependsOn = ["b"] });
        _supervisor.Add(new ProcessComponent { Name = "b", FileName = "/bin/true", DependsOn = ["a"] });

        var ex = Assert.Throws<InvalidOperationException>(() => _supervisor.Start(CancellationToken.None));

        Assert.StartsWith("dependency cycle: ", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Start_MissingBinary_IsReportedAndRetried()
    {
        _supervisor.Add(new ProcessComponent { Name = "ghost", FileName = "/nonexistent/bin/ghost", Restart = Fast });

        _supervisor.Start(CancellationToken.None);
        await Wait.UntilAsync(() => StatusOf("ghost").State == ComponentState.Failed, "the missing binary to be given up on");

        Assert.Equal("crash loop: /nonexistent/bin/ghost not found", StatusOf("ghost").Detail);
    }
}
