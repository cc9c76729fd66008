using System.Formats.Tar;
using System.IO.Compression;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Coracle.Core.Logging;
using Microsoft.Extensions.Logging;

namespace Coracle.Core.Update;

/// <summary>What <c>coracle update apply</c> was asked to do.</summary>
internal sealed record ApplyOptions
{
    public required string Source { get; init; }
    public required string CaFile { get; init; }
    public bool AllowDowngrade { get; init; }
    public bool AllowHttp { get; init; }
    public string? DownloadCa { get; init; }
    public int MaxAttempts { get; init; } = 3;
    public int DeadlineSeconds { get; init; } = 300;
}

/// <summary>
/// Takes a datastore snapshot before the switch (step <c>snapshot</c>). Returns one line saying what it did or why
/// it skipped: <see cref="DatastorePreUpdateSnapshot"/> on a server, <see cref="NoSnapshot"/> where no server runs.
/// </summary>
internal interface IPreUpdateSnapshot
{
    Task<string> TakeAsync(CancellationToken cancellationToken);
}

/// <summary>The snapshot step where no snapshot can be taken: no server runs here.</summary>
internal sealed class NoSnapshot(string why) : IPreUpdateSnapshot
{
    public Task<string> TakeAsync(CancellationToken cancellationToken) => Task.FromResult("skipped: " + why);
}

/// <summary>
/// <c>coracle update apply</c>: a flat list of named steps, each a fault point (<c>CORACLE_UPDATE_FAULT=NAME</c> kills
/// the process there with SIGKILL, for the crash tests): download, verify, unpack, verify-slot, snapshot, trial
/// (the state names the new slot on trial), switch (<c>R/current</c> repointed), restart. Until <c>switch</c> the
/// running slot and <c>R/current</c> are untouched; the state is written before the link, so a crash between them
/// leaves a trial the boot guard sees is not current and clears.
/// </summary>
internal sealed class UpdateApplier(InstallLayout layout, ILogger log, IPreUpdateSnapshot snapshot)
{
    public static readonly string[] FaultPoints = ["download", "verify", "unpack-half", "unpack", "verify-slot", "snapshot", "trial", "switch", "restart"];

    /// <summary>Applies the bundle; returns the slot now on trial and its manifest. The restart is the caller's.</summary>
    public async Task<(string Slot, BundleManifest Manifest)> ApplyAsync(ApplyOptions options, CancellationToken ct)
    {
        var active = layout.ActiveSlot() ?? throw new UpdateException(layout.Current, "is not a link to slots/a or slots/b",
            "install with packaging/install.sh, which lays out the A/B slots (or pass the right --install-root)", ExitCodes.InvalidConfig);
        var state = UpdateState.Read(layout.StateFile) ?? new UpdateState { Good = active };
        if (state.Trial.Length > 0 && state.Trial == active)
        {
            throw new UpdateException("update apply", $"slot {state.Trial} is still on trial", "wait until it is marked good ('coracle update status') or run 'coracle update rollback'", ExitCodes.RuntimeFailure);
        }

        var image = layout.Image(active);
        var running = new RunningImage(image?.Version ?? "", image?.Profile ?? "", image?.Rid is { Length: > 0 } rid ? rid : RuntimeInformation.RuntimeIdentifier);

        var bundle = options.Source;
        if (Uri.TryCreate(options.Source, UriKind.Absolute, out var url) && url.Scheme is "https" or "http")
        {
            log.UpdateStep("download");
            bundle = await new BundleDownload(layout, log, Fault) { ExtraCaFile = options.DownloadCa, AllowHttp = options.AllowHttp }.FetchAsync(url, ct);
        }
        else if (!File.Exists(bundle))
        {
            throw new UpdateException("update apply", $"{bundle} does not exist", "give a bundle file or an https:// URL", ExitCodes.InvalidConfig);
        }

        log.UpdateStep("verify");
        var (manifest, signer) = BundleVerifier.Verify(bundle, options.CaFile, running, options.AllowDowngrade, DateTimeOffset.UtcNow);
        log.UpdateVerified(manifest.Version, manifest.Profile, manifest.Rid, signer, options.CaFile);
        Fault("verify");

        var slot = InstallLayout.Other(active);
        log.UpdateStep("unpack");
        state = state with { Incomplete = slot, Trial = "" };
        state.Write(layout.StateFile);
        Unpack(bundle, manifest, slot);
        Fault("unpack");

        log.UpdateStep("verify-slot");
        VerifySlot(layout.SlotPath(slot), manifest);
        Fault("verify-slot");

        log.UpdateStep("snapshot");
        log.UpdateSnapshot(await snapshot.TakeAsync(ct));
        Fault("snapshot");

        log.UpdateStep("switch");
        state = (state with
        {
            Good = active,
            Trial = slot,
            Attempts = 0,
            MaxAttempts = options.MaxAttempts,
            DeadlineSeconds = options.DeadlineSeconds,
            Incomplete = "",
        }).WithResult("applied", $"version {manifest.Version} in slot {slot} on trial (from {running.Version} in slot {active})");
        state.Write(layout.StateFile);
        Fault("trial");
        layout.Switch(slot);
        log.UpdateSwitched(slot, manifest.Version, options.MaxAttempts, $"{options.DeadlineSeconds}s");
        Fault("switch");
        return (slot, manifest);
    }

