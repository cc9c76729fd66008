using Microsoft.Extensions.Logging;

namespace Coracle.Core.Logging;

/// <summary>Every log message of the core, source-generated, with its event id kept in this one file.</summary>
internal static partial class Log
{
    // 1xx: start-up and composition
    [LoggerMessage(100, LogLevel.Information, "coracle {Version} {Role} starting (data dir {DataDir}, config {ConfigFile})")]
    public static partial void Starting(this ILogger logger, string version, string role, string dataDir, string configFile);

    [LoggerMessage(101, LogLevel.Information, "plugins composed: {Active} active of {Installed} installed in {Elapsed} ms")]
    public static partial void Composed(this ILogger logger, string active, int installed, long elapsed);

    [LoggerMessage(102, LogLevel.Warning, "{Point}: plugin {Name} is selected but not implemented in this build; it is reported, not started")]
    public static partial void NotImplemented(this ILogger logger, string point, string name);

    [LoggerMessage(103, LogLevel.Information, "{Point}: none active")]
    public static partial void PointEmpty(this ILogger logger, string point);

    [LoggerMessage(104, LogLevel.Information, "supervisor running with {Count} components; node started in {Elapsed} ms")]
    public static partial void SupervisorRunning(this ILogger logger, int count, long elapsed);

    [LoggerMessage(105, LogLevel.Information, "received {Signal}; stopping")]
    public static partial void SignalReceived(this ILogger logger, string signal);

    [LoggerMessage(106, LogLevel.Information, "stopped cleanly")]
    public static partial void Stopped(this ILogger logger);

    [LoggerMessage(107, LogLevel.Warning, "{Component} is not available: {Reason}")]
    public static partial void Unavailable(this ILogger logger, string component, string reason);

    [LoggerMessage(108, LogLevel.Information, "step: {Step}")]
    public static partial void Step(this ILogger logger, string step);

    // 2xx: supervisor
    [LoggerMessage(200, LogLevel.Information, "starting: {CommandLine}")]
    public static partial void ProcessStarting(this ILogger logger, string commandLine);

    [LoggerMessage(201, LogLevel.Information, "started (pid {Pid})")]
    public static partial void ProcessStarted(this ILogger logger, int pid);

    [LoggerMessage(202, LogLevel.Information, "ready after {Elapsed} ms")]
    public static partial void Ready(this ILogger logger, long elapsed);

    [LoggerMessage(203, LogLevel.Warning, "exited ({Reason}); restart {Restart} in {Delay} ms")]
    public static partial void Restarting(this ILogger logger, string reason, int restart, long delay);

    [LoggerMessage(204, LogLevel.Error, "crash loop: {Restarts} restarts within {Window}; giving up (last: {Reason})")]
    public static partial void CrashLoop(this ILogger logger, int restarts, string window, string reason);

    [LoggerMessage(205, LogLevel.Information, "waiting for {What} ({Elapsed} s)")]
    public static partial void Waiting(this ILogger logger, string what, long elapsed);

    [LoggerMessage(206, LogLevel.Information, "stopping (SIGTERM, up to {Timeout} ms)")]
    public static partial void Stopping(this ILogger logger, long timeout);

    [LoggerMessage(207, LogLevel.Warning, "did not stop within {Timeout} ms; killing")]
    public static partial void Killing(this ILogger logger, long timeout);

    [LoggerMessage(208, LogLevel.Information, "stopped")]
    public static partial void ComponentStopped(this ILogger logger);

    [LoggerMessage(209, LogLevel.Error, "failed to start: {Reason}")]
    public static partial void StartFailed(this ILogger logger, string reason);

    [LoggerMessage(210, LogLevel.Information, "{Line}")]
    public static partial void Output(this ILogger logger, string line);

    [LoggerMessage(211, LogLevel.Information, "exited with code 0; not restarted")]
    public static partial void Completed(this ILogger logger);

    [LoggerMessage(212, LogLevel.Warning, "setpriv not found: child processes may outlive coracle if it is killed; install util-linux")]
    public static partial void NoSetpriv(this ILogger logger);

    // 3xx: status
    [LoggerMessage(300, LogLevel.Information, "status socket listening on {Path}")]
    public static partial void StatusListening(this ILogger logger, string path);

    [LoggerMessage(301, LogLevel.Debug, "status request failed: {Reason}")]
    public static partial void StatusFailed(this ILogger logger, string reason);
}
