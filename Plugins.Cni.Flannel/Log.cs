using Microsoft.Extensions.Logging;

namespace Coracle.Plugins.Cni.Flannel;

/// <summary>The plugin's log messages; event ids 4300-4349 belong to this plugin.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 4300, Level = LogLevel.Information, Message = "flannel: backend {Backend}, interface {Interface}, public ip {PublicIp}, mtu {Mtu}")]
    public static partial void Starting(ILogger logger, string backend, string @interface, string publicIp, int mtu);

    [LoggerMessage(EventId = 4301, Level = LogLevel.Information, Message = "flannel: lease acquired: subnet {Subnet} of {Network}")]
    public static partial void LeaseAcquired(ILogger logger, string subnet, string network);

    [LoggerMessage(EventId = 4302, Level = LogLevel.Information, Message = "flannel: wrote {File}")]
    public static partial void FileWritten(ILogger logger, string file);

    [LoggerMessage(EventId = 4303, Level = LogLevel.Information, Message = "flannel: peer {Name} added: subnet {Subnet}, public ip {PublicIp}")]
    public static partial void PeerAdded(ILogger logger, string name, string subnet, string publicIp);

    [LoggerMessage(EventId = 4304, Level = LogLevel.Information, Message = "flannel: peer {Name} removed (subnet {Subnet})")]
    public static partial void PeerRemoved(ILogger logger, string name, string subnet);

    [LoggerMessage(EventId = 4305, Level = LogLevel.Error, Message = "flannel: peer {Name} refused: {Reason}")]
    public static partial void PeerRefused(ILogger logger, string name, string reason);

    [LoggerMessage(EventId = 4306, Level = LogLevel.Information, Message = "running {Command}")]
    public static partial void Running(ILogger logger, string command);

    [LoggerMessage(EventId = 4307, Level = LogLevel.Warning, Message = "{Command} failed (exit {ExitCode}): {Error}")]
    public static partial void CommandFailed(ILogger logger, string command, int exitCode, string error);

    [LoggerMessage(EventId = 4308, Level = LogLevel.Information, Message = "flannel: reconcile repaired {Count} kernel entr(y/ies)")]
    public static partial void Repaired(ILogger logger, int count);

    [LoggerMessage(EventId = 4309, Level = LogLevel.Information, Message = "flannel: stopping, removing kernel state")]
    public static partial void Stopping(ILogger logger);

    [LoggerMessage(EventId = 4310, Level = LogLevel.Information, Message = "flannel: waiting for {What}")]
    public static partial void Waiting(ILogger logger, string what);

    [LoggerMessage(EventId = 4311, Level = LogLevel.Warning, Message = "flannel: node watch ended ({Reason}); listing again")]
    public static partial void WatchRestart(ILogger logger, string reason);

    [LoggerMessage(EventId = 4312, Level = LogLevel.Information, Message = "flannel: iptables variant {Variant}")]
    public static partial void IptablesVariant(ILogger logger, string variant);

    [LoggerMessage(EventId = 4313, Level = LogLevel.Warning, Message = "flannel: reconcile failed: {Reason}")]
    public static partial void ReconcileFailed(ILogger logger, string reason);

    [LoggerMessage(EventId = 4314, Level = LogLevel.Information, Message = "flannel: backend none, node networking is left to the user")]
    public static partial void BackendNone(ILogger logger);
}
