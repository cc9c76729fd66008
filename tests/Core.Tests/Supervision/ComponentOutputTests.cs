using System.Collections.Concurrent;
using System.Text;
using Coracle.Core.Supervision;
using Microsoft.Extensions.Time.Testing;

namespace Coracle.Core.Tests.Supervision;

/// <summary>A process component's output: to its file, with only errors and unexpected exits in coracle's log.</summary>
public sealed class ComponentOutputTests : IDisposable
{
    private readonly TempDir _temp = new("crt-out");
    private readonly ConcurrentQueue<string> _lines = new();
    private readonly FakeTimeProvider _time = new();
    private readonly ComponentOutput _output;

    public ComponentOutputTests()
    {
        var loggers = new ListLoggerFactory(_lines, (level, category, message) => $"{level} [{category}] {message}");
        _output = new ComponentOutput(LogFile, loggers.CreateLogger("kubelet"), _time);
        _output.Open();
    }

    private string LogFile => _temp.Combine("logs", "kubelet.log");

    public void Dispose()
    {
        _output.Dispose();
        _temp.Dispose();
    }

    private Task PipeAsync(string text) => _output.Target().CopyFromAsync(new MemoryStream(Encoding.UTF8.GetBytes(text)));

    private List<string> Warnings => _lines.Where(l => l.StartsWith("Warning ", StringComparison.Ordinal)).ToList();

    [Fact]
    public async Task Target_OrdinaryLines_GoToTheFileOnly()
    {
        await PipeAsync("I1206 15:04:05.000000 1 a.go:1] one\nI1206 15:04:05.000001 1 a.go:2] two\n");
        _output.Close(null);

        Assert.Equal("I1206 15:04:05.000000 1 a.go:1] one\nI1206 15:04:05.000001 1 a.go:2] two\n", File.ReadAllText(LogFile));
        Assert.Empty(_lines);
    }

    [Fact]
    public async Task Target_LastLineWithoutNewline_WrittenWithOne()
    {
        await PipeAsync("first\nno newline at the end");
        _output.Close(null);

        Assert.Equal("first\nno newline at the end\n", File.ReadAllText(LogFile));
    }

    [Fact]
    public async Task Target_LineLongerThanTheBuffer_WrittenInPiecesNothingLost()
    {
        await PipeAsync(new string('z', 100_000) + "\nnext\n");
        _output.Close(null);

        var text = File.ReadAllText(LogFile);
        Assert.Equal(100_000, text.Count(c => c == 'z'));
        Assert.EndsWith("z\nnext\n", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Target_ErrorLines_LoggedAtWarningUnderTheComponent()
    {
        await PipeAsync("I1206 15:04:05.000000 1 a.go:1] fine\nE1206 15:04:05.123456 1 a.go:2] broken\nlevel=error msg=\"bad\"\n");

        Assert.Equal(["Warning [kubelet] E1206 15:04:05.123456 1 a.go:2] broken", "Warning [kubelet] level=error msg=\"bad\""], Warnings);
    }

    [Fact]
    public async Task Target_ManyErrorLines_FivePerTenSecondsThenACount()
    {
        var errors = string.Concat(Enumerable.Range(1, 12).Select(i => $"E1206 15:04:05.000000 1 a.go:{i}] error {i}\n"));

        await PipeAsync(errors);
        var during = Warnings;
        _time.Advance(TimeSpan.FromSeconds(10));
        await PipeAsync("I1206 15:04:15.000000 1 a.go:99] later, ordinary\n");

        Assert.Equal(5, during.Count);
        Assert.EndsWith("error 5", during[^1], StringComparison.Ordinal);
        Assert.Equal($"Warning [kubelet] 7 more error lines in {LogFile}", Warnings[^1]);
        Assert.Equal(6, Warnings.Count);
        Assert.Equal(13, File.ReadAllLines(LogFile).Length);
    }

    [Fact]
    public async Task Close_Unexpected_LogsTheLastTwentyLinesWithTheFile()
    {
        await PipeAsync(string.Concat(Enumerable.Range(1, 30).Select(i => $"line {i}\n")));

        _output.Close("exit code 2");

        Assert.Equal(
            [$"Warning [kubelet] exited (exit code 2); its last 20 lines follow, all of its output is in {LogFile}", .. Enumerable.Range(11, 20).Select(i => $"Warning [kubelet] | line {i}")],
            Warnings);
    }

    [Fact]
    public async Task Close_Expected_LogsNothing()
    {
        await PipeAsync("line 1\nline 2\n");

        _output.Close(null);

        Assert.Empty(_lines);
    }

    [Fact]
    public async Task BeginStop_ErrorLinesAfterwards_OnlyInTheFileAndAtDebug()
    {
        _output.BeginStop();

        await PipeAsync("E1206 15:04:05.123456 1 a.go:2] shutting down: context canceled\n");
        _output.Close("exit code 1");

        Assert.Empty(Warnings);
        Assert.Contains("Debug [kubelet] while stopping: E1206 15:04:05.123456 1 a.go:2] shutting down: context canceled", _lines);
        Assert.Contains("context canceled", File.ReadAllText(LogFile), StringComparison.Ordinal);
    }

    [Fact]
    public async Task BeginStop_SuppressedErrorsPending_ReportedBeforeTheStopNotAsAWarning()
    {
        await PipeAsync(string.Concat(Enumerable.Range(1, 7).Select(i => $"panic: {i}\n")));
        var before = Warnings;

        _output.BeginStop();
        await PipeAsync("panic: during stop\n");
        _output.Close(null);

        Assert.Contains($"Information [kubelet] stopping; 2 more error lines since the last report are in {LogFile}", _lines);
        Assert.Equal(before, Warnings);
    }

    [Fact]
    public async Task Open_NewRun_TailStartsOver()
    {
        await PipeAsync("old run\n");
        _output.Close(null);

        _output.Open();
        await PipeAsync("new run\n");

        Assert.Equal(["new run"], _output.Tail);
        Assert.Equal("old run\nnew run\n", File.ReadAllText(LogFile));
    }

    [Fact]
    public async Task Target_CrLfLines_ShownWithoutTheCarriageReturn()
    {
        await PipeAsync("E1206 15:04:05.123456 1 a.go:2] windows-ish\r\n");

        Assert.Equal(["Warning [kubelet] E1206 15:04:05.123456 1 a.go:2] windows-ish"], Warnings);
    }
}
