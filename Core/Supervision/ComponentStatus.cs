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

    /// <summary>Ready, but the component reports that what it watches is in trouble (the etcd members without quorum); the detail says what.</summary>
    Degraded,
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
