using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Serialization;
using Coracle.Core.Composition;
using Coracle.Core.Configuration;
using Coracle.Core.Supervision;
using Coracle.Plugins;
using Microsoft.Extensions.Logging;

namespace Coracle.Core.Hosting;

/// <summary>
/// K3s's migration of a server's embedded SQLite into the embedded etcd (restart it with <c>--cluster-init</c>): when the
/// selected datastore can import (<see cref="IDatastoreImport"/>) and is still empty, and an installed datastore plugin
/// reports data of this node (<see cref="IDatastoreExport"/>), the in-process component <see cref="ComponentName"/>, which
/// depends on the datastore's component and which kube-apiserver waits for instead, copies every key once, then has the
/// old data moved aside. Core knows neither format: each plugin knows only its own files.
/// <para>
/// Crash safety: the marker <c>DATA/server/datastore-migration.json</c> is written (atomically) before the datastore first
/// starts, and removed only after the old data moved aside. A marker present at start means "copy again": kube-apiserver
/// has never run on the new datastore, whose import replaces whatever an interrupted copy left. A marker whose old data is
/// already gone means the copy completed and only the marker's removal was lost.
/// </para>
/// </summary>
internal sealed class DatastoreMigration
{
    /// <summary>The component kube-apiserver waits for while a migration runs.</summary>
    public const string ComponentName = "datastore-migration";

    /// <summary>
    /// Where <c>CORACLE_MIGRATION_FAULT</c> kills this process with SIGKILL, as a power cut would (the crash tests): after
    /// the marker is written, after half the keys went to the import, after the import, and after the old data moved aside.
    /// </summary>
    public static readonly string[] FaultPoints = ["marker", "copy-half", "copied", "retired"];

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    private readonly CoracleConfig _config;
    private readonly string _from;
    private readonly IDatastoreExport _export;
    private readonly string _to;
    private readonly IDatastoreImport _import;
    private readonly DatastoreExportInfo _info;
    private readonly ILogger _log;
    private volatile bool _done;
    private long _copied;

    private DatastoreMigration(CoracleConfig config, string from, IDatastoreExport export, string to, IDatastoreImport import, DatastoreExportInfo info, ILogger log)
    {
        _config = config;
        _from = from;
        _export = export;
        _to = to;
        _import = import;
        _info = info;
        _log = log;
    }

    /// <summary>What a start does about a migration (<see cref="Decide"/>).</summary>
    public enum Decision
    {
        /// <summary>Nothing to migrate.</summary>
        None,

        /// <summary>The selected datastore is empty and another holds this node's data: copy it.</summary>
        Migrate,

        /// <summary>A marker says an earlier copy was interrupted and the old data is still there: copy again.</summary>
        Resume,

        /// <summary>A marker is left but the old data already moved aside: the copy had completed; remove the marker.</summary>
        Finish,

        /// <summary>A marker is left but another datastore is selected now: keep the marker, warn, change nothing.</summary>
        Pending,

        /// <summary>This server joins another: its own old data is ignored (kept, not read), with a warning.</summary>
        IgnoreJoined,
    }

    /// <summary>The marker file: present from before the datastore first starts until the old data moved aside.</summary>
    public static string MarkerPath(string dataDir) => Path.Combine(dataDir, "server", "datastore-migration.json");

    /// <summary>The decision, from what the start found: pure, so every case is testable without a datastore.</summary>
    /// <param name="joins">The server joins another (<c>--server</c>, or it joined earlier).</param>
    /// <param name="selected">The selected datastore plugin's name; null when it cannot import.</param>
    /// <param name="selectedIsEmpty">The selected datastore can import and holds no data yet.</param>
    /// <param name="markerTo">The datastore a marker left by an earlier start migrates to; null without a marker.</param>
    /// <param name="oldDataPresent">A plugin (the marker's, or any installed one without a marker) reports this node's data.</param>
    public static Decision Decide(bool joins, string? selected, bool selectedIsEmpty, string? markerTo, bool oldDataPresent)
    {
        if (joins)
        {
            return selectedIsEmpty && oldDataPresent ? Decision.IgnoreJoined : Decision.None;
        }

        if (markerTo is not null)
        {
            return !string.Equals(markerTo, selected, StringComparison.Ordinal) ? Decision.Pending
                : oldDataPresent ? Decision.Resume : Decision.Finish;
        }

        return selectedIsEmpty && oldDataPresent ? Decision.Migrate : Decision.None;
    }

