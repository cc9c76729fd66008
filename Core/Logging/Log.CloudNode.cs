using Microsoft.Extensions.Logging;

namespace Coracle.Core.Logging;

/// <summary>Node addresses and the cloud-node controller (event ids 1100-1119).</summary>
internal static partial class Log
{
    [LoggerMessage(1100, LogLevel.Information, "node {Node} declared: {What}")]
    public static partial void NodeDeclared(this ILogger logger, string node, string what);

    [LoggerMessage(1101, LogLevel.Information, "waiting for the kubelet to register node {Node}")]
    public static partial void NodeNotRegistered(this ILogger logger, string node);

    [LoggerMessage(1102, LogLevel.Warning, "node {Node}: {Action} failed, retrying: {Reason}")]
    public static partial void NodeUpdateProblem(this ILogger logger, string node, string action, string reason);

    [LoggerMessage(1103, LogLevel.Information, "cloud-node controller: node {Node} initialized: addresses {Addresses}, providerID {ProviderId}, uninitialized taint removed")]
    public static partial void CloudNodeInitialized(this ILogger logger, string node, string addresses, string providerId);

    [LoggerMessage(1104, LogLevel.Information, "cloud-node controller: node {Node} addresses updated: {Addresses}")]
    public static partial void CloudNodeAddresses(this ILogger logger, string node, string addresses);

    [LoggerMessage(1105, LogLevel.Information, "cloud-node controller: node {Node} carries the uninitialized taint but no valid coracle.dev/internal-ip (and coracle.dev/external-ip) annotation yet; waiting for its node to declare its addresses")]
    public static partial void CloudNodeWaiting(this ILogger logger, string node);

    [LoggerMessage(1106, LogLevel.Information, "cloud-node controller running: watching nodes")]
    public static partial void CloudNodeRunning(this ILogger logger);

    [LoggerMessage(1107, LogLevel.Information, "cloud-node controller disabled (--disable-cloud-controller): kubelets run without --cloud-provider=external")]
    public static partial void CloudNodeDisabled(this ILogger logger);
}
