using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Coracle.Core.Logging;
using Microsoft.Extensions.Logging;

namespace Coracle.Core.Update.Fleet;

/// <summary>A bundle on this node's disk whose SHA-256 matched the rollout, and the version its manifest names.</summary>
internal sealed record FetchedBundle(string File, string Version);

/// <summary>
/// What the fleet controller does to this machine: read the running version and the slots' state, fetch a bundle
/// (digest checked), apply it through <see cref="UpdateApplier"/>, restart Coracle. <see cref="SlotNode"/> is the real
/// one; tests hand the controller one on a temporary install root.
/// </summary>
internal interface IFleetNode
{
    /// <summary>Why this node cannot update itself (it does not run from an install root's slots), or null.</summary>
    string? CannotUpdateWhy { get; }

    /// <summary>The version of the active slot's image.</summary>
    string RunningVersion { get; }

    /// <summary>The install root's <c>update/state</c> (null when there is none).</summary>
    UpdateState? State { get; }

    /// <summary>The slot <c>current</c> points at.</summary>
    string? ActiveSlot { get; }

    Task<FetchedBundle> FetchAsync(ApplianceUpdateSpec spec, CancellationToken ct);

    /// <summary>Verifies the bundle against the update CA and the running image (as <c>coracle update apply</c> does).</summary>
    string Verify(FetchedBundle bundle);

    /// <summary>Applies the bundle to the inactive slot and switches to it on trial; returns the slot.</summary>
    Task<string> ApplyAsync(FetchedBundle bundle, CancellationToken ct);

    /// <summary>Restarts Coracle into the new slot (through the unit, so the boot guard counts the trial start).</summary>
    Task<string> RestartAsync(CancellationToken ct);
}

/// <summary>The real <see cref="IFleetNode"/>: the install root this executable runs from.</summary>
internal sealed class SlotNode(InstallLayout? layout, string caFile, int maxAttempts, int deadlineSeconds, IPreUpdateSnapshot snapshot, ILogger log) : IFleetNode
{
    /// <summary>The node of this process: its install root when it runs from <c>R/slots/X</c>.</summary>
    public static SlotNode ForThisProcess(string caFile, int maxAttempts, int deadlineSeconds, IPreUpdateSnapshot snapshot, ILogger log) =>
        new(InstallLayout.OfThisProcess()?.Layout, caFile, maxAttempts, deadlineSeconds, snapshot, log);

    /// <summary>How the node restarts; by default <see cref="RestartThroughUnit"/>.</summary>
    public Func<CancellationToken, Task<string>> Restart { get; init; } = RestartThroughUnit;

    public string? CannotUpdateWhy => layout is null
        ? $"coracle runs from {AppContext.BaseDirectory.TrimEnd('/')}, not from an install root's slots/a or slots/b; install it with packaging/install.sh"
        : layout.ActiveSlot() is null ? $"{layout.Current} is not a link to slots/a or slots/b" : null;

    public string RunningVersion => layout?.ActiveSlot() is { } slot ? layout.Image(slot)?.Version ?? "" : "";

    public UpdateState? State => layout is null ? null : UpdateState.Read(layout.StateFile);

    public string? ActiveSlot => layout?.ActiveSlot();

    private InstallLayout Layout => layout ?? throw new FleetException(CannotUpdateWhy!);

