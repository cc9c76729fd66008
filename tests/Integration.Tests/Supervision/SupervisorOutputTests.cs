using System.Collections.Concurrent;
using Coracle.Core.Supervision;
using Coracle.Integration.Tests.Support;
using Coracle.Plugins;

namespace Coracle.Integration.Tests.Supervision;

/// <summary>
/// Real child processes with a log folder, as <c>coracle server</c> runs them: output in <c>LOGS/NAME.log</c>, only
/// errors and unexpected exits in coracle's log, and a clean stop that warns about nothing.
/// </summary>
[Trait("Category", "Integration")]
public sealed class SupervisorOutputTests : IDisposable
{
    private static readonly RestartPolicy Fast = new(TimeSpan.FromMilliseconds(50), TimeSpan.FromMilliseconds(200), 3, TimeSpan.FromMinutes(1));
    private readonly TempDir _temp = new("coracle-out");
    private readonly ConcurrentQueue<string> _lines = new();
    private readonly Supervisor _supervisor;

    public SupervisorOutputTests()
    {
        _supervisor = new Supervisor(new ListLoggerFactory(_lines, (level, category, message) => $"{level} [{category}] {message}"), logDir: LogDir);
    }

    public void Dispose()
    {
        _supervisor.StopAsync().GetAwaiter().GetResult();
        _temp.Dispose();
    }

    private string LogDir => _temp.Combine("data", "logs");

    private string LogFile(string component) => Path.Combine(LogDir, component + ".log");

    private string Read(string component) => File.Exists(LogFile(component)) ? File.ReadAllText(LogFile(component)) : "";

    private static bool IsWarningOrWorse(string line) =>
        line.StartsWith("Warning ", StringComparison.Ordinal) || line.StartsWith("Error ", StringComparison.Ordinal) || line.StartsWith("Critical ", StringComparison.Ordinal);

    private string Script(string name, string body) => _temp.WriteExecutable(name + ".sh", "#!/bin/bash\n" + body + "\n");

    private string Trapped(string name) => _temp.Combine(name + ".trapped");

    private ComponentStatus StatusOf(string name) => _supervisor.Snapshot().Single(c => c.Name == name);

