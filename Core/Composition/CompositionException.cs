namespace Coracle.Core.Composition;

/// <summary>Plugin problems that stop start-up before anything runs; every one found, each a line.</summary>
internal sealed class CompositionException : Exception
{
    public CompositionException(string message, int exitCode)
        : this([message], exitCode)
    {
    }

    public CompositionException(IReadOnlyList<string> messages, int exitCode)
        : base(string.Join(Environment.NewLine, messages))
    {
        Messages = messages;
        ExitCode = exitCode;
    }

    /// <summary>Each problem, one line with its fix.</summary>
    public IReadOnlyList<string> Messages { get; }

    /// <summary>2 for a bad selection (config), 3 for a plugin that cannot be loaded or composed.</summary>
    public int ExitCode { get; }
}