    /// <summary>Replaces <paramref name="slot"/>'s content with the payload, every file fsynced.</summary>
    private void Unpack(string bundle, BundleManifest manifest, string slot)
    {
        var dir = layout.SlotPath(slot);
        if (Directory.Exists(dir))
        {
            Directory.Delete(dir, recursive: true);
        }

        Directory.CreateDirectory(dir);
        var half = manifest.Files.Count / 2;
        var count = BundleFile.ReadPayload(bundle, payload =>
        {
            using var gzip = new GZipStream(payload, CompressionMode.Decompress);
            using var tar = new TarReader(gzip);
            var n = 0;
            while (tar.GetNextEntry() is { } entry)
            {
                var path = BundleFile.ImagePath(entry.Name, bundle);
                if (path is null)
                {
                    continue;
                }

                var target = Path.Combine(dir, path);
                RefuseThroughLink(dir, path, bundle);
                Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                switch (entry.EntryType)
                {
                    case TarEntryType.Directory:
                        Directory.CreateDirectory(target);
                        continue;
                    case TarEntryType.SymbolicLink:
                        File.CreateSymbolicLink(target, entry.LinkName);
                        break;
                    case TarEntryType.RegularFile or TarEntryType.V7RegularFile:
                        using (var file = new FileStream(target, FileMode.CreateNew, FileAccess.Write))
                        {
                            entry.DataStream?.CopyTo(file);
                            file.Flush(flushToDisk: true);
                        }

                        File.SetUnixFileMode(target, entry.Mode);
                        break;
                    default:
                        throw new UpdateException(bundle, $"payload entry {entry.Name} is a {entry.EntryType}", "an image holds only folders, regular files and symlinks", ExitCodes.InvalidConfig);
                }

                if (++n == half)
                {
                    Fault("unpack-half");
                }
            }

            return n;
        });
        AtomicFile.SyncDirectory(dir);
        log.UpdateUnpacked(count, slot, dir);
    }

    /// <summary>An entry below a symlink the payload made would be written outside the slot: refused.</summary>
    private static void RefuseThroughLink(string dir, string path, string bundle)
    {
        var parts = path.Split('/');
        var at = dir;
        foreach (var part in parts[..^1])
        {
            at = Path.Combine(at, part);
            if (new FileInfo(at).LinkTarget is not null)
            {
                throw new UpdateException(bundle, $"payload entry {path} lies below the symlink {Path.GetRelativePath(dir, at)}", "an image must not write through its own symlinks; rebuild it", ExitCodes.InvalidConfig);
            }
        }
    }

    /// <summary>Every file of the manifest is in the slot with its size, SHA-256 and mode, and nothing else is.</summary>
    public static void VerifySlot(string dir, BundleManifest manifest)
    {
        var expected = manifest.Files.ToDictionary(f => f.Path, StringComparer.Ordinal);
        foreach (var entry in manifest.Files)
        {
            var path = Path.Combine(dir, entry.Path);
            string? problem = null;
            if (entry.Link is { } link)
            {
                problem = new FileInfo(path).LinkTarget == link ? null : "is not the symlink to " + link;
            }
            else if (!File.Exists(path))
            {
                problem = "is missing";
            }
            else
            {
                using var stream = File.OpenRead(path);
                var hash = Versions.Hex(SHA256.HashData(stream));
                var mode = Versions.Mode(File.GetUnixFileMode(path));
                problem = hash != entry.Sha256 ? $"has SHA-256 {hash[..16]}…, the manifest {entry.Sha256?[..Math.Min(16, entry.Sha256.Length)]}…"
                    : mode != entry.Mode ? $"has mode {mode}, the manifest {entry.Mode}"
                    : null;
            }

            if (problem is not null)
            {
                throw new UpdateException(dir, $"{entry.Path} {problem}", "the slot was not written completely (disk full or failing?): apply the bundle again", ExitCodes.RuntimeFailure);
            }
        }

        foreach (var file in Directory.EnumerateFileSystemEntries(dir, "*", SearchOption.AllDirectories))
        {
            var relative = Path.GetRelativePath(dir, file);
            if (!Directory.Exists(file) || new FileInfo(file).LinkTarget is not null)
            {
                if (!expected.ContainsKey(relative))
                {
                    throw new UpdateException(dir, $"{relative} is not in the signed manifest", "apply the bundle again", ExitCodes.RuntimeFailure);
                }
            }
        }
    }

    /// <summary>For the crash tests: <c>CORACLE_UPDATE_FAULT=NAME</c> kills this process with SIGKILL at point NAME.</summary>
    private void Fault(string point) => FaultPoint.At("CORACLE_UPDATE_FAULT", point, log, static (l, p) => l.UpdateFault(p));

    /// <summary>Runs the restart fault point (for the tests) before the caller restarts the node.</summary>
    public void BeforeRestart() => Fault("restart");
}
