using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Coracle.Plugins.Datastore.Etcd;

/// <summary>
/// Snapshots of the embedded etcd (<see cref="IDatastoreSnapshots"/>). A snapshot is what etcd's <c>Maintenance.Snapshot</c>
/// streams: the bbolt database followed by its SHA-256. Verify checks the trailer, the bbolt magic and that etcdctl reads
/// it; restore runs <c>etcdctl snapshot restore</c> into a new folder, moves the old data dir aside (never deleting it) and
/// puts the new one in its place, as a one-member cluster; reset starts etcd once with <c>--force-new-cluster</c>.
/// </summary>
internal static class EtcdSnapshots
{
    private const uint BoltMagic = 0xED0CDAED;
    private static readonly byte[] SqliteHeader = "SQLite format 3\0"u8.ToArray();

    /// <summary>Checks the file, changing nothing; returns its revision and trailer SHA-256 (hex).</summary>
    public static (long Revision, string Sha256) Verify(EtcdLayout layout, string file)
    {
        RequireEmbedded(layout);
        var sha = Convert.ToHexStringLower(SnapshotFraming.Verify(file));
        using (var stream = File.OpenRead(file))
        {
            var header = new byte[SqliteHeader.Length];
            stream.ReadExactly(header);
            if (header.AsSpan().SequenceEqual(SqliteHeader))
            {
                throw new InvalidDataException("not an etcd snapshot: it is a SQLite snapshot of the SQL datastore, which only the sqlite datastore restores");
            }

            stream.Position = 16;
            var magic = new byte[4];
            stream.ReadExactly(magic);
            if (BitConverter.ToUInt32(magic) != BoltMagic)
            {
                throw new InvalidDataException("not an etcd snapshot: the data is not a bbolt database");
            }
        }

        var status = Etcdctl(layout, ["snapshot", "status", file, "--write-out=json"], "read the snapshot");
        try
        {
            var json = JsonNode.Parse(status);
            return (json?["revision"]?.GetValue<long>() ?? 0, sha);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"etcdctl snapshot status printed no status: {e.Message}", e);
        }
    }

    /// <summary><see cref="IDatastoreSnapshots.Restore"/>.</summary>
    public static DatastoreRestore Restore(EtcdLayout layout, string file, DateTimeOffset now)
    {
        var (revision, sha) = Verify(layout, file);
        if (Directory.Exists(layout.DataDir) && ReadMarker(layout.RestoredMarker) is { } done && done == sha)
        {
            return new DatastoreRestore("", revision, sha, AlreadyRestored: true);
        }

        var stamp = now.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
        var parent = Path.GetDirectoryName(layout.DataDir)!;
        EtcdPlugin.PrivateDirectory(parent);
        var stage = Path.Combine(parent, $".etcd-restore-{stamp}-{Guid.NewGuid():N}");
        try
        {
            Etcdctl(layout, ["snapshot", "restore", file, "--data-dir=" + stage, "--name=" + layout.Name,
                "--initial-cluster=" + $"{layout.Name}={layout.PeerUrl}", "--initial-advertise-peer-urls=" + layout.PeerUrl], "restore the snapshot");
            File.SetUnixFileMode(stage, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);

            // From here on the data changes: the old data dir moves aside, whole, and the restored one takes its place.
            var moved = "";
            if (Directory.Exists(layout.DataDir))
            {
                moved = layout.DataDir + "-old-" + stamp;
                for (var n = 2; Directory.Exists(moved) || File.Exists(moved); n++)
                {
                    moved = $"{layout.DataDir}-old-{stamp}-{n.ToString(CultureInfo.InvariantCulture)}";
                }

                Directory.Move(layout.DataDir, moved);
            }

            Directory.Move(stage, layout.DataDir);
            File.Delete(layout.ForceNewClusterMarker);
            var marker = new JsonObject
            {
                ["snapshot"] = Path.GetFullPath(file),
                ["sha256"] = sha,
                ["revision"] = revision,
                ["restoredAt"] = now.ToString("O", CultureInfo.InvariantCulture),
                ["movedAside"] = moved,
            };
            File.WriteAllText(layout.RestoredMarker, marker.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
            File.SetUnixFileMode(layout.RestoredMarker, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            return new DatastoreRestore(moved, revision, sha, AlreadyRestored: false);
        }
        finally
        {
            if (Directory.Exists(stage))
            {
                Directory.Delete(stage, recursive: true);
            }
        }
    }

    /// <summary><see cref="IDatastoreSnapshots.Reset"/>: the next start passes <c>--force-new-cluster</c> once.</summary>
    public static string Reset(EtcdLayout layout)
    {
        if (!layout.Embedded)
        {
            return "an external etcd is not reset by Coracle: nothing to do; reset it with its own tools";
        }

        if (!Directory.Exists(Path.Combine(layout.DataDir, "member")))
        {
            return $"the embedded etcd has no data yet ({layout.DataDir}): nothing to reset";
        }

        File.WriteAllText(layout.ForceNewClusterMarker, "--cluster-reset\n");
        return $"the embedded etcd starts once with --force-new-cluster: a one-member cluster of its data in {layout.DataDir}; other servers must join again";
    }

    private static void RequireEmbedded(EtcdLayout layout)
    {
        if (!layout.Embedded)
        {
            throw new NotSupportedException("an external etcd is restored with its own tools (etcdutl snapshot restore on its members), not by Coracle");
        }
    }

    private static string? ReadMarker(string marker)
    {
        try
        {
            return File.Exists(marker) ? JsonNode.Parse(File.ReadAllText(marker))?["sha256"]?.GetValue<string>() : null;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or IOException)
        {
            return null;
        }
    }

    /// <summary>Runs etcdctl (v3 API) and returns its output; a failure is an <see cref="InvalidDataException"/> with its last error line.</summary>
    private static string Etcdctl(EtcdLayout layout, IReadOnlyList<string> args, string what)
    {
        if (!File.Exists(layout.Etcdctl))
        {
            throw new NotSupportedException($"cannot {what}: no etcdctl ({layout.Etcdctl}); install Debian's etcd-client or ship etcdctl in the components folder");
        }

        var start = new ProcessStartInfo(layout.Etcdctl) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        start.Environment["ETCDCTL_API"] = "3";
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"cannot start {layout.Etcdctl}");
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        if (!process.WaitForExit(TimeSpan.FromMinutes(5)))
        {
            process.Kill(entireProcessTree: true);
            throw new InvalidDataException($"etcdctl could not {what} within 5 minutes");
        }

        if (process.ExitCode != 0)
        {
            var last = stderr.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault() ?? $"exit code {process.ExitCode}";
            throw new InvalidDataException($"etcdctl could not {what}: {last}");
        }

        return stdout;
    }
}
