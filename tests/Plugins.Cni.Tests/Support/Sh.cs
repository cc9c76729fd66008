using System.Diagnostics;

namespace Coracle.Plugins.Cni.Tests.Support;

/// <summary>Runs host commands (ip, bridge, CNI plugins) synchronously for the namespace tests.</summary>
internal static class Sh
{
    public static (int ExitCode, string Output, string Error) Run(string file, IEnumerable<string> args, string? stdin = null,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        var info = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = stdin is not null,
            UseShellExecute = false,
        };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }

        using var process = Process.Start(info)!;
        if (stdin is not null)
        {
            process.StandardInput.Write(stdin);
            process.StandardInput.Close();
        }

        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        process.WaitForExit();
        return (process.ExitCode, output.Result, error.Result);
    }

    /// <summary>Runs and throws with the command line and stderr when it fails.</summary>
    public static string Must(string file, params string[] args)
    {
        var (code, output, error) = Run(file, args);
        if (code != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(" ", args)} failed ({code}): {error.Trim()}");
        }

        return output;
    }

    /// <summary><c>ip netns exec NS ...</c>.</summary>
    public static string In(string ns, string file, params string[] args) => Must("ip", ["netns", "exec", ns, file, .. args]);

    /// <summary>Polls <paramref name="condition"/> every 250 ms until it holds or <paramref name="timeout"/> passes.</summary>
    public static bool Eventually(Func<bool> condition, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (condition())
            {
                return true;
            }

            Thread.Sleep(250);
        }

        return condition();
    }
}
