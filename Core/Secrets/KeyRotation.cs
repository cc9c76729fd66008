using System.Globalization;
using System.Text.Json.Nodes;
using Coracle.Core.Kubernetes;
using Coracle.Core.Logging;
using Microsoft.Extensions.Logging;

namespace Coracle.Core.Secrets;

/// <summary>The rotation stopped; the message says at which step and what was kept (never a key a Secret still needs).</summary>
internal sealed class KeyRotationException(string message) : Exception(message);

/// <summary>
/// <c>coracle secrets-encrypt rotate-keys</c> against the running kube-apiserver (started with
/// <c>--encryption-provider-config-automatic-reload</c>). The order is what makes a crash at any point lose no Secret:
/// <list type="number">
/// <item>write the configuration with a <b>new key first and every old key after it</b> (atomically, fsync'd file and folder):
/// from here on the file decrypts every value there is, under the old configuration or the new;</item>
/// <item>wait until kube-apiserver reports that it loaded exactly this file (its reload metric carries the file's sha256), so
/// every write from then on uses the new key;</item>
/// <item>rewrite every Secret through the API (read, write back unchanged: kube-apiserver stores it again with the first key,
/// as <c>kubectl get secrets -A -o json | kubectl replace -f -</c> does); any failure stops here with the old keys kept;</item>
/// <item>only then write the configuration with the new key alone (identity still last, so values never encrypted stay readable).</item>
/// </list>
/// A crash before 4 leaves old and new keys in the file, which decrypts everything; running rotate-keys again adds another key
/// and finishes the job.
/// </summary>
internal sealed class KeyRotation(KubeApi api, string configFile, ILogger log, TimeProvider? time = null)
{
    private const string FieldManager = "coracle-secrets-encrypt";
    private readonly TimeProvider _time = time ?? TimeProvider.System;

    /// <summary>How long kube-apiserver may take to load a new file (it polls it about once a minute).</summary>
    public TimeSpan ReloadTimeout { get; init; } = TimeSpan.FromMinutes(3);

