using Microsoft.Extensions.Logging;

namespace Coracle.Plugins.Runtime.Containerd;

/// <summary>The plugin's log messages; event ids 4100-4199 belong to this plugin.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 4100, Level = LogLevel.Information, Message = "containerd config written to {File} (snapshotter {Snapshotter}, SystemdCgroup={SystemdCgroup}, restrict_oom_score_adj={RestrictOom})")]
    public static partial void ConfigWritten(ILogger logger, string file, string snapshotter, bool systemdCgroup, bool restrictOom);

    [LoggerMessage(EventId = 4101, Level = LogLevel.Information, Message = "containerd config taken from template {Template}")]
    public static partial void TemplateUsed(ILogger logger, string template);

    [LoggerMessage(EventId = 4102, Level = LogLevel.Information, Message = "registries from {File}: {Hosts} hosts.toml file(s) in {CertsDir}")]
    public static partial void RegistriesWritten(ILogger logger, string file, int hosts, string certsDir);

    [LoggerMessage(EventId = 4103, Level = LogLevel.Warning, Message = "containerd unavailable: {Reason}")]
    public static partial void Unavailable(ILogger logger, string reason);

    [LoggerMessage(EventId = 4104, Level = LogLevel.Information, Message = "runtime handler {Name} -> {Binary}")]
    public static partial void Handler(ILogger logger, string name, string binary);

    [LoggerMessage(EventId = 4110, Level = LogLevel.Information, Message = "airgap images: {Count} tarball(s) in {Dir}")]
    public static partial void AirgapFound(ILogger logger, int count, string dir);

    [LoggerMessage(EventId = 4111, Level = LogLevel.Information, Message = "airgap images: importing {Index}/{Count} {File} ({Size} bytes)")]
    public static partial void AirgapImporting(ILogger logger, int index, int count, string file, long size);

    [LoggerMessage(EventId = 4112, Level = LogLevel.Information, Message = "airgap images: {File} already imported (sha256 {Sha256})")]
    public static partial void AirgapAlreadyImported(ILogger logger, string file, string sha256);

    [LoggerMessage(EventId = 4113, Level = LogLevel.Information, Message = "airgap images: {File}: {Line}")]
    public static partial void AirgapProgress(ILogger logger, string file, string line);

    [LoggerMessage(EventId = 4114, Level = LogLevel.Information, Message = "airgap images: imported {File}")]
    public static partial void AirgapImported(ILogger logger, string file);

    [LoggerMessage(EventId = 4115, Level = LogLevel.Error, Message = "airgap images: {File} could not be imported and is skipped: {Reason}")]
    public static partial void AirgapFailed(ILogger logger, string file, string reason);

    [LoggerMessage(EventId = 4116, Level = LogLevel.Information, Message = "running {Command}")]
    public static partial void Running(ILogger logger, string command);

    [LoggerMessage(EventId = 4120, Level = LogLevel.Information, Message = "sandbox image {Image} is in containerd")]
    public static partial void SandboxPresent(ILogger logger, string image);

    [LoggerMessage(EventId = 4121, Level = LogLevel.Information, Message = "sandbox image {Image} is not in containerd: importing Coracle's own pause image (built from {Busybox}) under that name")]
    public static partial void SandboxBuilding(ILogger logger, string image, string busybox);

    [LoggerMessage(EventId = 4122, Level = LogLevel.Information, Message = "sandbox image {Image} imported")]
    public static partial void SandboxImported(ILogger logger, string image);

    [LoggerMessage(EventId = 4123, Level = LogLevel.Error, Message = "sandbox image {Image} unavailable, pods cannot start: {Reason}")]
    public static partial void SandboxMissing(ILogger logger, string image, string reason);

    [LoggerMessage(EventId = 4130, Level = LogLevel.Information, Message = "killing {Shims} containerd shims of {Socket} and {Containers} container processes")]
    public static partial void KillingShims(ILogger logger, int shims, string socket, int containers);

    [LoggerMessage(EventId = 4131, Level = LogLevel.Warning, Message = "{Count} killed containerd processes still exist after {Seconds} s; removing the pods' network namespaces anyway")]
    public static partial void StillRunning(ILogger logger, int count, int seconds);

    [LoggerMessage(EventId = 4132, Level = LogLevel.Warning, Message = "could not unmount pod network namespace {Path} (errno {Errno})")]
    public static partial void UnmountFailed(ILogger logger, string path, int errno);

    [LoggerMessage(EventId = 4133, Level = LogLevel.Warning, Message = "could not delete pod network namespace file {Path}: {Reason}")]
    public static partial void RemoveFailed(ILogger logger, string path, string reason);

    [LoggerMessage(EventId = 4134, Level = LogLevel.Information, Message = "removed {Count} pod network namespaces: {Paths}")]
    public static partial void NamespacesRemoved(ILogger logger, int count, string paths);
}
