namespace Coracle.Core.Configuration;

/// <summary>One configuration problem: where it is (file:line:column, flag or variable) and what to do.</summary>
internal sealed record ConfigError(string Where, string Message)
{
    public override string ToString() => $"{Where}: {Message}";
}

/// <summary>Thrown with every problem found, so the user fixes them all in one go. Exit code 2.</summary>
internal sealed class ConfigException : Exception
{
    public ConfigException(IReadOnlyList<ConfigError> errors)
        : base(string.Join(Environment.NewLine, errors))
    {
        Errors = errors;
    }

    public ConfigException(string where, string message)
        : this([new ConfigError(where, message)])
    {
    }

    public IReadOnlyList<ConfigError> Errors { get; }
}
