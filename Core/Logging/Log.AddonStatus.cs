using Microsoft.Extensions.Logging;

namespace Coracle.Core.Logging;

/// <summary>The add-on status of the manifests controller (<c>coracle status</c>'s add-ons; event ids 1070-1079).</summary>
internal static partial class Log
{
    [LoggerMessage(1070, LogLevel.Warning, "add-on {Addon}: a pod cannot get image {Image}; put it in DATA/agent/images (the airgap folder of the pod's node) or make a registry serve it")]
    public static partial void AddonImageMissing(this ILogger logger, string addon, string image);

    [LoggerMessage(1071, LogLevel.Debug, "add-on status: reading workloads and pods failed: {Reason}; coracle status keeps the last reading")]
    public static partial void AddonHealthUnavailable(this ILogger logger, string reason);
}
