namespace Coracle.Plugins.Runtime.Nvidia;

/// <summary>One NVIDIA runtime the discovery looks for.</summary>
/// <param name="Handler">The runtime handler (and RuntimeClass) name.</param>
/// <param name="Binary">The executable's file name.</param>
public sealed record NvidiaRuntimeCandidate(string Handler, string Binary);

/// <summary>
/// Finds the NVIDIA container runtimes like K3s does: each runtime binary is looked for in a fixed list of
/// folders below a filesystem root, the GPU operator's folder first; the first hit wins per runtime.
/// </summary>
public static class NvidiaDiscovery
{
    /// <summary>The runtimes, in the order handlers are reported.</summary>
    public static IReadOnlyList<NvidiaRuntimeCandidate> Candidates { get; } =
    [
        new("nvidia", "nvidia-container-runtime"),
        new("nvidia-experimental", "nvidia-container-runtime-experimental"),
        new("nvidia-cdi", "nvidia-container-runtime.cdi"),
    ];

    /// <summary>
    /// The folders searched, relative to the root, in precedence order: the GPU operator's toolkit install, then the
    /// package manager's and a manual install's folders. K3s checks <c>usr/local/nvidia/toolkit</c> and <c>usr/bin</c>;
    /// <c>usr/local/bin</c> is added for manual installs.
    /// </summary>
    public static IReadOnlyList<string> Locations { get; } =
    [
        "usr/local/nvidia/toolkit",
        "usr/bin",
        "usr/local/bin",
    ];

    /// <summary>
    /// Returns one handler per runtime found below <paramref name="root"/>, then in the <paramref name="extraDirs"/>
    /// (absolute folders searched last, for example PATH entries on the real host). A directory with the binary's name
    /// or a file without an execute bit is skipped.
    /// </summary>
    public static IReadOnlyList<RuntimeHandler> Discover(string root, IEnumerable<string>? extraDirs = null)
    {
        ArgumentNullException.ThrowIfNull(root);
        var dirs = Locations.Select(l => Path.Combine(root, l))
            .Concat(extraDirs ?? [])
            .Select(d => Path.GetFullPath(d))
            .Distinct(StringComparer.Ordinal)
            .ToList();
        var found = new List<RuntimeHandler>();
        foreach (var candidate in Candidates)
        {
            foreach (var dir in dirs)
            {
                var path = Path.Combine(dir, candidate.Binary);
                if (IsExecutableFile(path))
                {
                    found.Add(new RuntimeHandler(candidate.Handler, path));
                    break;
                }
            }
        }

        return found;
    }

    /// <summary>The RuntimeClass manifest for a handler (node.k8s.io/v1), named after the handler.</summary>
    public static string RuntimeClassManifest(string handler) =>
        $"""
        apiVersion: node.k8s.io/v1
        kind: RuntimeClass
        metadata:
          name: {handler}
          labels:
            app.kubernetes.io/managed-by: coracle
        handler: {handler}

        """;

    private static bool IsExecutableFile(string path)
    {
        try
        {
            if (!File.Exists(path))
            {
                return false;
            }

            var mode = File.GetUnixFileMode(path);
            return (mode & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) != 0;
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }
}
