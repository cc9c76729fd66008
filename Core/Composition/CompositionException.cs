namespace Coracle.Core.Composition;

/// <summary>A plugin problem that stops start-up before anything runs.</summary>
internal sealed class CompositionException : Exception
{
    public CompositionException(string message, int exitCode)
        : base(message)
    {
        ExitCode = exitCode;
    }

    /// <summary>2 for a bad selection (config), 3 for a plugin that cannot be loaded or composed.</summary>
    public int ExitCode { get; }
}
