namespace Coracle.Plugins.Runtime.Containerd;

/// <summary>The supervised containerd process, as the host's supervisor runs it.</summary>
public static class ContainerdProcess
{
    /// <summary>The component name; the kubelet waits for it.</summary>
    public const string ComponentName = "containerd";

    /// <summary>The command-line arguments: config, socket, state and root.</summary>
    public static IReadOnlyList<string> Arguments(ContainerdSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        return ["--config", settings.ConfigFile, "--address", settings.Socket, "--state", settings.StateDir, "--root", settings.RootDir];
    }

    /// <summary>
    /// The process spec. Readiness is the CRI API answering (Version, then Status with RuntimeReady). The components
    /// folder goes first on PATH so the shim and runc the image ships are found before the host's.
    /// containerd starts its shims in their own process groups and they outlive containerd, so containers keep
    /// running across a containerd restart.
    /// </summary>
    public static ProcessComponent Build(ContainerdSettings settings, string binary, string? pathVariable)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var path = string.IsNullOrEmpty(settings.ComponentsDir)
            ? pathVariable ?? ""
            : string.IsNullOrEmpty(pathVariable) ? settings.ComponentsDir : settings.ComponentsDir + ":" + pathVariable;
        var socket = settings.Socket;
        return new ProcessComponent
        {
            Name = ComponentName,
            FileName = binary,
            Arguments = Arguments(settings),
            Environment = new Dictionary<string, string> { ["PATH"] = path },
            Readiness = ReadinessProbe(socket),
            BeforeStart = _ =>
            {
                PrepareFolders(settings);
                return Task.CompletedTask;
            },
        };
    }

    /// <summary>Ready when the CRI API on <paramref name="socket"/> answers Version and Status (RuntimeReady).</summary>
    public static CustomProbe ReadinessProbe(string socket)
    {
        var timeout = TimeSpan.FromSeconds(5);
        return new CustomProbe(async cancellationToken =>
        {
            using var client = new CriClient(socket);
            return await client.IsReadyAsync(timeout, cancellationToken);
        })
        {
            Interval = TimeSpan.FromMilliseconds(500),
            Timeout = timeout,
        };
    }

    /// <summary>Creates root, state and the socket's folder; removes a stale socket left by a killed containerd.</summary>
    public static void PrepareFolders(ContainerdSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        Directory.CreateDirectory(settings.RootDir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        Directory.CreateDirectory(settings.StateDir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        Directory.CreateDirectory(Path.GetDirectoryName(settings.Socket)!);
        if (File.Exists(settings.Socket))
        {
            File.Delete(settings.Socket);
        }
    }
}
