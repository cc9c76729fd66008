using Microsoft.Extensions.Logging;

namespace Coracle.Plugins.LoadBalancer.ServiceLb;

/// <summary>
/// One node's ServiceLB loop. Every pass reads Nodes, Services and EndpointSlices and the node's held ports, plans this
/// node's forwards (<see cref="Planner.For"/>), replaces its iptables chains when the plan changed, reports what it serves
/// and refuses on its own Node (<see cref="NodeReport"/>), and raises a Warning Event on a Service for each new conflict.
/// On the server only, it then writes every Service's <c>status.loadBalancer</c> from all nodes' reports.
/// </summary>
internal sealed class ServiceLbController(
    string nodeName,
    bool writesStatus,
    KubeSource kube,
    Iptables iptables,
    PortProbe probe,
    ILogger logger,
    Action<string> reportDetail,
    PortRanges? allowed = null)
{
    /// <summary>Between passes: Services, endpoints, labels and listening sockets are re-read this often.</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(2);

    /// <summary>The rules are re-applied at least this often even when unchanged (repairs a flushed table).</summary>
    public static readonly TimeSpan Repair = TimeSpan.FromMinutes(1);

    private readonly HashSet<string> _announced = new(StringComparer.Ordinal);
    private string? _applied;
    private DateTimeOffset _appliedAt;
    private string? _detail;
    private string? _failing;
    private DateTimeOffset _failingLoggedAt;
    private int _failures;

    /// <summary>A failure that repeats is logged again this often.</summary>
    public static readonly TimeSpan RepeatedFailureLog = TimeSpan.FromMinutes(1);

    /// <summary>True once a pass completed.</summary>
    public bool Ready { get; private set; }

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        Log.Starting(logger, nodeName, writesStatus ? "server: writes Service status" : "agent");
        while (true)
        {
            try
            {
                await SyncAsync(cancellationToken);
                Ready = true;
                if (_failing is not null)
                {
                    Log.SyncRecovered(logger, _failures);
                    (_failing, _failures) = (null, 0);
                }
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                // A failure is logged when it is new, then once a minute while it repeats (the API server is often
                // not up yet for the first passes): the log says what is wrong without a line every 2 s.
                _failures++;
                if (e.Message != _failing || DateTimeOffset.UtcNow - _failingLoggedAt >= RepeatedFailureLog)
                {
                    Log.SyncFailed(logger, e.Message, _failures);
                    (_failing, _failingLoggedAt) = (e.Message, DateTimeOffset.UtcNow);
                }
            }

            await Task.Delay(Interval, cancellationToken);
        }
    }

    /// <summary>One pass.</summary>
    public async Task SyncAsync(CancellationToken cancellationToken)
    {
        var view = await kube.ReadAsync(cancellationToken);
        var self = view.Nodes.FirstOrDefault(n => n.Name == nodeName);
        var plan = self is null
            ? new NodePlan([], NodeReport.Empty)
            : Planner.For(self, view.Nodes, view.Services, view.For, probe.Read(), probe.WithOwner, allowed);

        var input = IptablesRules.RestoreInput(plan.Forwards);
        if (input != _applied || DateTimeOffset.UtcNow - _appliedAt > Repair)
        {
            await iptables.ApplyAsync(plan.Forwards, cancellationToken, quiet: input == _applied);
            _applied = input;
            _appliedAt = DateTimeOffset.UtcNow;
        }

        var nodes = view.Nodes;
        if (self is not null)
        {
            if (self.Report != plan.Report && self.Report?.ToJson() != plan.Report.ToJson())
            {
                await kube.PatchReportAsync(nodeName, plan.Report.ToJson(), cancellationToken);
            }

            nodes = view.Nodes.Select(n => n.Name == nodeName ? n with { Report = plan.Report } : n).ToList();
        }

        await AnnounceConflictsAsync(plan.Report.Conflicts, view.Services, cancellationToken);
        if (writesStatus)
        {
            foreach (var service in view.Services.Where(s => s.Ours))
            {
                var addresses = Planner.StatusAddresses(service, nodes);
                if (!addresses.SequenceEqual(service.Ingress, StringComparer.Ordinal))
                {
                    await kube.PatchStatusAsync(service, addresses, cancellationToken);
                    Log.StatusWritten(logger, service.Key, addresses.Count == 0 ? "no node serves it" : string.Join(", ", addresses));
                }
            }
        }

        var detail = plan.Describe();
        if (detail != _detail)
        {
            reportDetail(detail);
            Log.Synced(logger, detail);
            _detail = detail;
        }
    }

    private async Task AnnounceConflictsAsync(IReadOnlyList<PortConflict> conflicts, IReadOnlyList<LbService> services, CancellationToken cancellationToken)
    {
        var current = new HashSet<string>(StringComparer.Ordinal);
        foreach (var conflict in conflicts)
        {
            var key = $"{conflict.Service}|{conflict.Port}|{conflict.Holder}|{conflict.Reason}";
            current.Add(key);
            if (_announced.Contains(key) || services.FirstOrDefault(s => s.Key == conflict.Service) is not { } service)
            {
                continue;
            }

            Log.Conflict(logger, conflict.Service, nodeName, conflict.Message(nodeName));
            try
            {
                await kube.EventAsync(service, nodeName, conflict.Reason, conflict.Message(nodeName), cancellationToken);
                _announced.Add(key);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                Log.Failed(logger, $"record the event for {conflict.Service}", e.Message);
            }
        }

        _announced.IntersectWith(current);
    }
}
