using Coracle.Core.Hosting;

namespace Coracle.Core.Node;

/// <summary>
/// Kernel settings a node changes (<c>net.ipv4.ip_forward=1</c>), with the value found before the first change kept in
/// the node state file so <c>coracle killall</c> can put it back.
/// </summary>
internal static class Sysctls
{
    /// <summary>What a node sets: sysctl path below /proc/sys → value.</summary>
    public static IReadOnlyDictionary<string, string> Wanted { get; } = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["net/ipv4/ip_forward"] = "1",
    };

    /// <summary>
    /// Sets every wanted value; returns the original values, keeping those already recorded in <paramref name="recorded"/>
    /// (after a crash the current value is our own).
    /// </summary>
    public static Dictionary<string, string> Apply(IReadOnlyDictionary<string, string> recorded, string procSys = "/proc/sys")
    {
        var originals = new Dictionary<string, string>(recorded, StringComparer.Ordinal);
        foreach (var (key, value) in Wanted)
        {
            var path = Path.Combine(procSys, key);
            if (!File.Exists(path))
            {
                continue;
            }

            var current = File.ReadAllText(path).Trim();
            originals.TryAdd(key, current);
            if (current != value)
            {
                File.WriteAllText(path, value);
            }
        }

        return originals;
    }

    /// <summary>Writes the recorded originals back; returns what was restored as <c>key=value</c>.</summary>
    public static IReadOnlyList<string> Restore(IReadOnlyDictionary<string, string> originals, string procSys = "/proc/sys")
    {
        var restored = new List<string>();
        foreach (var (key, value) in originals)
        {
            var path = Path.Combine(procSys, key);
            if (File.Exists(path) && File.ReadAllText(path).Trim() != value)
            {
                File.WriteAllText(path, value);
                restored.Add($"{key.Replace('/', '.')}={value}");
            }
        }

        return restored;
    }

    /// <summary>Where killall reads the originals; kept beside the status socket.</summary>
    public static string StateFile(string runDir) => Path.Combine(runDir, "sysctl-originals.json");

    public static Dictionary<string, string> Load(string runDir)
    {
        var file = StateFile(runDir);
        if (!File.Exists(file))
        {
            return new Dictionary<string, string>(StringComparer.Ordinal);
        }

        try
        {
            return System.Text.Json.JsonSerializer.Deserialize<Dictionary<string, string>>(File.ReadAllText(file))
                ?? new Dictionary<string, string>(StringComparer.Ordinal);
        }
        catch (System.Text.Json.JsonException)
        {
            return new Dictionary<string, string>(StringComparer.Ordinal);
        }
    }

    public static void Save(string runDir, IReadOnlyDictionary<string, string> originals) =>
        FileUtil.WriteAtomic(StateFile(runDir), System.Text.Json.JsonSerializer.Serialize(originals), UnixFileMode.UserRead | UnixFileMode.UserWrite);
}
