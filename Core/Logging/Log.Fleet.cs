using Microsoft.Extensions.Logging;

namespace Coracle.Core.Logging;

/// <summary>Fleet rollouts (Core/Update/Fleet, the <c>ApplianceUpdate</c> controller): event ids 1600-1699.</summary>
internal static partial class Log
{
    [LoggerMessage(1600, LogLevel.Information, "fleet: ApplianceUpdate {Name}: node {Node} {State}: {Message}")]
    public static partial void FleetNodeState(this ILogger logger, string name, string node, string state, string message);

    [LoggerMessage(1601, LogLevel.Information, "fleet: ApplianceUpdate {Name}: waiting for a free place ({Holding} of {MaxUnavailable} nodes updating: {Who})")]
    public static partial void FleetWaiting(this ILogger logger, string name, int holding, int maxUnavailable, string who);

    [LoggerMessage(1602, LogLevel.Error, "fleet: ApplianceUpdate {Name} halted: {Reason}")]
    public static partial void FleetHalted(this ILogger logger, string name, string reason);

    [LoggerMessage(1603, LogLevel.Warning, "fleet: kube-apiserver not reachable or refused: {Why}; trying again")]
    public static partial void FleetApiProblem(this ILogger logger, string why);

    [LoggerMessage(1604, LogLevel.Information, "fleet: bundle {Url} downloaded and checked: SHA-256 {Sha256}, version {Version}")]
    public static partial void FleetFetched(this ILogger logger, string url, string sha256, string version);

    [LoggerMessage(1605, LogLevel.Information, "fleet: restarting into the new slot: {How}")]
    public static partial void FleetRestart(this ILogger logger, string how);

    [LoggerMessage(1606, LogLevel.Information, "fleet: ApplianceUpdate {Name}: slot {Slot} is on trial; waiting for the health gate")]
    public static partial void FleetOnTrial(this ILogger logger, string name, string slot);

    [LoggerMessage(1607, LogLevel.Warning, "fleet: ApplianceUpdate {Name}: fetching the bundle failed, trying again next pass: {Why}")]
    public static partial void FleetFetchRetry(this ILogger logger, string name, string why);

    [LoggerMessage(1650, LogLevel.Error, "fleet: ApplianceUpdate {Name}: node {Node} gave no sign of life for {Seconds} s while {State} (nodeTimeoutSeconds): marking it TimedOut, the rollout halts")]
    public static partial void FleetNodeTimedOut(this ILogger logger, string name, string node, string state, int seconds);

    [LoggerMessage(1651, LogLevel.Information, "fleet: uncordoned Node {Node}, cordoned for ApplianceUpdate {Name}: {Why}")]
    public static partial void FleetUncordoned(this ILogger logger, string node, string name, string why);

    [LoggerMessage(1652, LogLevel.Warning, "fleet: ApplianceUpdate {Name} was deleted while node {Node} was draining; nothing applied, {What}")]
    public static partial void FleetAbandoned(this ILogger logger, string name, string node, string what);

    [LoggerMessage(1653, LogLevel.Information, "fleet: ApplianceUpdate {Name} succeeded: every Node it selects now runs its version (a selected Node that had not finished is gone); marked by node {Node}")]
    public static partial void FleetFinished(this ILogger logger, string name, string node);
}
