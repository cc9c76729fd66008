using Cronos;

namespace Coracle.Core.Snapshots;

/// <summary>A snapshot schedule: a standard 5-field cron expression (minute hour day month weekday), in UTC.</summary>
internal sealed class SnapshotSchedule
{
    private readonly CronExpression _expression;

    private SnapshotSchedule(string text, CronExpression expression)
    {
        Text = text;
        _expression = expression;
    }

    /// <summary>The expression as written.</summary>
    public string Text { get; }

    /// <summary>Parses <paramref name="text"/>; throws <see cref="FormatException"/> with <see cref="Problem"/>'s text.</summary>
    public static SnapshotSchedule Parse(string text) =>
        Problem(text) is { } problem ? throw new FormatException(problem) : new SnapshotSchedule(text, CronExpression.Parse(text.Trim(), CronFormat.Standard));

    /// <summary>What is wrong with <paramref name="text"/> as a schedule, in the house format's <c>WHAT; FIX</c>; null when it is fine.</summary>
    public static string? Problem(string text)
    {
        try
        {
            _ = CronExpression.Parse(text.Trim(), CronFormat.Standard);
            return null;
        }
        catch (CronFormatException e)
        {
            return $"'{text}' is not a 5-field cron expression ({e.Message.TrimEnd('.')}); write minute hour day month weekday, like \"0 */12 * * *\"";
        }
    }

    /// <summary>The first time after <paramref name="after"/> the schedule fires; null when it never does again.</summary>
    public DateTimeOffset? Next(DateTimeOffset after) =>
        _expression.GetNextOccurrence(after.UtcDateTime, inclusive: false) is { } next ? new DateTimeOffset(next, TimeSpan.Zero) : null;
}
