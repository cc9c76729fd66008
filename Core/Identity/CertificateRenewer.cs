using System.Security.Cryptography;
using Coracle.Core.Logging;
using Microsoft.Extensions.Logging;

namespace Coracle.Core.Identity;

/// <summary>
/// Keeps a running node's certificates valid and loaded. Every <see cref="CheckInterval"/> it renews the certificates
/// that are due (within <see cref="ClusterCertificates.RenewWindow"/> of expiry, or no longer signed by their CA);
/// every <see cref="PollInterval"/> it compares the certificate files with what the components loaded, so a renewal
/// it made or one made by <c>coracle certificate rotate</c> while the node runs is followed by a check and then by a
/// restart of the components that read certificates only at start (in start order, each ready before the next).
/// </summary>
internal sealed class CertificateRenewer
{
    /// <summary>How often certificates are checked for expiry.</summary>
    public static readonly TimeSpan CheckInterval = TimeSpan.FromHours(1);

    /// <summary>How often the certificate files are compared with those the components loaded (a read, no write).</summary>
    public static readonly TimeSpan PollInterval = TimeSpan.FromSeconds(10);

    private readonly IReadOnlyList<string> _directories;
    private readonly Func<CancellationToken, Task<IReadOnlyList<string>>> _renewDue;
    private readonly Func<string, CancellationToken, Task<IReadOnlyList<string>>> _restart;
    private readonly ILogger _log;
    private readonly TimeProvider _time;

    /// <param name="directories">Folders whose <c>*.crt</c> files the components load.</param>
    /// <param name="renewDue">Renews what is due; returns the names renewed (it logs each).</param>
    /// <param name="restart">Restarts the components that load certificates; returns their names.</param>
    /// <param name="log">Where renewals and restarts are logged.</param>
    /// <param name="time">The clock.</param>
    public CertificateRenewer(IReadOnlyList<string> directories, Func<CancellationToken, Task<IReadOnlyList<string>>> renewDue,
        Func<string, CancellationToken, Task<IReadOnlyList<string>>> restart, ILogger log, TimeProvider? time = null)
    {
        _directories = directories;
        _renewDue = renewDue;
        _restart = restart;
        _log = log;
        _time = time ?? TimeProvider.System;
    }

    /// <summary>True once the first check ran.</summary>
    public bool Ready { get; private set; }

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        // The components loaded what is on disk now (the start-up step renewed what was due before they started).
        var loaded = Fingerprint(_directories);
        var lastCheck = _time.GetTimestamp();
        Ready = true;
        while (!cancellationToken.IsCancellationRequested)
        {
            await Task.Delay(PollInterval, _time, cancellationToken);
            var onDisk = Fingerprint(_directories);
            var changedOutside = Changed(loaded, onDisk);
            if (changedOutside.Count == 0 && _time.GetElapsedTime(lastCheck) < CheckInterval)
            {
                continue;
            }

            lastCheck = _time.GetTimestamp();
            loaded = await PassAsync(loaded, changedOutside, cancellationToken);
        }
    }

    /// <summary>
    /// One check: renew what is due, then restart the components when any certificate file changed. Returns the
    /// fingerprint the components now have loaded.
    /// </summary>
    internal async Task<Dictionary<string, string>> PassAsync(IReadOnlyDictionary<string, string> loaded, IReadOnlyList<string> changedOutside, CancellationToken cancellationToken)
    {
        try
        {
            await _renewDue(cancellationToken);
        }
        catch (Exception ex) when (ex is IOException or CertificateFileException or UnauthorizedAccessException or CryptographicException or HttpRequestException or InvalidOperationException)
        {
            // The old certificates stay in use; the next check tries again.
            _log.CertificateRenewalFailed(ex.Message, CheckInterval.TotalMinutes);
        }

        var onDisk = Fingerprint(_directories);
        var changed = Changed(loaded, onDisk);
        if (changed.Count == 0)
        {
            return onDisk;
        }

        var reason = changedOutside.Count > 0 && changedOutside.Count == changed.Count
            ? "certificates changed on disk: " + string.Join(", ", changed)
            : "certificates renewed: " + string.Join(", ", changed);
        var restarted = await _restart(reason, cancellationToken);
        _log.CertificatesReloaded(string.Join(", ", changed), restarted.Count == 0 ? "none" : string.Join(", ", restarted));
        return onDisk;
    }

    /// <summary>The SHA-256 of every <c>*.crt</c> file in the folders, by path.</summary>
    internal static Dictionary<string, string> Fingerprint(IEnumerable<string> directories)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var directory in directories.Where(Directory.Exists))
        {
            foreach (var file in Directory.EnumerateFiles(directory, "*.crt"))
            {
                try
                {
                    result[file] = Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(file)));
                }
                catch (IOException)
                {
                    // Being replaced right now: the next poll sees the new file.
                }
            }
        }

        return result;
    }

    /// <summary>The certificate names (file names without <c>.crt</c>) that differ between two fingerprints.</summary>
    internal static List<string> Changed(IReadOnlyDictionary<string, string> before, IReadOnlyDictionary<string, string> after) =>
        before.Keys.Union(after.Keys)
            .Where(k => !before.TryGetValue(k, out var b) || !after.TryGetValue(k, out var a) || a != b)
            .Select(k => Path.GetFileNameWithoutExtension(k))
            .Order(StringComparer.Ordinal)
            .ToList();
}
