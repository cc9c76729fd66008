using System.Diagnostics;
using System.Reflection;
using System.Text;

namespace Coracle.Packaging.Tests.Support;

/// <summary>Runs a command to its end (bounded), or starts one in the background, capturing its output.</summary>
internal sealed class Sh : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _out = new();

    private Sh(Process process) => _process = process;

    public static string RepoRoot { get; } =
        typeof(Sh).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "RepoRoot").Value!.TrimEnd('/');

    public static string FreshRootScript => Path.Combine(AppContext.BaseDirectory, "Support", "fresh-root.sh");

    public int Pid => _process.Id;

    public string Output
    {
        get
        {
            lock (_out)
            {
                return _out.ToString();
            }
        }
    }

    public static async Task<(int Code, string Stdout, string Stderr)> RunAsync(string file, IEnumerable<string> args,
        IDictionary<string, string?>? env = null, int timeoutSeconds = 120)
    {
        var info = Info(file, args, env);
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(timeoutSeconds));
        }
        catch (TimeoutException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} did not finish in {timeoutSeconds} s: {await stdout}{await stderr}");
        }

        return (process.ExitCode, await stdout, await stderr);
    }

    public static Sh Start(string file, IEnumerable<string> args, IDictionary<string, string?>? env = null)
    {
        var info = Info(file, args, env);
        var process = new Process { StartInfo = info };
        var sh = new Sh(process);
        void Append(object? _, DataReceivedEventArgs e)
        {
            if (e.Data is not null)
            {
                lock (sh._out)
                {
                    sh._out.AppendLine(e.Data);
                }
            }
        }

        process.OutputDataReceived += Append;
        process.ErrorDataReceived += Append;
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return sh;
    }

    public bool HasExited => _process.HasExited;

    public async Task<int> WaitForExitAsync(int seconds)
    {
        await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(seconds));
        _process.WaitForExit();
        return _process.ExitCode;
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(30_000);
            }
        }
        catch (InvalidOperationException)
        {
        }

        _process.Dispose();
    }

    private static ProcessStartInfo Info(string file, IEnumerable<string> args, IDictionary<string, string?>? env)
    {
        var info = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = RepoRoot,
        };
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        // Tests name their own components folder and configuration; the developer's environment must not leak in.
        info.Environment.Remove("CORACLE_K8S_BIN");
        info.Environment.Remove("CORACLE_CONFIG_FILE");
        info.Environment.Remove("CORACLE_DATA_DIR");
        foreach (var (key, value) in env ?? new Dictionary<string, string?>())
        {
            if (value is null)
            {
                info.Environment.Remove(key);
            }
            else
            {
                info.Environment[key] = value;
            }
        }

        return info;
    }
}
