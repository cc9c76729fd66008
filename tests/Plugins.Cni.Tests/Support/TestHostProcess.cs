using System.Collections.Concurrent;
using System.Diagnostics;

namespace Coracle.Plugins.Cni.Tests.Support;

/// <summary>
/// One flannel "host": tests/Plugins.Cni.TestHost run under <c>ip netns exec</c>, so the data plane (Configure plus the
/// registered InProcessComponent body) runs entirely inside that network namespace. A separate process is used
/// rather than <c>setns</c> on a thread because async continuations hop between thread-pool threads, which do not
/// share the namespace; a process also gets its own /sys and /proc/sys/net view from <c>ip netns exec</c>.
/// </summary>
internal sealed class TestHostProcess : IDisposable
{
    private readonly Process _process;

    public TestHostProcess(string ns, IEnumerable<string> args)
    {
        var info = new ProcessStartInfo("ip")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in (string[])["netns", "exec", ns, "dotnet", DllPath, .. args])
        {
            info.ArgumentList.Add(arg);
        }

        _process = Process.Start(info)!;
        _process.OutputDataReceived += (_, e) => Record(Output, e.Data);
        _process.ErrorDataReceived += (_, e) => Record(Errors, e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    /// <summary>The test host's build output, next to this test assembly's (same configuration and framework).</summary>
    public static string DllPath
    {
        get
        {
            var bin = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd('/'));
            var framework = bin.Name;
            var configuration = bin.Parent!.Name;
            return Path.GetFullPath(Path.Combine(bin.FullName, "..", "..", "..", "..", "Plugins.Cni.TestHost", "bin",
                configuration, framework, "Coracle.Plugins.Cni.TestHost.dll"));
        }
    }

    public ConcurrentQueue<string> Output { get; } = new();

    public ConcurrentQueue<string> Errors { get; } = new();

    public bool HasExited => _process.HasExited;

    public bool WaitReady(TimeSpan timeout) =>
        Sh.Eventually(() => Output.Any(l => l.StartsWith("READY ", StringComparison.Ordinal)) || _process.HasExited, timeout)
        && !_process.HasExited;

    /// <summary>SIGTERM (graceful stop: the data plane removes its kernel state), then waits.</summary>
    public bool Stop(TimeSpan timeout)
    {
        if (_process.HasExited)
        {
            return true;
        }

        Sh.Run("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        return _process.WaitForExit(timeout);
    }

    public string Log() => string.Join("\n", Output) + "\n--- stderr ---\n" + string.Join("\n", Errors);

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(5000);
        }

        _process.Dispose();
    }

    private static void Record(ConcurrentQueue<string> lines, string? line)
    {
        if (line is not null)
        {
            lines.Enqueue(line);
        }
    }
}