    /// <summary>
    /// Step <c>datastore migration</c>, before the datastore first starts: decides, checks the old data (an unreadable file
    /// stops the start with one line, nothing changed) and writes the marker. Null when nothing is to be copied.
    /// </summary>
    public static DatastoreMigration? Prepare(StartPlan plan, CoracleConfig config, bool joins, ILogger log)
    {
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(config);
        if (plan.Selection?.Single(ExtensionPoints.Datastore) is not { } target)
        {
            return null;
        }

        var node = config.ToNodeSettings();
        var markerPath = MarkerPath(config.DataDir);
        var marker = ReadMarker(markerPath);
        var import = target.Metadata.Implemented ? plan.Instance(target) as IDatastoreImport : null;
        var empty = import is not null && marker is null && import.CanImport(node, config.OptionsOf(target.Name));

        // The other datastore plugins are built only when a copy may be due: an empty importing datastore, or a marker.
        if (!empty && marker is null)
        {
            return null;
        }

        var sources = Exporters(plan, target)
            .Where(e => marker is null || string.Equals(e.Entry.Name, marker.From, StringComparison.Ordinal))
            .Select(e => (e.Entry, e.Export, Source: e.Export.ExportSource(node, config.OptionsOf(e.Entry.Name))))
            .ToList();
        if (marker is not null && sources.Count == 0)
        {
            throw new InvalidOperationException(
                $"{markerPath} says a migration from the {marker.From} datastore to {marker.To} was interrupted, but no {marker.From} plugin is installed; install it again so the copy completes (nothing was changed)");
        }

        var source = sources.FirstOrDefault(s => s.Source is not null);
        switch (Decide(joins, import is null ? null : target.Name, empty, marker?.To, source.Source is not null))
        {
            case Decision.IgnoreJoined:
                log.MigrationIgnoredJoined(source.Source!, source.Entry.Name, target.Name);
                return null;
            case Decision.Pending:
                log.MigrationPending(marker!.From, marker.To, markerPath, target.Name);
                return null;
            case Decision.Finish:
                File.Delete(markerPath);
                log.MigrationFinishedEarlier(marker!.Source, marker.To);
                return null;
            case Decision.None:
                return null;
        }

        DatastoreExportInfo info;
        try
        {
            info = source.Export.VerifyExport(node, config.OptionsOf(source.Entry.Name));
        }
        catch (Exception e) when (e is InvalidDataException or FileNotFoundException or IOException or UnauthorizedAccessException)
        {
            throw new InvalidOperationException(
                $"{e.Message}; this server copies it into the {target.Name} datastore before it starts: restore it from a snapshot, or move it aside to start {target.Name} empty ({(marker is null ? "nothing was changed" : "the interrupted copy is done again at the next start")})", e);
        }

        if (marker is null)
        {
            var record = new MigrationMarker(source.Entry.Name, target.Name, info.Source, info.Revision, info.Keys, DateTimeOffset.UtcNow);
            FileUtil.WriteAtomic(markerPath, JsonSerializer.Serialize(record, Json) + "\n", UnixFileMode.UserRead | UnixFileMode.UserWrite);
            log.MigrationPlanned(info.Keys, info.Kind, info.Source, info.Revision, target.Name);
            Fault(log, "marker");
        }
        else
        {
            log.MigrationResumed(info.Source, target.Name, markerPath);
        }

        return new DatastoreMigration(config, source.Entry.Name, source.Export, target.Name, import!, info, log);
    }

    /// <summary>
    /// Registers the copy as the component <see cref="ComponentName"/> (after the datastore's) and returns the plugins
    /// with kube-apiserver's datastore gate moved to it. Unchanged when the datastore's component is not there (no binary).
    /// </summary>
    public ConfiguredPlugins Register(Supervisor supervisor, ConfiguredPlugins plugins)
    {
        ArgumentNullException.ThrowIfNull(supervisor);
        ArgumentNullException.ThrowIfNull(plugins);
        if (plugins.Datastore is not { } endpoint
            || !supervisor.Snapshot().Any(c => c.Name == endpoint.ComponentName && c.State != ComponentState.Unavailable))
        {
            return plugins;
        }

        supervisor.Add(new InProcessComponent
        {
            Name = ComponentName,
            DependsOn = [endpoint.ComponentName],
            Readiness = new CustomProbe(_ => Task.FromResult(_done)),
            Restart = _config.Restart,
            StopTimeout = _config.StopTimeout,
            Run = async cancellationToken =>
            {
                if (!_done)
                {
                    supervisor.ReportDetail(ComponentName, $"copying {_info.Keys} keys from {_info.Kind} {_info.Source} to {_to}");
                    var detail = await CopyAsync(cancellationToken);
                    supervisor.ReportDetail(ComponentName, detail);
                    _done = true;
                }

                await Task.Delay(Timeout.Infinite, cancellationToken);
            },
        });
        return plugins with { Datastore = endpoint with { ComponentName = ComponentName } };
    }

