using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Coracle.Plugins;

namespace Coracle.Core.Snapshots;

/// <summary>
/// A node's snapshot folder (K3s's layout): files named <c>NAME-NODENAME-UNIXTIME</c> (0600, folder 0700), each with a
/// sidecar <c>FILE.json</c> recording node, time, size, SHA-256, datastore and revision. Save, list, delete and prune
/// (keep the newest N of one name prefix on this node).
/// </summary>
internal sealed class SnapshotStore(string directory, string nodeName, TimeProvider time)
{
    /// <summary>The name scheduled snapshots carry (K3s's).</summary>
    public const string ScheduledName = "etcd-snapshot";

    /// <summary>The name <c>coracle etcd-snapshot save</c> uses without <c>--name</c> (K3s's).</summary>
    public const string OnDemandName = "on-demand";

    private const string Sidecar = ".json";

    public string Directory => directory;

    /// <summary>Why <paramref name="name"/> cannot name a snapshot, in <c>WHAT; FIX</c> form; null when it can.</summary>
    public static string? NameProblem(string name) =>
        name.Length == 0 || name.Length > 100 || name.StartsWith('.') || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.')
            ? $"'{name}' is not a snapshot name; use letters, digits, '-', '_' and '.' (not first), like on-demand"
            : null;

    /// <summary>
    /// Saves a snapshot of the datastore at <paramref name="endpoint"/> as <c>NAME-NODE-UNIXTIME</c> with its sidecar;
    /// throws <see cref="SnapshotException"/> (nothing is left behind then).
    /// </summary>
    public async Task<SnapshotRecord> SaveAsync(DatastoreEndpoint endpoint, string name, string datastore, CancellationToken cancellationToken)
    {
        if (NameProblem(name) is { } problem)
        {
            throw new SnapshotException(problem);
        }

        System.IO.Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var created = time.GetUtcNow();
        var fileName = $"{name}-{nodeName}-{created.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture)}";
        var path = Path.Combine(directory, fileName);
        if (File.Exists(path))
        {
            throw new SnapshotException($"snapshot {fileName} already exists; save again a second later or use another --name");
        }

        var saved = await SnapshotClient.SaveAsync(endpoint, path, cancellationToken);
        var record = new SnapshotRecord(fileName, path, saved.Size, created, nodeName, saved.Sha256, datastore, saved.Revision);
        Hosting.FileUtil.WriteAtomic(path + Sidecar, JsonSerializer.Serialize(record, SnapshotJson.Default.SnapshotRecord) + "\n", UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return record;
    }

    /// <summary>Every snapshot in the folder, oldest first; a file without a sidecar (copied in) is listed from the file itself.</summary>
    public IReadOnlyList<SnapshotRecord> List()
    {
        if (!System.IO.Directory.Exists(directory))
        {
            return [];
        }

        var records = new List<SnapshotRecord>();
        foreach (var file in System.IO.Directory.EnumerateFiles(directory))
        {
            var fileName = Path.GetFileName(file);
            if (fileName.StartsWith('.') || fileName.EndsWith(Sidecar, StringComparison.Ordinal) || fileName.EndsWith(".part", StringComparison.Ordinal))
            {
                continue;
            }

            records.Add(ReadSidecar(file) ?? new SnapshotRecord(fileName, file, new FileInfo(file).Length, File.GetLastWriteTimeUtc(file), "", "", "", 0));
        }

        return records.OrderBy(r => r.CreatedAt).ThenBy(r => r.Name, StringComparer.Ordinal).ToList();
    }

    /// <summary>Deletes the named snapshots and their sidecars; throws <see cref="SnapshotException"/> naming the first one missing (none deleted then).</summary>
    public IReadOnlyList<string> Delete(IReadOnlyList<string> names)
    {
        foreach (var name in names)
        {
            if (NameProblem(name) is not null || !File.Exists(Path.Combine(directory, name)))
            {
                throw new SnapshotException($"no snapshot {name} in {directory}; 'coracle etcd-snapshot ls' lists them");
            }
        }

        foreach (var name in names)
        {
            File.Delete(Path.Combine(directory, name));
            File.Delete(Path.Combine(directory, name + Sidecar));
        }

        return names;
    }

    /// <summary>Deletes all but the newest <paramref name="retention"/> snapshots of this node named <c>PREFIX-NODE-UNIXTIME</c>; returns the deleted names.</summary>
    public IReadOnlyList<string> Prune(string prefix, int retention)
    {
        var start = $"{prefix}-{nodeName}-";
        var ours = List()
            .Where(r => r.Name.StartsWith(start, StringComparison.Ordinal) && r.Name[start.Length..].All(char.IsAsciiDigit) && r.Name.Length > start.Length)
            .OrderByDescending(r => long.Parse(r.Name[start.Length..], CultureInfo.InvariantCulture))
            .ToList();
        var doomed = ours.Skip(Math.Max(retention, 0)).Select(r => r.Name).ToList();
        return doomed.Count == 0 ? [] : Delete(doomed);
    }

    private static SnapshotRecord? ReadSidecar(string file)
    {
        try
        {
            var record = JsonSerializer.Deserialize(File.ReadAllText(file + Sidecar), SnapshotJson.Default.SnapshotRecord);
            return record is null ? null : record with { Location = file, Name = Path.GetFileName(file) };
        }
        catch (Exception e) when (e is IOException or JsonException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}

/// <summary>One snapshot as <c>coracle etcd-snapshot ls</c> shows it and its sidecar records it.</summary>
internal sealed record SnapshotRecord(
    string Name, string Location, long Size, DateTimeOffset CreatedAt, string Node, string Sha256, string Datastore, long Revision);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true)]
[JsonSerializable(typeof(SnapshotRecord))]
internal sealed partial class SnapshotJson : JsonSerializerContext;