    public TimeSpan PollInterval { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Secrets listed per request.</summary>
    public int PageSize { get; init; } = 200;

    /// <summary>Runs the four steps; returns the new key and how many Secrets were rewritten.</summary>
    public async Task<(EncryptionKey Key, int Rewritten, IReadOnlyList<string> Removed)> RotateAsync(string provider, CancellationToken cancellationToken)
    {
        if (!EncryptionConfig.Providers.Contains(provider))
        {
            throw new KeyRotationException($"--secrets-encryption-provider: '{provider}' is not one of {string.Join(", ", EncryptionConfig.Providers)}");
        }

        var current = EncryptionConfig.Read(configFile);
        if (current?.Active is null)
        {
            throw new KeyRotationException($"secrets encryption is off ({(current is null ? "no " + configFile : configFile + " puts identity first")}); start 'coracle server --secrets-encryption' first");
        }

        // One rotation at a time: a second one's write could be taken for this one's reload.
        using var rotating = Lock();

        // Before anything changes: the API must answer, since only it can rewrite the Secrets.
        await EnsureAnswersAsync(cancellationToken);
        await EnsureSingleServerAsync(cancellationToken);

        // 1. The new key first; every old key stays to decrypt.
        var name = EncryptionConfig.RotatedKeyName(provider, _time.GetUtcNow());
        for (var n = 2; current.Keys.Any(k => k.Name == name); n++)
        {
            name = EncryptionConfig.RotatedKeyName(provider, _time.GetUtcNow()) + "-" + n.ToString(CultureInfo.InvariantCulture);
        }

        var key = EncryptionKey.Generate(provider, name);
        var staged = current.WithNewKey(key);
        var before = await ReloadsAsync(cancellationToken);
        var written = _time.GetUtcNow();
        staged.Write(configFile);
        log.RotationKeyAdded(key.Name, key.Provider, configFile);

        // 2. kube-apiserver encrypts with it: it reloaded the file since (or started after it was written).
        await WaitForLoadedAsync(before, written, cancellationToken);

        // 3. Every Secret written again.
        var rewritten = await RewriteAllAsync(cancellationToken);
        log.RotationRewritten(rewritten, key.Name);

        // 4. Only now the old keys go.
        var latest = EncryptionConfig.Read(configFile);
        if (latest?.Active?.Name != key.Name)
        {
            throw new KeyRotationException($"{configFile} changed while the Secrets were rewritten (its active key is no longer {key.Name}); no key was removed, run rotate-keys again");
        }

        var removed = latest.Keys.Skip(1).Select(k => k.Name).ToList();
        latest.WithActiveKeyOnly().Write(configFile);
        log.RotationOldKeysRemoved(removed.Count == 0 ? "(none)" : string.Join(", ", removed), key.Name);
        return (key, rewritten, removed);
    }

    private FileStream Lock()
    {
        var path = configFile + ".lock";
        try
        {
            // FileShare.None is an exclusive flock on Unix; the kernel drops it when the process dies.
            return new FileStream(path, new FileStreamOptions
            {
                Mode = FileMode.OpenOrCreate,
                Access = FileAccess.ReadWrite,
                Share = FileShare.None,
                UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            });
        }
        catch (IOException ex)
        {
            throw new KeyRotationException($"another rotate-keys holds {path} ({ex.Message}); wait for it to finish");
        }
    }

    private async Task EnsureAnswersAsync(CancellationToken cancellationToken)
    {
        try
        {
            var ready = await api.GetAsync("/readyz", cancellationToken);
            if (!ready.IsSuccess)
            {
                throw new KeyRotationException($"kube-apiserver is not ready ({ready.Describe()}); nothing was changed, try again when 'coracle status' shows it ready");
            }
        }
        catch (KubeApiUnavailableException ex)
        {
            throw new KeyRotationException($"kube-apiserver does not answer ({ex.Message}); rotate-keys needs the running server, nothing was changed");
        }
    }

    /// <summary>
    /// Refuses a cluster of several servers: each server's kube-apiserver reads its own copy of the configuration, so a key
    /// added here would encrypt Secrets the other servers cannot read (docs/secrets-encryption.md).
    /// </summary>
    private async Task EnsureSingleServerAsync(CancellationToken cancellationToken)
    {
        var nodes = await api.GetAsync("/api/v1/nodes?labelSelector=" + Uri.EscapeDataString(CloudNode.ControlPlaneLabel + "=true"), cancellationToken);
        if (!nodes.IsSuccess)
        {
            throw new KeyRotationException($"cannot list the cluster's servers ({nodes.Describe()}); nothing was changed");
        }

        var servers = (nodes.Body?["items"] as JsonArray ?? []).Select(n => Addons.ObjectRef.Text(n?["metadata"]?["name"])).OfType<string>().Order(StringComparer.Ordinal).ToList();
        if (servers.Count > 1)
        {
            throw new KeyRotationException(
                $"the cluster has {servers.Count} servers ({string.Join(", ", servers)}) and rotate-keys changes this server's keys only: the others could not read Secrets written with the new key; nothing was changed (docs/secrets-encryption.md)");
        }
    }

    /// <summary>
    /// Waits until kube-apiserver loaded the file written at <paramref name="written"/>: one more successful automatic reload
    /// than <paramref name="before"/> counted, or a kube-apiserver started after the write (it read the file at start).
    /// </summary>
    public async Task WaitForLoadedAsync(ApiServerReloads? before, DateTimeOffset written, CancellationToken cancellationToken)
    {
        var started = _time.GetTimestamp();
        var nextNote = TimeSpan.Zero;
        while (true)
        {
            var elapsed = _time.GetElapsedTime(started);
            if (await ReloadsAsync(cancellationToken) is { } now && now.LoadedSince(before, written))
            {
                log.RotationReloaded(configFile);
                return;
            }

            if (elapsed >= ReloadTimeout)
            {
                throw new KeyRotationException($"kube-apiserver did not load {configFile} within {ReloadTimeout.TotalMinutes:0} min (is it running with --encryption-provider-config-automatic-reload?); the file keeps the new and the old keys, which is safe: restart 'coracle server' and run rotate-keys again");
            }

            if (elapsed >= nextNote)
            {
                log.RotationWaitingForReload(configFile, (long)elapsed.TotalSeconds);
                nextNote += TimeSpan.FromSeconds(30);
            }

            await Task.Delay(PollInterval, _time, cancellationToken);
        }
    }

    /// <summary>kube-apiserver's reload counters from <c>/metrics</c>; null when it does not answer.</summary>
    public async Task<ApiServerReloads?> ReloadsAsync(CancellationToken cancellationToken)
    {
        try
        {
            var metrics = await api.GetAsync("/metrics", cancellationToken);
            return metrics.IsSuccess ? ApiServerReloads.Parse(metrics.Text) : null;
        }
        catch (KubeApiUnavailableException)
        {
            return null;
        }
    }

    /// <summary>Reads and writes back every Secret of every namespace; returns how many were written. Stops at the first failure.</summary>
    private async Task<int> RewriteAllAsync(CancellationToken cancellationToken)
    {
        var count = 0;
        var failures = new List<string>();
        string? next = null;
        do
        {
            var path = $"/api/v1/secrets?limit={PageSize.ToString(CultureInfo.InvariantCulture)}" + (next is null ? "" : "&continue=" + Uri.EscapeDataString(next));
            var page = await api.GetAsync(path, cancellationToken);
            if (page.Status == System.Net.HttpStatusCode.Gone)
            {
                // The continue token expired: list again from the start (writing a Secret twice is harmless).
                next = null;
                continue;
            }

            if (!page.IsSuccess || page.Body?["items"] is not JsonArray items)
            {
                throw new KeyRotationException($"listing secrets failed ({page.Describe()}); the old keys are kept, run rotate-keys again");
            }

            foreach (var item in items.OfType<JsonObject>())
            {
                var (ns, name) = (item["metadata"]?["namespace"]?.GetValue<string>() ?? "", item["metadata"]?["name"]?.GetValue<string>() ?? "");
                if (await RewriteAsync(ns, name, (JsonObject)item.DeepClone(), cancellationToken) is { } failure)
                {
                    failures.Add($"{ns}/{name}: {failure}");
                }
                else
                {
                    count++;
                }
            }

            next = page.Body?["metadata"]?["continue"]?.GetValue<string>() is { Length: > 0 } token ? token : null;
        }
        while (next is not null);

        if (failures.Count > 0)
        {
            throw new KeyRotationException($"{failures.Count} secrets could not be rewritten ({string.Join("; ", failures.Take(5))}); the old keys are kept, fix that and run rotate-keys again");
        }

        return count;
    }

    /// <summary>Writes one Secret back (a conflict means someone wrote it meanwhile: read it again and retry); null when done.</summary>
    private async Task<string?> RewriteAsync(string ns, string name, JsonObject secret, CancellationToken cancellationToken)
    {
        var path = $"/api/v1/namespaces/{Uri.EscapeDataString(ns)}/secrets/{Uri.EscapeDataString(name)}";
        for (var attempt = 0; ; attempt++)
        {
            secret["apiVersion"] = "v1";
            secret["kind"] = "Secret";
            var written = await api.ReplaceAsync(path + "?fieldManager=" + FieldManager, secret, cancellationToken);
            if (written.IsSuccess || written.IsNotFound)
            {
                return null; // written, or deleted meanwhile (nothing left to encrypt)
            }

            if (!written.IsConflict || attempt >= 5)
            {
                return written.Describe();
            }

            var fresh = await api.GetAsync(path, cancellationToken);
            if (fresh.IsNotFound)
            {
                return null;
            }

            if (!fresh.IsSuccess || fresh.Body is not JsonObject body)
            {
                return fresh.Describe();
            }

            secret = body;
        }
    }
}

/// <summary>
/// What kube-apiserver's <c>/metrics</c> say about its encryption configuration: successful automatic reloads, the last one's
/// time, and when the process started (it reads the file at start). kube-apiserver 1.32 reports no hash of the file it
/// loaded, so "this file is loaded" means a reload, or a start, after the file was written.
/// </summary>
internal sealed record ApiServerReloads(double Successes, DateTimeOffset? LastSuccess, DateTimeOffset? Started)
{
    public const string ReloadsTotal = "apiserver_encryption_config_controller_automatic_reloads_total";
    public const string LastReload = "apiserver_encryption_config_controller_automatic_reload_last_timestamp_seconds";
    public const string ProcessStart = "process_start_time_seconds";

