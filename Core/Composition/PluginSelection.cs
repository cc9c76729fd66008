namespace Coracle.Core.Composition;

/// <summary>What selection decided about one installed plugin.</summary>
internal sealed record PluginDecision(PluginEntry Entry, bool Selected, string Why);

/// <summary>The result of selection: every installed plugin with a decision, and the active ones per point.</summary>
internal sealed record PluginSelection(IReadOnlyList<PluginDecision> Decisions)
{
    public IEnumerable<PluginEntry> Active(string point) =>
        Decisions.Where(d => d.Selected && d.Entry.Point == point).Select(d => d.Entry)
            .OrderBy(e => e.Metadata.Order).ThenBy(e => e.Name, StringComparer.Ordinal);

    public PluginEntry? Single(string point) => Active(point).FirstOrDefault();
}