    /// <summary>The copy, then the old data moved aside, then the marker removed; returns the line that says so.</summary>
    internal async Task<string> CopyAsync(CancellationToken cancellationToken)
    {
        var node = _config.ToNodeSettings();
        Interlocked.Exchange(ref _copied, 0);
        var clock = Stopwatch.StartNew();
        var result = await _import.ImportAsync(node, _config.OptionsOf(_to), Counting(_export.ExportAsync(node, _config.OptionsOf(_from), cancellationToken), cancellationToken), cancellationToken);
        Fault(_log, "copied");
        var aside = _export.RetireExported(node, _config.OptionsOf(_from), DateTimeOffset.UtcNow);
        Fault(_log, "retired");
        File.Delete(MarkerPath(_config.DataDir));
        _log.Migrated(result.Keys, _info.Revision, _info.Kind, _info.Source, result.Target, _info.Kind, aside, result.Leases, clock.ElapsedMilliseconds);
        return $"migrated {result.Keys.ToString(CultureInfo.InvariantCulture)} keys (revision {_info.Revision.ToString(CultureInfo.InvariantCulture)}) from {_info.Kind} {_info.Source} to {result.Target}; the {_info.Kind} file is kept as {aside}";
    }

    private async IAsyncEnumerable<DatastoreKeyValue> Counting(IAsyncEnumerable<DatastoreKeyValue> keys, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var last = Stopwatch.GetTimestamp();
        await foreach (var kv in keys.WithCancellation(cancellationToken))
        {
            var copied = Interlocked.Increment(ref _copied);
            if (copied == Math.Max(1, _info.Keys / 2) + 1)
            {
                Fault(_log, "copy-half");
            }

            if (Stopwatch.GetElapsedTime(last) > TimeSpan.FromSeconds(30))
            {
                _log.MigrationProgress(copied, _info.Keys, _info.Source);
                last = Stopwatch.GetTimestamp();
            }

            yield return kv;
        }
    }

    private static void Fault(ILogger log, string point) => FaultPoint.At("CORACLE_MIGRATION_FAULT", point, log, static (l, p) => l.MigrationFault(p));

    /// <summary>The installed datastore plugins other than the selected one that can export, built for this machine.</summary>
    private static IEnumerable<(PluginEntry Entry, IDatastoreExport Export)> Exporters(StartPlan plan, PluginEntry selected)
    {
        var architecture = PluginComposition.Architecture;
        foreach (var entry in plan.Catalog!.Entries.Where(e => e.Point == ExtensionPoints.Datastore && e != selected && e.Metadata.Implemented)
            .Where(e => e.Metadata.Architectures.Count == 0 || e.Metadata.Architectures.Contains(architecture, StringComparer.OrdinalIgnoreCase))
            .OrderBy(e => e.Name, StringComparer.Ordinal))
        {
            if (plan.Instance(entry) is IDatastoreExport export)
            {
                yield return (entry, export);
            }
        }
    }

    private static MigrationMarker? ReadMarker(string path)
    {
        if (!File.Exists(path))
        {
            return null;
        }

        try
        {
            return JsonSerializer.Deserialize<MigrationMarker>(File.ReadAllText(path))
                ?? throw new JsonException("empty");
        }
        catch (JsonException e)
        {
            throw new InvalidOperationException(
                $"{path} cannot be read ({e.Message}); it marks an interrupted datastore migration: delete it only if {Path.Combine(Path.GetDirectoryName(path)!, "db")} holds no half-copied datastore", e);
        }
    }

    /// <summary>The marker's content.</summary>
    internal sealed record MigrationMarker(
        [property: JsonPropertyName("from")] string From,
        [property: JsonPropertyName("to")] string To,
        [property: JsonPropertyName("source")] string Source,
        [property: JsonPropertyName("revision")] long Revision,
        [property: JsonPropertyName("keys")] long Keys,
        [property: JsonPropertyName("startedAt")] DateTimeOffset StartedAt);
}
