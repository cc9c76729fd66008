using Microsoft.Extensions.Logging;

namespace Coracle.Core.Logging;

/// <summary>Over-the-air updates (Core/Update, <c>coracle update</c>): event ids 1400-1449.</summary>
internal static partial class Log
{
    [LoggerMessage(1400, LogLevel.Information, "update: step {Step}")]
    public static partial void UpdateStep(this ILogger logger, string step);

    [LoggerMessage(1401, LogLevel.Information, "update: bundle {Version} ({Profile}, {Rid}) signed by {Signer}, verified against {Ca}")]
    public static partial void UpdateVerified(this ILogger logger, string version, string profile, string rid, string signer, string ca);

    [LoggerMessage(1402, LogLevel.Information, "update: downloading {Url}: {Received} of {Total} bytes")]
    public static partial void UpdateDownloadProgress(this ILogger logger, string url, long received, string total);

    [LoggerMessage(1403, LogLevel.Information, "update: resuming {Url} at byte {Offset}")]
    public static partial void UpdateDownloadResume(this ILogger logger, string url, long offset);

    [LoggerMessage(1404, LogLevel.Information, "update: unpacked {Files} files into slot {Slot} ({Path})")]
    public static partial void UpdateUnpacked(this ILogger logger, int files, string slot, string path);

    [LoggerMessage(1405, LogLevel.Information, "update: snapshot before the switch: {What}")]
    public static partial void UpdateSnapshot(this ILogger logger, string what);

    [LoggerMessage(1406, LogLevel.Information, "update: current -> slots/{Slot} (version {Version}), on trial: {Attempts} starts to become healthy within {Deadline}")]
    public static partial void UpdateSwitched(this ILogger logger, string slot, string version, long attempts, string deadline);

    [LoggerMessage(1407, LogLevel.Information, "update: restart: {How}")]
    public static partial void UpdateRestart(this ILogger logger, string how);

    [LoggerMessage(1408, LogLevel.Warning, "update: fault point {Point} (CORACLE_UPDATE_FAULT): killing this process")]
    public static partial void UpdateFault(this ILogger logger, string point);

    [LoggerMessage(1410, LogLevel.Information, "update: slot {Slot} (version {Version}) is on trial: waiting up to {Deadline} for it to become healthy")]
    public static partial void UpdateTrialWaiting(this ILogger logger, string slot, string version, string deadline);

    [LoggerMessage(1411, LogLevel.Information, "update: slot {Slot} (version {Version}) is healthy after {Seconds} s: marked good")]
    public static partial void UpdateTrialGood(this ILogger logger, string slot, string version, long seconds);

    [LoggerMessage(1412, LogLevel.Error, "update: slot {Slot} (version {Version}) not healthy within {Deadline}: {Why}; stopping so the boot guard counts a failed start")]
    public static partial void UpdateTrialFailed(this ILogger logger, string slot, string version, string deadline, string why);

    [LoggerMessage(1413, LogLevel.Information, "update: waiting for slot {Slot} to become healthy ({Seconds} s): {Why}")]
    public static partial void UpdateTrialStillWaiting(this ILogger logger, string slot, long seconds, string why);
}
