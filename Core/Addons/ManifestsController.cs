using Coracle.Core.Kubernetes;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Coracle.Core.Logging;
using Microsoft.Extensions.Logging;

namespace Coracle.Core.Addons;

/// <summary>
/// K3s's deploy controller: applies every manifest of the folder by server-side apply and tracks each file as an
/// <c>Addon</c> (<see cref="AddonResource"/>). One loop, woken by a file watcher or a periodic rescan, runs passes: a
/// changed file is applied (objects it no longer declares are deleted), a removed file's objects and Addon are deleted,
/// a skipped file (<c>NAME.yaml.skip</c>) is left alone, a file whose checksum equals its Addon's (and that had no error)
/// is not applied again. A file that does not parse or that kube-apiserver rejects gets <c>status.lastError</c> and a
/// Warning Event (<c>ApplyFailed</c>), and is tried again with backoff; the other files carry on. Only the holder of
/// the Lease runs it (<see cref="ManifestsService"/>).
/// </summary>
internal sealed class ManifestsController
{
    private readonly KubeApi _api;
    private readonly ManifestsOptions _options;
    private readonly ILogger _log;
    private readonly TimeProvider _time;
    private readonly Action<string>? _report;
    private readonly ApiDiscovery _discovery;
    private readonly AddonStore _store;
    private readonly AddonBoard? _board;

    /// <summary>Coracle's Addons as last read or written, by name.</summary>
    private readonly Dictionary<string, AddonState> _addons = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (int Failures, DateTimeOffset Due)> _retries = new(StringComparer.Ordinal);
    private readonly HashSet<string> _skipped = new(StringComparer.Ordinal);
    private readonly HashSet<string> _conflicts = new(StringComparer.Ordinal);
    private bool _needsSetup = true;
    private bool _folderMissing;
    private volatile bool _watcherBroken;
    private bool _watchFailing;
    private volatile TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _passes;
    private Dictionary<string, AddonHealth> _health = new(StringComparer.Ordinal);
    private DateTimeOffset _healthAt = DateTimeOffset.MinValue;
    private bool _healthFailing;
    private readonly HashSet<string> _missingLogged = new(StringComparer.Ordinal);

    public ManifestsController(KubeApi api, ManifestsOptions options, ILogger log, TimeProvider? time = null, Action<string>? report = null,
        AddonBoard? board = null)
    {
        _board = board;
        _api = api;
        _options = options;
        _log = log;
        _time = time ?? TimeProvider.System;
        _report = report;
        _discovery = new ApiDiscovery(api);
        _store = new AddonStore(api, options, log, _time);
    }

    /// <summary>Passes completed (the first one makes the component ready).</summary>
    public int Passes => Volatile.Read(ref _passes);

    /// <summary>The one-line summary <c>coracle status</c> shows: <c>N applied, M failed: NAME: error</c>.</summary>
    public string Summary { get; private set; } = "starting";