    public async Task<FetchedBundle> FetchAsync(ApplianceUpdateSpec spec, CancellationToken ct)
    {
        var dir = Directory.CreateDirectory(Layout.DownloadDir).FullName;
        var bundle = Path.Combine(dir, "bundle");
        var marker = bundle + ".sha256";

        // A bundle fetched and checked earlier (a former pass, or before a restart) is not downloaded again.
        if (!(File.Exists(bundle) && File.Exists(marker) && File.ReadAllText(marker).Trim() == spec.Sha256))
        {
            File.Delete(marker);
            string? ca = null;
            if (spec.DownloadCa.Length > 0)
            {
                ca = Path.Combine(dir, "download-ca.pem");
                AtomicFile.Write(ca, Encoding.UTF8.GetBytes(spec.DownloadCa));
            }

            try
            {
                bundle = await new BundleDownload(Layout, log, _ => { }) { ExtraCaFile = ca }.FetchAsync(new Uri(spec.BundleUrl), ct);
            }
            catch (UpdateException ex)
            {
                // A refused URL (http://) is for good; a network or server problem is tried again (the download resumes).
                throw new FleetException(ex.Message, ex) { Retry = ex.ExitCode != ExitCodes.InvalidConfig };
            }

            string actual;
            await using (var stream = File.OpenRead(bundle))
            {
                actual = Versions.Hex(await SHA256.HashDataAsync(stream, ct));
            }

            if (actual != spec.Sha256)
            {
                File.Delete(bundle);
                throw new FleetException($"{spec.BundleUrl}: the downloaded bundle has SHA-256 {actual}, the ApplianceUpdate says {spec.Sha256}; fix spec.sha256 (sha256sum of the bundle) or the file served");
            }

            AtomicFile.Write(marker, Encoding.UTF8.GetBytes(actual + "\n"));
        }

        BundleManifest manifest;
        try
        {
            manifest = JsonSerializer.Deserialize(BundleFile.ReadHead(bundle).Manifest, UpdateJson.Default.BundleManifest) ?? throw new JsonException("empty");
        }
        catch (Exception ex) when (ex is JsonException or UpdateException or InvalidDataException or IOException)
        {
            throw new FleetException($"{spec.BundleUrl}: not a bundle: {ex.Message}", ex);
        }

        log.FleetFetched(spec.BundleUrl, spec.Sha256, manifest.Version);
        return new FetchedBundle(bundle, manifest.Version);
    }

    public string Verify(FetchedBundle bundle)
    {
        var active = Layout.ActiveSlot()!;
        var image = Layout.Image(active);
        var running = new RunningImage(image?.Version ?? "", image?.Profile ?? "", image?.Rid is { Length: > 0 } rid ? rid : RuntimeInformation.RuntimeIdentifier);
        try
        {
            return BundleVerifier.Verify(bundle.File, caFile, running, allowDowngrade: false, DateTimeOffset.UtcNow).Signer;
        }
        catch (UpdateException ex)
        {
            throw new FleetException(ex.Message, ex);
        }
    }

    public async Task<string> ApplyAsync(FetchedBundle bundle, CancellationToken ct)
    {
        try
        {
            var (slot, _) = await new UpdateApplier(Layout, log, snapshot).ApplyAsync(new ApplyOptions
            {
                Source = bundle.File,
                CaFile = caFile,
                MaxAttempts = maxAttempts,
                DeadlineSeconds = deadlineSeconds,
            }, ct);
            return slot;
        }
        catch (Exception ex) when (ex is UpdateException or IOException or UnauthorizedAccessException)
        {
            throw new FleetException(ex is UpdateException ? ex.Message : $"update apply: {ex.Message}", ex);
        }
    }

    public Task<string> RestartAsync(CancellationToken ct) => Restart(ct);

    /// <summary>
    /// Under systemd (the unit's <c>INVOCATION_ID</c> is set): <c>systemctl restart --no-block UNIT</c> of the unit in this
    /// process's cgroup. Otherwise this process stops itself in order (SIGTERM) and exits 0; the unit's
    /// <c>Restart=always</c> (or whatever runs it) starts it again, through the boot guard.
    /// </summary>
    public static async Task<string> RestartThroughUnit(CancellationToken ct)
    {
        if (Environment.GetEnvironmentVariable("INVOCATION_ID") is { Length: > 0 } && UnitOfThisProcess() is { } unit)
        {
            var start = new ProcessStartInfo("systemctl") { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var arg in new[] { "restart", "--no-block", unit })
            {
                start.ArgumentList.Add(arg);
            }

            using var process = Process.Start(start)!;
            await process.WaitForExitAsync(ct);
            if (process.ExitCode == 0)
            {
                return $"systemctl restart --no-block {unit}";
            }
        }

        _ = Supervision.Native.Kill(Environment.ProcessId, Supervision.Native.SigTerm);
        return "stopping this node in order (SIGTERM to itself); the unit's Restart=always starts the new slot through the boot guard";
    }

    private static string? UnitOfThisProcess()
    {
        try
        {
            return File.ReadAllLines("/proc/self/cgroup").Select(l => l[(l.LastIndexOf('/') + 1)..]).FirstOrDefault(u => u.EndsWith(".service", StringComparison.Ordinal));
        }
        catch (IOException)
        {
            return null;
        }
    }
}
