using CliWrap;
using CliWrap.Buffered;
using Microsoft.Extensions.Logging;

namespace Coracle.Plugins.Cni.Flannel;

/// <summary>A command to run: <c>ip</c>, <c>bridge</c> or an iptables variant with its arguments.</summary>
public sealed record KernelCommand(string FileName, IReadOnlyList<string> Arguments)
{
    /// <summary>The command line as logged and as an operator would type it.</summary>
    public override string ToString() =>
        FileName + " " + string.Join(" ", Arguments.Select(a => a.Contains(' ', StringComparison.Ordinal) ? $"\"{a}\"" : a));
}

/// <summary>The result of a command.</summary>
public sealed record CommandResult(int ExitCode, string StandardOutput, string StandardError);

/// <summary>Runs commands; the seam between the data plane and the host.</summary>
public interface ICommandRunner
{
    /// <summary>Runs the command and returns its exit code and output; never throws for a non-zero exit.</summary>
    Task<CommandResult> RunAsync(KernelCommand command, CancellationToken cancellationToken);
}

/// <summary>Runs commands as child processes (CliWrap); changes are logged before they run, reads at Trace.</summary>
public sealed class ProcessCommandRunner : ICommandRunner
{
    private readonly ILogger _logger;

    /// <summary>Logs to <paramref name="logger"/>.</summary>
    public ProcessCommandRunner(ILogger logger)
    {
        _logger = logger;
    }

    /// <inheritdoc />
    public async Task<CommandResult> RunAsync(KernelCommand command, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(command);
        var changes = !IsRead(command);
        if (changes)
        {
            Log.Running(_logger, command.ToString());
        }
        else if (_logger.IsEnabled(LogLevel.Trace))
        {
            Log.Running(_logger, command.ToString());
        }

        BufferedCommandResult result;
        try
        {
            result = await Cli.Wrap(command.FileName)
                .WithArguments(command.Arguments)
                .WithValidation(CommandResultValidation.None)
                .ExecuteBufferedAsync(cancellationToken);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return new CommandResult(127, "", $"{command.FileName}: {e.Message}");
        }

        if (changes && result.ExitCode != 0)
        {
            Log.CommandFailed(_logger, command.ToString(), result.ExitCode, result.StandardError.Trim());
        }

        return new CommandResult(result.ExitCode, result.StandardOutput, result.StandardError);
    }

    private static bool IsRead(KernelCommand command) =>
        command.Arguments.Any(a => a is "show" or "-S" or "-V" or "-C" or "get");
}
