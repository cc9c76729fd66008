using System.Diagnostics;
using System.Text;

namespace Coracle.Integration.Tests.Support;

/// <summary>Runs the real <c>coracle</c> executable of an installed layout.</summary>
internal sealed class CoracleProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();

    private CoracleProcess(Process process)
    {
        _process = process;
    }

    public int Pid => _process.Id;

    public string Stdout
    {
        get
        {
            lock (_stdout)
            {
                return _stdout.ToString();
            }
        }
    }

    public string Stderr
    {
        get
        {
            lock (_stderr)
            {
                return _stderr.ToString();
            }
        }
    }

    public static CoracleProcess Start(string executable, IEnumerable<string> args, IDictionary<string, string>? env = null)
    {
        var info = new ProcessStartInfo(executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        info.Environment["CORACLE_CONFIG_FILE"] = "";

        // scripts/test.sh exports the Kubernetes binaries for the real-node tests; these tests want the defaults unless
        // they name a components folder themselves.
        info.Environment.Remove("CORACLE_K8S_BIN");

        // A node records its data dir for the tools (/run/coracle/data-dir as root); tests keep the record beside the
        // installed executable so they never touch, or read, the machine's.
        info.Environment["CORACLE_RUN_DIR"] = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(executable))!, "run-record");
        foreach (var (key, value) in env ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }

        var process = new Process { StartInfo = info };
        var wrapper = new CoracleProcess(process);
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (wrapper._stdout)
                {
                    wrapper._stdout.AppendLine(e.Data);
                }
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (wrapper._stderr)
                {
                    wrapper._stderr.AppendLine(e.Data);
                }
            }
        };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return wrapper;
    }

    /// <summary>Runs to completion (bounded) and returns the exit code.</summary>
    public static Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(string executable, params string[] args) =>
        RunAsync(executable, null, args);

    /// <summary>Runs to completion (bounded) with extra environment variables and returns the exit code.</summary>
    public static async Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(string executable, IDictionary<string, string>? env, params string[] args)
    {
        using var process = Start(executable, args, env);
        var code = await process.WaitForExitAsync(TimeSpan.FromSeconds(60));
        return (code, process.Stdout, process.Stderr);
    }

    public async Task<int> WaitForExitAsync(TimeSpan bound)
    {
        using var cts = new CancellationTokenSource(bound);
        await _process.WaitForExitAsync(cts.Token);
        _process.WaitForExit();
        return _process.ExitCode;
    }

    public bool HasExited => _process.HasExited;

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }

        _process.Dispose();
    }
}
