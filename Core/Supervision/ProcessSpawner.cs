using System.Collections.Concurrent;
using CliWrap;

namespace Coracle.Core.Supervision;

/// <summary>
/// Starts child processes from one long-lived thread, wrapped in <c>setpriv --pdeathsig KILL</c>.
/// The kernel delivers the parent-death signal when the <em>thread</em> that forked the child exits, so
/// forking from pool threads (which come and go) would kill children at random; one dedicated thread
/// that lives as long as coracle makes "children die with coracle, even on kill -9" exact.
/// </summary>
internal sealed class ProcessSpawner : IDisposable
{
    private readonly BlockingCollection<Action> _work = new();
    private readonly Thread _thread;

    public ProcessSpawner()
    {
        SetprivPath = new[] { "/usr/bin/setpriv", "/bin/setpriv" }.FirstOrDefault(File.Exists);
        SetsidPath = new[] { "/usr/bin/setsid", "/bin/setsid" }.FirstOrDefault(File.Exists);
        _thread = new Thread(() =>
        {
            foreach (var action in _work.GetConsumingEnumerable())
            {
                action();
            }
        })
        {
            IsBackground = true,
            Name = "coracle-spawner",
        };
        _thread.Start();
    }

    public static ProcessSpawner Shared { get; } = new();

    /// <summary>Null when util-linux's setpriv is missing; children then are not tied to coracle's life.</summary>
    public string? SetprivPath { get; }

    /// <summary>
    /// Null when util-linux's setsid is missing. With it each child gets its own session, so a Ctrl+C on
    /// coracle's terminal reaches coracle only and the stop stays ordered.
    /// </summary>
    public string? SetsidPath { get; }

    /// <summary>
    /// Builds the command that runs <paramref name="fileName"/> tied to coracle's life. setpriv and setsid
    /// both exec (no fork), so the child keeps the pid the supervisor signals.
    /// </summary>
    public Command Wrap(string fileName, IReadOnlyList<string> arguments)
    {
        var chain = new List<string>();
        if (SetprivPath is not null)
        {
            chain.AddRange([SetprivPath, "--pdeathsig", "KILL", "--"]);
        }

        if (SetsidPath is not null)
        {
            chain.Add(SetsidPath);
        }

        chain.Add(fileName);
        chain.AddRange(arguments);
        return CliWrap.Cli.Wrap(chain[0]).WithArguments(chain.Skip(1));
    }

    /// <summary>Starts the command on the spawner thread; the returned task is CliWrap's running command.</summary>
    public Task<CommandTask<CommandResult>> StartAsync(Command command, CancellationToken forceful)
    {
        var started = new TaskCompletionSource<CommandTask<CommandResult>>(TaskCreationOptions.RunContinuationsAsynchronously);
        _work.Add(() =>
        {
            try
            {
                started.SetResult(command.ExecuteAsync(forceful));
            }
            catch (Exception ex)
            {
                started.SetException(ex);
            }
        }, CancellationToken.None);
        return started.Task;
    }

    public void Dispose() => _work.CompleteAdding();
}
