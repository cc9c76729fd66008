using System.Globalization;
using Coracle.Core.Hosting;

namespace Coracle.Core.Supervision;

/// <summary>A process the node started: its pid and its start time (clock ticks after boot, field 22 of <c>/proc/PID/stat</c>).</summary>
internal sealed record PidRecord(string Name, int Pid, long StartTime);

/// <summary>
/// The pids of the processes a node started, one file per component in <c>DATA/run/pids/NAME.pid</c> (<c>PID STARTTIME</c>,
/// 0600), so <c>coracle killall</c> stops exactly those — after the node died too — and never a stranger: a record counts
/// only while the process with that pid still has the recorded start time, so a pid the kernel gave to someone else is left
/// alone.
/// </summary>
internal static class PidRecords
{
    public static string DirFor(string runDir) => Path.Combine(runDir, "pids");

    private static string FileFor(string dir, string name) => Path.Combine(dir, name.Replace('/', '_') + ".pid");

    /// <summary>Records <paramref name="pid"/> as <paramref name="name"/>'s process (replacing an earlier one); false when it is already gone.</summary>
    public static bool Record(string dir, string name, int pid, string procRoot = "/proc")
    {
        if (StartTime(pid, procRoot) is not { } start)
        {
            return false;
        }

        FileUtil.PrivateDirectory(dir);
        FileUtil.WriteAtomic(FileFor(dir, name), $"{pid.ToString(CultureInfo.InvariantCulture)} {start.ToString(CultureInfo.InvariantCulture)}\n",
            UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return true;
    }

    /// <summary>Removes <paramref name="name"/>'s record if it still names <paramref name="pid"/>.</summary>
    public static void Remove(string dir, string name, int pid)
    {
        var file = FileFor(dir, name);
        if (Parse(name, file) is { } record && record.Pid == pid)
        {
            File.Delete(file);
        }
    }

    /// <summary>Every record in <paramref name="dir"/> (none when it does not exist); unreadable files are skipped.</summary>
    public static IReadOnlyList<PidRecord> ReadAll(string dir) =>
        Directory.Exists(dir)
            ? Directory.GetFiles(dir, "*.pid").Order(StringComparer.Ordinal)
                .Select(f => Parse(Path.GetFileNameWithoutExtension(f), f)).OfType<PidRecord>().ToList()
            : [];

    /// <summary>True when <paramref name="record"/>'s process still runs: same pid, same start time.</summary>
    public static bool IsAlive(PidRecord record, string procRoot = "/proc") => StartTime(record.Pid, procRoot) == record.StartTime;

    /// <summary>Field 22 of <c>/proc/PID/stat</c>; null when the process is gone or a zombie (dead, not yet reaped by its parent).</summary>
    public static long? StartTime(int pid, string procRoot = "/proc")
    {
        try
        {
            var stat = File.ReadAllText(Path.Combine(procRoot, pid.ToString(CultureInfo.InvariantCulture), "stat"));
            // After "PID (COMM) " come the fields from 3 (state) on; starttime is field 22.
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return fields.Length > 19 && fields[0] != "Z" && long.TryParse(fields[19], NumberStyles.None, CultureInfo.InvariantCulture, out var start) ? start : null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static PidRecord? Parse(string name, string file)
    {
        try
        {
            var parts = File.ReadAllText(file).Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            return parts.Length == 2
                && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var pid)
                && long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var start)
                ? new PidRecord(name, pid, start)
                : null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
