using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Coracle.Core.Kubernetes;

namespace Coracle.Core.Tests.Support;

/// <summary>
/// The real processes a test fixture starts (etcd, the datastore test host, kube-apiserver): their output collected in
/// one place, free loopback ports for them, and the wait until a kube-apiserver answers.
/// </summary>
internal sealed class ChildProcesses
{
    private readonly StringBuilder _output = new();

    /// <summary>Every started process's output so far.</summary>
    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>Starts <paramref name="file"/> with its stdout and stderr collected in <see cref="Output"/>.</summary>
    public Process Start(string file, IEnumerable<string> args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    /// <summary>
    /// Returns once kube-apiserver is ready and <paramref name="probePath"/> (a namespace it creates itself) answers;
    /// throws with the collected output when it exits or is not ready within two minutes (a hang guard).
    /// </summary>
    public async Task WaitForApiServerAsync(KubeApi api, Process apiserver, string probePath)
    {
        var deadline = DateTime.UtcNow.AddSeconds(120);
        while (true)
        {
            try
            {
                if ((await api.GetAsync("/readyz", CancellationToken.None)).IsSuccess
                    && (await api.GetAsync(probePath, CancellationToken.None)).IsSuccess)
                {
                    return;
                }
            }
            catch (KubeApiUnavailableException)
            {
            }

            if (DateTime.UtcNow > deadline || apiserver.HasExited)
            {
                throw new InvalidOperationException($"kube-apiserver did not become ready:\n{Output}");
            }

            await Task.Delay(500);
        }
    }

    private void Append(string? line)
    {
        lock (_output)
        {
            _output.AppendLine(line);
        }
    }
}