    /// <summary>True when the file written at <paramref name="written"/> is loaded, counted against <paramref name="before"/> (read just before the write).</summary>
    public bool LoadedSince(ApiServerReloads? before, DateTimeOffset written) =>
        (before is not null && Started == before.Started && Successes > before.Successes) || Started >= written;

    /// <summary>True when kube-apiserver reloaded (or started) after <paramref name="modified"/>, the file's last change.</summary>
    public bool Uses(DateTimeOffset modified) => LastSuccess >= modified || Started >= modified;

    public static ApiServerReloads Parse(string metrics)
    {
        double successes = 0;
        DateTimeOffset? last = null;
        DateTimeOffset? started = null;
        foreach (var line in metrics.Split('\n'))
        {
            if (line.StartsWith('#') || line.LastIndexOf(' ') is var space && space < 0
                || !double.TryParse(line[(space + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
            {
                continue;
            }

            var success = line.Contains("status=\"success\"", StringComparison.Ordinal);
            if (line.StartsWith(ReloadsTotal + "{", StringComparison.Ordinal) && success)
            {
                successes += value;
            }
            else if (line.StartsWith(LastReload + "{", StringComparison.Ordinal) && success)
            {
                var at = FromUnix(value);
                last = last is null || at > last ? at : last;
            }
            else if (line.StartsWith(ProcessStart + " ", StringComparison.Ordinal))
            {
                started = FromUnix(value);
            }
        }

        return new ApiServerReloads(successes, last, started);
    }

    private static DateTimeOffset FromUnix(double seconds) => DateTimeOffset.FromUnixTimeMilliseconds((long)(seconds * 1000));
}
