using System.Diagnostics;
using Coracle.Core.Logging;
using Coracle.Core.Supervision;
using Microsoft.Extensions.Logging;

namespace Coracle.Core.Update;

/// <summary>
/// The health gate of a slot on trial, run by the node itself: when this executable runs from <c>R/slots/X</c> and the
/// state names X on trial, it waits for the node to be healthy (<see cref="Why"/>) within the state's deadline, then
/// marks X good. Past the deadline it records why and stops the node with exit code 1, so the unit restarts it and
/// the boot guard counts a failed start.
/// </summary>
internal sealed class UpdateGate : IDisposable
{
    private readonly CancellationTokenSource _stop = new();

    private UpdateGate()
    {
    }

    /// <summary>True when the deadline passed: the node should exit with code 1.</summary>
    public bool Failed { get; private set; }

    /// <summary>Starts the gate when this process runs a slot on trial; null otherwise.</summary>
    public static UpdateGate? StartIfOnTrial(Func<IReadOnlyList<ComponentStatus>> components, ILogger log, InstallLayout? layout = null, string? slot = null)
    {
        if (layout is null || slot is null)
        {
            if (InstallLayout.OfThisProcess() is not { } self)
            {
                return null;
            }

            (layout, slot) = self;
        }

        var state = UpdateState.Read(layout.StateFile);
        if (state is null || state.Trial != slot || layout.ActiveSlot() != slot)
        {
            return null;
        }

        var gate = new UpdateGate();
        _ = gate.RunAsync(layout, slot, TimeSpan.FromSeconds(state.DeadlineSeconds), components, log);
        return gate;
    }

    private async Task RunAsync(InstallLayout layout, string slot, TimeSpan deadline, Func<IReadOnlyList<ComponentStatus>> components, ILogger log)
    {
        var version = layout.Image(slot)?.Version ?? "?";
        log.UpdateTrialWaiting(slot, version, $"{deadline.TotalSeconds}s");
        var clock = Stopwatch.StartNew();
        var lastReport = TimeSpan.Zero;
        string? why = "not started";
        try
        {
            while (clock.Elapsed < deadline)
            {
                why = Why(components());
                if (why is null)
                {
                    MarkGood(layout, slot, $"healthy after {(long)clock.Elapsed.TotalSeconds} s");
                    log.UpdateTrialGood(slot, version, (long)clock.Elapsed.TotalSeconds);
                    return;
                }

                if (clock.Elapsed - lastReport > TimeSpan.FromSeconds(30))
                {
                    lastReport = clock.Elapsed;
                    log.UpdateTrialStillWaiting(slot, (long)clock.Elapsed.TotalSeconds, why);
                }

                await Task.Delay(TimeSpan.FromMilliseconds(500), _stop.Token);
            }
        }
        catch (OperationCanceledException)
        {
            return;
        }

        Failed = true;
        var state = UpdateState.Read(layout.StateFile);
        state?.WithResult("trial-failed", $"slot {slot} (version {version}) not healthy within {deadline.TotalSeconds} s: {why}").Write(layout.StateFile);
        log.UpdateTrialFailed(slot, version, $"{deadline.TotalSeconds}s", why ?? "");
        // The node's own SIGTERM handler stops every component in order; the caller then exits with code 1.
        _ = Native.Kill(Environment.ProcessId, 15);
    }

    /// <summary>
    /// Null when the node is healthy, else why not. Healthy: at least one component, none failed or still coming up
    /// (pending, starting, backoff), every one ready or reported unavailable (its binary is not in this image). The
    /// supervisor's readiness probes are what make a component ready: the datastore answering, the runtime's CRI, the
    /// Kubernetes components' health endpoints, as the profile's image carries them.
    /// </summary>
    public static string? Why(IReadOnlyList<ComponentStatus> components)
    {
        if (components.Count == 0)
        {
            return "no component is running yet";
        }

        var bad = components.Where(c => c.State is not (ComponentState.Ready or ComponentState.Unavailable)).ToList();
        return bad.Count == 0 ? null : string.Join(", ", bad.Select(c => $"{c.Name} {c.State.ToString().ToLowerInvariant()}"));
    }

    /// <summary>Clears the trial of <paramref name="slot"/>: it is the good slot from now on.</summary>
    public static void MarkGood(InstallLayout layout, string slot, string why)
    {
        var state = UpdateState.Read(layout.StateFile) ?? new UpdateState();
        (state with { Good = slot, Trial = "", Attempts = 0 })
            .WithResult("good", $"slot {slot} (version {layout.Image(slot)?.Version ?? "?"}) {why}")
            .Write(layout.StateFile);
    }

    public void Dispose()
    {
        _stop.Cancel();
        _stop.Dispose();
    }
}
