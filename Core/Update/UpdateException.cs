namespace Coracle.Core.Update;

/// <summary>An update refused or failed; <see cref="Exception.Message"/> is the one-line <c>WHERE: WHAT; FIX</c>.</summary>
internal sealed class UpdateException(string where, string what, string fix, int exitCode = ExitCodes.RuntimeFailure, Exception? inner = null)
    : Exception($"{where}: {what}; {fix}", inner)
{
    /// <summary>The process exit code: 1 for a runtime failure, 2 for bad input (a bundle refused, bad flags).</summary>
    public int ExitCode { get; } = exitCode;
}