    /// <summary>Applies the Addon CRD, reads the Addons, then runs passes until cancelled.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(_options.Folder);
        FileSystemWatcher? watcher = null;
        try
        {
            while (true)
            {
                if (watcher is null || _watcherBroken)
                {
                    watcher?.Dispose();
                    watcher = Watch();
                }

                TimeSpan wait;
                try
                {
                    wait = await PassAsync(cancellationToken);
                }
                catch (KubeApiUnavailableException ex)
                {
                    wait = _options.RetryMin;
                    _needsSetup = true;
                    _log.ManifestsApiUnavailable(ex.Message, wait.TotalSeconds);
                }
                catch (KubeApiException ex)
                {
                    wait = _options.RetryMin;
                    _needsSetup = true;
                    _log.ManifestsPassFailed(ex.Message, wait.TotalSeconds);
                }

                await WaitForChangeAsync(wait, cancellationToken);
            }
        }
        finally
        {
            watcher?.Dispose();
        }
    }

    /// <summary>One pass over the folder; returns how long to wait before the next unless a file changes.</summary>
    internal async Task<TimeSpan> PassAsync(CancellationToken cancellationToken)
    {
        if (_needsSetup)
        {
            await _store.EnsureCrdAsync(cancellationToken);
            _discovery.Forget(AddonResource.ApiVersion);
            _addons.Clear();
            foreach (var addon in await _store.ListAsync(cancellationToken))
            {
                _addons[addon.Name] = addon;
            }

            _needsSetup = false;
        }

        _discovery.NewPass();
        if (!Directory.Exists(_options.Folder))
        {
            if (!_folderMissing)
            {
                _log.ManifestsFolderMissing(_options.Folder);
                _folderMissing = true;
            }

            return _options.Rescan;
        }

        _folderMissing = false;
        var files = ManifestFolder.Scan(_options.Folder);
        NoteSkipsAndConflicts(files);
        var live = files.Where(f => f.Conflict is null).ToList();
        var firstPass = Passes == 0;
        var unchanged = 0;

        // 1. Apply every new, changed or failed (and due) file; nothing is deleted yet.
        var outcomes = new List<ApplyOutcome>();
        foreach (var file in live.Where(f => !f.Skipped))
        {
            byte[] bytes;
            try
            {
                bytes = await File.ReadAllBytesAsync(file.FullPath, cancellationToken);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // Gone or replaced since the scan: the next pass sees it as it is then.
                continue;
            }

            var checksum = Convert.ToHexStringLower(SHA256.HashData(bytes));
            _addons.TryGetValue(file.AddonName, out var known);
            if (IsUpToDate(known, file.RelativePath, checksum, RetryDue(file.AddonName)))
            {
                unchanged += known?.LastError is null ? 1 : 0;
                continue;
            }

            outcomes.Add(await ApplyFileAsync(file, bytes, checksum, known, cancellationToken));
        }

        if (firstPass && unchanged > 0)
        {
            _log.ManifestsUnchanged(unchanged);
        }

        // 2. Prune what the applied files no longer declare (unless another file does), then record each Addon.
        var claims = live.ToDictionary(f => f.AddonName, f => _addons.TryGetValue(f.AddonName, out var a) ? a.Objects : [], StringComparer.Ordinal);
        foreach (var outcome in outcomes)
        {
            claims[outcome.File.AddonName] = outcome.Objects;
        }

        foreach (var outcome in outcomes)
        {
            await FinishAsync(outcome, ClaimedElsewhere(claims, outcome.File.AddonName), cancellationToken);
        }

        // 3. Removed files: their objects (unless another file declares them) and their Addon go.
        var present = files.Select(f => f.AddonName).ToHashSet(StringComparer.Ordinal);
        foreach (var addon in _addons.Values.Where(a => !present.Contains(a.Name)).ToList())
        {
            if (addon.LastError is null || RetryDue(addon.Name))
            {
                await RemoveAsync(addon, ClaimedElsewhere(claims, addon.Name), cancellationToken);
            }
        }

        Summarize(files);
        await PublishAsync(files, outcomes.Count > 0, cancellationToken);
        Interlocked.Increment(ref _passes);
        var now = _time.GetUtcNow();
        var next = _retries.Values.Select(r => r.Due - now).Where(d => d > TimeSpan.Zero).DefaultIfEmpty(_options.Rescan).Min();
        return next < _options.Rescan ? next : _options.Rescan;
    }

    /// <summary>
    /// Whether a file need not be applied: its Addon has the same source and checksum and either no error, or an error
    /// whose retry is not due yet (so after a restart, a file that applied cleanly before is not applied again).
    /// </summary>
    internal static bool IsUpToDate(AddonState? known, string source, string checksum, bool retryDue) =>
        known is not null && known.Source == source && known.Checksum == checksum && (known.LastError is null || !retryDue);

    /// <summary>What applying one file did: the objects it now has (for pruning and the Addon) and any error.</summary>
    private sealed record ApplyOutcome(ManifestFile File, string Checksum, AddonState? Before, IReadOnlyList<ObjectRef> Applied, string? Error)
    {
        /// <summary>The file did not parse: nothing was applied, and nothing will be until it changes.</summary>
        public bool Unreadable { get; init; }

        /// <summary>Everything applied; a file that failed keeps its earlier objects too, so they are pruned once it works.</summary>
        public IReadOnlyList<ObjectRef> Objects => Error is null
            ? Applied
            : (Before?.Objects ?? []).Concat(Applied).DistinctBy(o => o.Key).ToList();
    }

    private async Task<ApplyOutcome> ApplyFileAsync(ManifestFile file, byte[] bytes, string checksum, AddonState? before, CancellationToken cancellationToken)
    {
        IReadOnlyList<ManifestObject> objects;
        try
        {
            objects = ManifestParser.Parse(Encoding.UTF8.GetString(bytes).TrimStart('\uFEFF'), file.RelativePath);
        }
        catch (ManifestException ex)
        {
            return new ApplyOutcome(file, checksum, before, [], ex.Message) { Unreadable = true };
        }

        var applied = new List<ObjectRef>();
        var errors = new List<string>();
        foreach (var manifest in ApplyOrder.Sort(objects))
        {
            var resource = await _discovery.ResolveAsync(manifest.ApiVersion, manifest.Kind, cancellationToken);
            if (resource is null)
            {
                errors.Add($"{manifest.Position}: {manifest.Kind} {manifest.Name}: kind {manifest.Kind} is not served in {manifest.ApiVersion} (yet)");
                continue;
            }

            var ns = resource.Namespaced ? manifest.Namespace ?? "default" : null;
            var body = (JsonObject)manifest.Body.DeepClone();
            var metadata = (JsonObject)body["metadata"]!;
            if (ns is null)
            {
                metadata.Remove("namespace");
            }
            else
            {
                metadata["namespace"] = ns;
            }

            var reference = manifest.Ref(ns);
            var response = await _api.ApplyAsync(resource.PathOf(ns, manifest.Name), body, ManifestsOptions.FieldManager, cancellationToken);
            if (!response.IsSuccess)
            {
                if (response.IsNotFound)
                {
                    _discovery.Forget(manifest.ApiVersion);
                }

                errors.Add($"{manifest.Position}: {reference}: {response.Describe()}");
                continue;
            }

            applied.Add(reference);
            if (ApplyOrder.Rank(manifest.ApiVersion, manifest.Kind) == 1)
            {
                await CrdAppliedAsync(manifest.Body, cancellationToken);
            }
        }

        return new ApplyOutcome(file, checksum, before, applied, errors.Count == 0 ? null : string.Join("; ", errors));
    }

    /// <summary>Waits (bounded) until a CRD from a file is Established, so the file's own custom resources resolve in this pass.</summary>
    private async Task CrdAppliedAsync(JsonObject crd, CancellationToken cancellationToken)
    {
        var group = ObjectRef.Text(crd["spec"]?["group"]);
        foreach (var version in crd["spec"]?["versions"] as JsonArray ?? [])
        {
            if (group is not null && ObjectRef.Text(version?["name"]) is { } name)
            {
                _discovery.Forget($"{group}/{name}");
            }
        }

        if (ObjectRef.Text(crd["metadata"]?["name"]) is { } crdName)
        {
            await _store.WaitEstablishedAsync(crdName, cancellationToken);
        }
    }

    private async Task FinishAsync(ApplyOutcome outcome, IEnumerable<ObjectRef> claimedElsewhere, CancellationToken cancellationToken)
    {
        var file = outcome.File;
        var objects = outcome.Objects.ToList();
        var errors = new List<string>();
        var pruned = 0;
        if (outcome.Error is null && outcome.Before is not null)
        {
            foreach (var gone in PrunePlan.Plan(outcome.Before.Objects, outcome.Applied, claimedElsewhere))
            {
                if (await DeleteObjectAsync(gone, cancellationToken) is { } error)
                {
                    errors.Add(error);
                    objects.Add(gone);
                    continue;
                }

                pruned++;
                _log.ManifestPruned(gone.ToString(), file.RelativePath);
            }
        }

        var lastError = Bounded(outcome.Error ?? (errors.Count > 0 ? string.Join("; ", errors) : null));
        var now = _time.GetUtcNow();
        var appliedAt = lastError is null ? now : outcome.Before?.AppliedAt;
        var state = await WriteAddonAsync(new AddonState(file.AddonName, file.RelativePath, outcome.Checksum, objects, lastError, appliedAt), cancellationToken);
        if (lastError is null)
        {
            _retries.Remove(file.AddonName);
            _log.ManifestApplied(file.RelativePath, file.AddonName, outcome.Applied.Count, pruned);
            await _store.EventAsync(state, "Normal", "Applied", $"applied {outcome.Applied.Count} objects from {file.RelativePath}{(pruned > 0 ? $", deleted {pruned} it no longer declares" : "")}", cancellationToken);
            return;
        }

        // A file that does not parse fails the same way until it changes; what kube-apiserver refused may pass later
        // (a namespace or CRD from another file, a webhook that was down), so that is tried again with backoff.
        var wait = outcome.Unreadable ? Never(file.AddonName) : Failed(file.AddonName);
        var news = lastError != outcome.Before?.LastError || outcome.Checksum != outcome.Before?.Checksum;
        if (!news)
        {
            if (!outcome.Unreadable)
            {
                _log.ManifestStillFailing(file.RelativePath, wait.TotalSeconds);
            }

            return;
        }

        if (outcome.Unreadable)
        {
            _log.ManifestUnreadable(file.RelativePath, file.AddonName, lastError);
        }
        else
        {
            _log.ManifestFailed(file.RelativePath, file.AddonName, lastError, wait.TotalSeconds);
        }

        await _store.EventAsync(state, "Warning", "ApplyFailed", lastError, cancellationToken);
    }

    /// <summary>A removed file: deletes its objects (those no other file declares), then its Addon.</summary>
    private async Task RemoveAsync(AddonState addon, IEnumerable<ObjectRef> claimedElsewhere, CancellationToken cancellationToken)
    {
        var plan = PrunePlan.Plan(addon.Objects, [], claimedElsewhere);
        var left = new List<ObjectRef>();
        var errors = new List<string>();
        foreach (var gone in plan)
        {
            if (await DeleteObjectAsync(gone, cancellationToken) is { } error)
            {
                errors.Add(error);
                left.Add(gone);
            }
        }

        if (errors.Count == 0)
        {
            await _store.DeleteAsync(addon.Name, cancellationToken);
            _addons.Remove(addon.Name);
            _retries.Remove(addon.Name);
            _log.ManifestRemoved(addon.Source, addon.Name, plan.Count);
            return;
        }

        var lastError = Bounded($"{addon.Source} was removed, but deleting its objects failed: {string.Join("; ", errors)}")!;
        var state = await WriteAddonAsync(addon with { Objects = left, LastError = lastError }, cancellationToken);
        var wait = Failed(addon.Name);
        _log.ManifestFailed(addon.Source, addon.Name, lastError, wait.TotalSeconds);
        if (lastError != addon.LastError)
        {
            await _store.EventAsync(state, "Warning", "DeleteFailed", lastError, cancellationToken);
        }
    }

    /// <summary>Deletes one object; null when it is gone (or its kind is no longer served), else why not.</summary>
    private async Task<string?> DeleteObjectAsync(ObjectRef gone, CancellationToken cancellationToken)
    {
        var resource = await _discovery.ResolveAsync(gone.ApiVersion, gone.Kind, cancellationToken);
        if (resource is null)
        {
            return null;
        }

        var response = await _api.DeleteAsync(resource.PathOf(gone.Namespace, gone.Name), cancellationToken);
        return response.IsSuccess || response.IsNotFound ? null : $"deleting {gone}: {response.Describe()}";
    }

    private async Task<AddonState> WriteAddonAsync(AddonState state, CancellationToken cancellationToken)
    {
        var written = await _store.WriteAsync(state, cancellationToken);
        _addons[state.Name] = written;
        return written;
    }

    /// <summary>An error as <c>status.lastError</c> holds it: at most 4096 characters (a file of many broken objects).</summary>
    private static string? Bounded(string? error) => error is { Length: > 4096 } ? error[..4093] + "..." : error;

    private static IEnumerable<ObjectRef> ClaimedElsewhere(Dictionary<string, IReadOnlyList<ObjectRef>> claims, string name) =>
        claims.Where(c => c.Key != name).SelectMany(c => c.Value);

    private bool RetryDue(string name) => !_retries.TryGetValue(name, out var retry) || retry.Due <= _time.GetUtcNow();

    /// <summary>Records a failure; returns the wait before the next try (doubling from <see cref="ManifestsOptions.RetryMin"/>).</summary>
    private TimeSpan Failed(string name)
    {
        var failures = _retries.TryGetValue(name, out var retry) ? retry.Failures + 1 : 1;
        var wait = TimeSpan.FromTicks(Math.Min(_options.RetryMax.Ticks, _options.RetryMin.Ticks * (1L << Math.Min(failures - 1, 20))));
        _retries[name] = (failures, _time.GetUtcNow() + wait);
        return wait;
    }

    /// <summary>Records a failure not worth retrying until the file changes.</summary>
    private TimeSpan Never(string name)
    {
        _retries[name] = (_retries.TryGetValue(name, out var retry) ? retry.Failures + 1 : 1, DateTimeOffset.MaxValue);
        return Timeout.InfiniteTimeSpan;
    }

    private void NoteSkipsAndConflicts(IReadOnlyList<ManifestFile> files)
    {
        foreach (var file in files.Where(f => f.Skipped && f.Conflict is null && _skipped.Add(f.RelativePath)))
        {
            _log.ManifestSkipped(file.RelativePath);
        }

        _skipped.IntersectWith(files.Where(f => f.Skipped).Select(f => f.RelativePath));
        foreach (var file in files.Where(f => f.Conflict is not null && _conflicts.Add(f.RelativePath)))
        {
            _log.ManifestNameConflict(file.RelativePath, file.AddonName, file.Conflict!);
        }

        _conflicts.IntersectWith(files.Where(f => f.Conflict is not null).Select(f => f.RelativePath));
    }

    private void Summarize(IReadOnlyList<ManifestFile> files)
    {
        var applied = 0;
        var failed = new List<string>();
        foreach (var file in files.Where(f => !f.Skipped))
        {
            if (file.Conflict is not null)
            {
                failed.Add($"{file.RelativePath}: Addon name {file.AddonName} is already {file.Conflict}'s");
            }
            else if (_addons.TryGetValue(file.AddonName, out var addon))
            {
                if (addon.LastError is null)
                {
                    applied++;
                }
                else
                {
                    failed.Add($"{addon.Name}: {addon.LastError}");
                }
            }
        }

        var skipped = files.Count(f => f.Skipped);
        var summary = $"{applied} applied, {failed.Count} failed{(skipped > 0 ? $", {skipped} skipped" : "")}";
        if (failed.Count > 0)
        {
            var first = failed[0].Length > 160 ? failed[0][..157] + "..." : failed[0];
            summary += $": {first}{(failed.Count > 1 ? $" (and {failed.Count - 1} more)" : "")}";
        }

        if (summary != Summary)
        {
            Summary = summary;
            _report?.Invoke(summary);
        }
    }

    /// <summary>
    /// Publishes one <see cref="AddonRow"/> per file for <c>coracle status</c>; the add-ons' workloads and pods are read
    /// again every <see cref="ManifestsOptions.StatusInterval"/>, and after a file was applied.
    /// </summary>
    private async Task PublishAsync(IReadOnlyList<ManifestFile> files, bool applied, CancellationToken cancellationToken)
    {
        if (_board is null)
        {
            return;
        }

        var now = _time.GetUtcNow();
        if (applied || now - _healthAt >= _options.StatusInterval)
        {
            _healthAt = now;
            try
            {
                var health = new Dictionary<string, AddonHealth>(StringComparer.Ordinal);
                foreach (var addon in _addons.Values)
                {
                    if (await AddonHealthReader.ReadAsync(_api, addon.Objects, cancellationToken) is { } read)
                    {
                        health[addon.Name] = read;
                    }
                }

                _health = health;
                _healthFailing = false;
                LogMissingImages(health);
            }
            catch (KubeApiUnavailableException ex)
            {
                // The rows keep the last health read; the apply loop finds out about kube-apiserver by itself.
                if (!_healthFailing)
                {
                    _healthFailing = true;
                    _log.AddonHealthUnavailable(ex.Message);
                }
            }
        }

        _board.Publish(AddonRows.Build(files, _addons, _options.Off, _health));
    }

    /// <summary>Logs each add-on image that goes missing once, until it is there again.</summary>
    private void LogMissingImages(Dictionary<string, AddonHealth> health)
    {
        var now = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, read) in health)
        {
            foreach (var image in read.MissingImages)
            {
                now.Add($"{name}|{image}");
                if (!_missingLogged.Contains($"{name}|{image}"))
                {
                    _log.AddonImageMissing(name, image);
                }
            }
        }

        _missingLogged.Clear();
        _missingLogged.UnionWith(now);
    }

    private FileSystemWatcher? Watch()
    {
        _watcherBroken = false;
        try
        {
            var watcher = new FileSystemWatcher(_options.Folder)
            {
                IncludeSubdirectories = true,
                NotifyFilter = NotifyFilters.FileName | NotifyFilters.DirectoryName | NotifyFilters.LastWrite | NotifyFilters.Size,
            };
            watcher.Created += (_, _) => Signal();
            watcher.Changed += (_, _) => Signal();
            watcher.Deleted += (_, _) => Signal();
            watcher.Renamed += (_, _) => Signal();
            watcher.Error += (_, e) =>
            {
                WatchFailed(e.GetException().Message);
                Signal();
            };
            watcher.EnableRaisingEvents = true;
            _watchFailing = false;
            return watcher;
        }
        catch (Exception ex) when (ex is IOException or ArgumentException or UnauthorizedAccessException or PlatformNotSupportedException)
        {
            WatchFailed(ex.Message);
            return null;
        }
    }

    /// <summary>Logged once until watching works again; the watcher is built again before the next wait.</summary>
    private void WatchFailed(string reason)
    {
        _watcherBroken = true;
        if (!_watchFailing)
        {
            _watchFailing = true;
            _log.ManifestsWatchFailed(_options.Folder, reason, _options.Rescan.TotalSeconds);
        }
    }

    private void Signal() => _changed.TrySetResult();

    /// <summary>Returns after <paramref name="wait"/>, or soon after a file notification (once the writer had time to finish).</summary>
    private async Task WaitForChangeAsync(TimeSpan wait, CancellationToken cancellationToken)
    {
        var changed = _changed.Task;
        using (var timer = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            await Task.WhenAny(changed, Task.Delay(wait, _time, timer.Token));
            await timer.CancelAsync();
        }

        cancellationToken.ThrowIfCancellationRequested();
        if (changed.IsCompleted)
        {
            await Task.Delay(_options.Settle, _time, cancellationToken);

            // A change from here on completes the next signal; the scan that follows sees every earlier one.
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
    }
}