    [Fact]
    public async Task Start_ChildOutput_GoesToItsFileNotToTheLog()
    {
        _supervisor.Add(new ProcessComponent
        {
            Name = "talker",
            FileName = Script("talker", "echo to-stdout; echo to-stderr >&2; echo 'E1206 15:04:05.123456 1 a.go:1] it broke' >&2; exec sleep 600"),
        });

        _supervisor.Start(CancellationToken.None);
        await Wait.UntilAsync(
            () => Read("talker") is var text && text.Contains("it broke", StringComparison.Ordinal) && text.Contains("to-stdout", StringComparison.Ordinal),
            "the child's output in its file");

        var file = Read("talker");
        Assert.Contains("to-stdout\n", file, StringComparison.Ordinal);
        Assert.Contains("to-stderr\n", file, StringComparison.Ordinal);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(LogFile("talker")));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(LogDir));
        Assert.DoesNotContain(_lines, l => l.Contains("to-stdout", StringComparison.Ordinal) || l.Contains("to-stderr", StringComparison.Ordinal));
        Assert.Contains($"Information [talker] output to {LogFile("talker")}", _lines);
        Assert.Contains("Warning [talker] E1206 15:04:05.123456 1 a.go:1] it broke", _lines);
    }

    [Fact]
    public async Task StopAsync_ChildExitsWithStatusOneOnSigterm_NothingWarnedAfterTheStop()
    {
        // Like kube-apiserver: on SIGTERM it logs an error line about the shutdown and exits 1.
        _supervisor.Add(new ProcessComponent
        {
            Name = "apiserver",
            FileName = Script("apiserver", $"trap 'echo \"E1206 15:04:05.123456 1 a.go:1] shutting down: context canceled\" >&2; echo level=error msg=bye; exit 1' TERM; touch {Trapped("apiserver")}; while true; do sleep 0.05; done"),
            Readiness = new CustomProbe(_ => Task.FromResult(File.Exists(Trapped("apiserver")))),
        });
        _supervisor.Add(new ProcessComponent
        {
            Name = "sleeper",
            FileName = "/bin/sleep",
            Arguments = ["600"],
            DependsOn = ["apiserver"],
        });
        _supervisor.Start(CancellationToken.None);
        await _supervisor.WaitReadyAsync("sleeper", CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));
        var before = _lines.Count;

        await _supervisor.StopAsync();

        var after = _lines.Skip(before).ToList();
        Assert.DoesNotContain(after, IsWarningOrWorse);
        Assert.Contains("Information [apiserver] stopped", after);
        Assert.Contains("Information [sleeper] stopped", after);
        Assert.Contains("shutting down: context canceled", Read("apiserver"), StringComparison.Ordinal);
        Assert.Contains("level=error msg=bye", Read("apiserver"), StringComparison.Ordinal);
        Assert.Equal(ComponentState.Stopped, StatusOf("apiserver").State);
    }

    [Fact]
    public async Task StopAsync_ChildExitsWhenAPeerStopsFirst_NotRestartedNotWarned()
    {
        // "follower" has no declared dependency on "leader" but exits as soon as the leader is gone (like a kubelet
        // losing its apiserver). Stop order: leader, middle, follower; middle's stop lasts until the test has seen the
        // follower's exit handled, so the follower exits while the node stops and before its own turn.
        var alive = _temp.Combine("leader.alive");
        var release = _temp.Combine("middle.release");
        _supervisor.Add(new ProcessComponent
        {
            Name = "follower",
            FileName = Script("follower", $"while [ ! -e {alive} ]; do sleep 0.05; done; touch {Trapped("follower")}; while [ -e {alive} ]; do sleep 0.05; done; echo 'F1206 15:04:05.123456 1 a.go:1] leader gone' >&2; exit 255"),
            Readiness = new CustomProbe(_ => Task.FromResult(File.Exists(Trapped("follower")))),
            Restart = Fast,
        });
        _supervisor.Add(new ProcessComponent
        {
            Name = "middle",
            FileName = Script("middle", $"trap 'while [ ! -e {release} ]; do sleep 0.05; done; exit 0' TERM; touch {Trapped("middle")}; while true; do sleep 0.05; done"),
            Readiness = new CustomProbe(_ => Task.FromResult(File.Exists(Trapped("middle")))),
            StopTimeout = TimeSpan.FromSeconds(60),
        });
        _supervisor.Add(new ProcessComponent
        {
            Name = "leader",
            FileName = Script("leader", $"touch {alive}; trap 'rm -f {alive}; exit 0' TERM; touch {Trapped("leader")}; while true; do sleep 0.05; done"),
            Readiness = new CustomProbe(_ => Task.FromResult(File.Exists(Trapped("leader")))),
        });
        _supervisor.Start(CancellationToken.None);
        foreach (var name in new[] { "follower", "middle", "leader" })
        {
            await _supervisor.WaitReadyAsync(name, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));
        }

        var before = _lines.Count;

        var stopping = _supervisor.StopAsync();
        await Wait.UntilAsync(() => StatusOf("follower").State == ComponentState.Stopped, "the follower's exit while the node stops");
        await File.WriteAllTextAsync(release, "");
        await stopping;

        var after = _lines.Skip(before).ToList();
        Assert.DoesNotContain(after, IsWarningOrWorse);
        Assert.Contains("Information [follower] exited while the node stops (exit code 255); not restarted", after);
        Assert.Equal(0, StatusOf("follower").Restarts);
        Assert.Equal(ComponentState.Stopped, StatusOf("follower").State);
        Assert.Contains("leader gone", Read("follower"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task StopAsync_ChildIgnoringSigterm_KillWarnedAsBefore()
    {
        _supervisor.Add(new ProcessComponent
        {
            Name = "stubborn",
            FileName = Script("stubborn", $"trap '' TERM; touch {Trapped("stubborn")}; while true; do sleep 0.05; done"),
            StopTimeout = TimeSpan.FromMilliseconds(300),
            Readiness = new CustomProbe(_ => Task.FromResult(File.Exists(Trapped("stubborn")))),
        });
        _supervisor.Start(CancellationToken.None);
        await _supervisor.WaitReadyAsync("stubborn", CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));

        await _supervisor.StopAsync();

        Assert.Contains("Warning [stubborn] did not stop within 300 ms; killing", _lines);
    }

    [Fact]
    public async Task Start_ChildCrashes_ItsLastLinesLoggedWithTheFile()
    {
        var body = string.Concat(Enumerable.Range(1, 25).Select(i => $"echo line {i}; ")) + "echo 'panic: nil map'; exit 2";
        _supervisor.Add(new ProcessComponent { Name = "crasher", FileName = Script("crasher", body), Restart = RestartPolicy.Never });

        _supervisor.Start(CancellationToken.None);
        await Wait.UntilAsync(() => StatusOf("crasher").State == ComponentState.Failed, "the crash");

        var lines = _lines.ToList();
        var header = lines.FindIndex(l => l == $"Warning [crasher] exited (exit code 2); its last 20 lines follow, all of its output is in {LogFile("crasher")}");
        Assert.True(header >= 0, string.Join("\n", lines));
        Assert.Equal([.. Enumerable.Range(7, 19).Select(i => $"Warning [crasher] | line {i}"), "Warning [crasher] | panic: nil map"], lines.Skip(header + 1).Take(20));
        Assert.Contains("Warning [crasher] panic: nil map", lines);
        Assert.Equal(26, File.ReadAllLines(LogFile("crasher")).Length);
    }

    [Fact]
    public async Task Start_RestartedChild_AppendsToTheSameFileAndAnnouncesItOnce()
    {
        _supervisor.Add(new ProcessComponent { Name = "again", FileName = Script("again", "echo run; exit 3"), Restart = Fast });

        _supervisor.Start(CancellationToken.None);
        await Wait.UntilAsync(() => StatusOf("again").State == ComponentState.Failed, "the crash loop limit");

        Assert.Equal(4, File.ReadAllLines(LogFile("again")).Count(l => l == "run"));
        Assert.Single(_lines, l => l.StartsWith("Information [again] output to ", StringComparison.Ordinal));
    }
}
