namespace Coracle.Plugins;

/// <summary>Readiness helpers for plugins that start before a file they need exists (a kubeconfig the server writes later).</summary>
public static class FileWait
{
    /// <summary>How often <see cref="UntilExistsAsync"/> looks for the file.</summary>
    public static readonly TimeSpan Poll = TimeSpan.FromSeconds(1);

    /// <summary>How often <see cref="UntilExistsAsync"/> calls its <c>waiting</c> callback while the file is missing.</summary>
    public static readonly TimeSpan Report = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Completes when <paramref name="path"/> exists. While it does not, <paramref name="waiting"/> is called at once and
    /// then every <see cref="Report"/> (the plugin logs "waiting for ..." with its own message), so a node that never gets
    /// the file says why it is stuck.
    /// </summary>
    /// <param name="path">The file to wait for.</param>
    /// <param name="waiting">Called with <paramref name="path"/> while waiting.</param>
    /// <param name="cancellationToken">Ends the wait.</param>
    public static async Task UntilExistsAsync(string path, Action<string> waiting, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(waiting);
        var every = (int)(Report / Poll);
        for (var polls = 0; !File.Exists(path); polls++)
        {
            if (polls % every == 0)
            {
                waiting(path);
            }

            await Task.Delay(Poll, cancellationToken);
        }
    }
}
