using Microsoft.Extensions.Logging;

namespace Coracle.Plugins.Runtime.Containerd;

/// <summary>
/// The node's sandbox (pause) image without a registry, as K3s's airgap bundle provides it: when the configured image
/// is not in containerd after the airgap import, Coracle builds its own from the static busybox on this machine and
/// imports it under the configured name. The container is PID 1 of every pod: it exits on SIGTERM/SIGINT and reaps
/// the children it inherits (busybox ash waits for any child), which is all pause does.
/// </summary>
public static class SandboxImage
{
    /// <summary>The label that marks an image Coracle built for itself.</summary>
    public const string BuiltByLabel = "io.coracle.built-by";

    /// <summary>The image Coracle provides under <paramref name="repoTag"/>.</summary>
    public static ImageLayout Layout(string repoTag, string busybox) => new()
    {
        RepoTag = repoTag,
        Busybox = busybox,
        Entrypoint = ["/bin/sh", "-c", "trap 'exit 0' TERM INT; while true; do sleep 2147483647 & wait $!; done"],
        Labels = new Dictionary<string, string> { [BuiltByLabel] = "coracle-pause" },
    };

    /// <summary>
    /// Makes sure <paramref name="repoTag"/> is in containerd; null when it is (or was imported now), else why not.
    /// </summary>
    public static async Task<string?> EnsureAsync(AirgapImporter importer, string repoTag, string? busybox, string workDir, ILogger logger, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(importer);
        var images = await importer.ListImagesAsync(cancellationToken);
        if (images is null)
        {
            return "ctr could not list the images";
        }

        if (images.Contains(repoTag))
        {
            Log.SandboxPresent(logger, repoTag);
            return null;
        }

        if (busybox is null || !File.Exists(busybox))
        {
            var reason = $"it is not in containerd and no busybox was found to build one; install busybox-static or put an image tarball of {repoTag} in the airgap images folder";
            Log.SandboxMissing(logger, repoTag, reason);
            return reason;
        }

        if (!ImageBuilder.IsStaticElf(busybox))
        {
            var reason = $"it is not in containerd and {busybox} is not a statically linked executable (Debian's busybox package is dynamic); install busybox-static or put an image tarball of {repoTag} in the airgap images folder";
            Log.SandboxMissing(logger, repoTag, reason);
            return reason;
        }

        Log.SandboxBuilding(logger, repoTag, busybox);
        Directory.CreateDirectory(workDir);
        var tarball = Path.Combine(workDir, "coracle-pause.tar");
        ImageBuilder.WriteArchive(tarball, Layout(repoTag, busybox));
        try
        {
            var error = await importer.ImportFileAsync(tarball, cancellationToken);
            if (error is not null)
            {
                Log.SandboxMissing(logger, repoTag, error);
                return error;
            }
        }
        finally
        {
            File.Delete(tarball);
        }

        Log.SandboxImported(logger, repoTag);
        return null;
    }
}
