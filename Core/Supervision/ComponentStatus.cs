namespace Coracle.Core.Supervision;

/// <summary>The lifecycle states <c>coracle status</c> shows.</summary>
internal enum ComponentState
{
    Pending,
    Starting,
    Ready,
    Backoff,
    Failed,
    Stopping,
    Stopped,
    Unavailable,
}

/// <summary>A snapshot of one component.</summary>
internal sealed record ComponentStatus(
    string Name,
    string Kind,
    ComponentState State,
    int? Pid,
    int Restarts,
    DateTimeOffset Since,
    string Detail);
