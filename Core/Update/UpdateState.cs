using System.Globalization;
using System.Text;

namespace Coracle.Core.Update;

/// <summary>
/// <c>R/update/state</c>: <c>key=value</c> lines, so that the boot guard (a POSIX sh script that runs before Coracle) can
/// read and rewrite it. Keys: <c>good</c> (the slot known good), <c>trial</c> (the slot on trial, empty when none),
/// <c>attempts</c> (trial starts so far), <c>max_attempts</c>, <c>deadline</c> (seconds a trial start has to become
/// healthy), <c>incomplete</c> (a slot being written, not bootable), and <c>result</c>, <c>reason</c>, <c>time</c> of
/// the last update event. Written atomically: temp file, fsync, rename, fsync of the folder.
/// </summary>
internal sealed record UpdateState
{
    public string Good { get; init; } = "";
    public string Trial { get; init; } = "";
    public int Attempts { get; init; }
    public int MaxAttempts { get; init; } = 3;
    public int DeadlineSeconds { get; init; } = 300;
    public string Incomplete { get; init; } = "";
    public string Result { get; init; } = "";
    public string Reason { get; init; } = "";
    public string Time { get; init; } = "";

    /// <summary>The state in <paramref name="file"/>, or null when there is none (a fresh installation).</summary>
    public static UpdateState? Read(string file)
    {
        if (!File.Exists(file))
        {
            return null;
        }

        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in File.ReadAllLines(file))
        {
            var eq = line.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0)
            {
                values[line[..eq]] = line[(eq + 1)..];
            }
        }

        string Get(string key) => values.TryGetValue(key, out var v) ? v : "";
        int Int(string key, int fallback) => int.TryParse(Get(key), NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) ? n : fallback;
        return new UpdateState
        {
            Good = Get("good"),
            Trial = Get("trial"),
            Attempts = Int("attempts", 0),
            MaxAttempts = Int("max_attempts", 3),
            DeadlineSeconds = Int("deadline", 300),
            Incomplete = Get("incomplete"),
            Result = Get("result"),
            Reason = Get("reason"),
            Time = Get("time"),
        };
    }

    /// <summary>This state with the last event set to <paramref name="result"/> and <paramref name="reason"/>, now.</summary>
    public UpdateState WithResult(string result, string reason) => this with
    {
        Result = result,
        Reason = reason,
        Time = DateTimeOffset.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
    };

    public string Render()
    {
        // Values are single lines: the guard reads them with `read`.
        static string One(string v) => v.Replace('\n', ' ').Replace('\r', ' ');
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"good={One(Good)}\n");
        text.Append(CultureInfo.InvariantCulture, $"trial={One(Trial)}\n");
        text.Append(CultureInfo.InvariantCulture, $"attempts={Attempts}\n");
        text.Append(CultureInfo.InvariantCulture, $"max_attempts={MaxAttempts}\n");
        text.Append(CultureInfo.InvariantCulture, $"deadline={DeadlineSeconds}\n");
        text.Append(CultureInfo.InvariantCulture, $"incomplete={One(Incomplete)}\n");
        text.Append(CultureInfo.InvariantCulture, $"result={One(Result)}\n");
        text.Append(CultureInfo.InvariantCulture, $"reason={One(Reason)}\n");
        text.Append(CultureInfo.InvariantCulture, $"time={One(Time)}\n");
        return text.ToString();
    }

    public void Write(string file) => AtomicFile.Write(file, Encoding.UTF8.GetBytes(Render()));
}

/// <summary>Crash-safe file and link replacement: temp, fsync, rename, fsync of the folder.</summary>
internal static partial class AtomicFile
{
    public static void Write(string file, byte[] content)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(file))!;
        Directory.CreateDirectory(dir);
        var temp = Path.Combine(dir, $".{Path.GetFileName(file)}.{Environment.ProcessId}.tmp");
        using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            stream.Write(content);
            stream.Flush(flushToDisk: true);
        }

        File.Move(temp, file, overwrite: true);
        SyncDirectory(dir);
    }

    /// <summary>Points the symlink <paramref name="link"/> at <paramref name="target"/> in one rename (never absent).</summary>
    public static void ReplaceLink(string link, string target)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(link))!;
        var temp = Path.Combine(dir, $".{Path.GetFileName(link)}.{Environment.ProcessId}.tmp");
        if (File.Exists(temp) || Directory.Exists(temp) || new FileInfo(temp).LinkTarget is not null)
        {
            File.Delete(temp);
        }

        File.CreateSymbolicLink(temp, target);
        // rename(2) replaces the old link atomically; File.Move would refuse a directory symlink's target type.
        if (Native.Rename(temp, link) != 0)
        {
            throw new IOException($"cannot rename {temp} to {link}: errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()}");
        }

        SyncDirectory(dir);
    }

    public static void SyncDirectory(string dir)
    {
        var fd = Native.Open(dir, 0 /* O_RDONLY */);
        if (fd >= 0)
        {
            _ = Native.Fsync(fd);
            _ = Native.Close(fd);
        }
    }

    private static partial class Native
    {
        [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "rename", StringMarshalling = System.Runtime.InteropServices.StringMarshalling.Utf8, SetLastError = true)]
        public static partial int Rename(string from, string to);

        [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "open", StringMarshalling = System.Runtime.InteropServices.StringMarshalling.Utf8, SetLastError = true)]
        public static partial int Open(string path, int flags);

        [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
        public static partial int Fsync(int fd);

        [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
        public static partial int Close(int fd);
    }
}
