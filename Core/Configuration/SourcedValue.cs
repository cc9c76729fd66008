namespace Coracle.Core.Configuration;

/// <summary>A setting's value and where it came from (default, file:line:col, variable or flag).</summary>
internal sealed record SourcedValue(object Value, string Source);
