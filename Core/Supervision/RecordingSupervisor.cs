using Coracle.Plugins;

namespace Coracle.Core.Supervision;

/// <summary>Passes everything to the supervisor and remembers which components one plugin registered.</summary>
internal sealed class RecordingSupervisor(ISupervisor inner) : ISupervisor
{
    private readonly List<string> _added = [];

    public IReadOnlyList<string> Added => _added;

    public void Add(ComponentSpec component)
    {
        inner.Add(component);
        _added.Add(component.Name);
    }

    public Task WaitReadyAsync(string name, CancellationToken cancellationToken) => inner.WaitReadyAsync(name, cancellationToken);

    public void ReportUnavailable(string name, string reason) => inner.ReportUnavailable(name, reason);

    public void ReportDetail(string name, string detail) => inner.ReportDetail(name, detail);
}
