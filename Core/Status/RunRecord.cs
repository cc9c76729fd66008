using Coracle.Core.Hosting;
using Coracle.Core.Logging;
using Microsoft.Extensions.Logging;

namespace Coracle.Core.Status;

/// <summary>
/// Where a running node says which data dir it uses, so <c>coracle status</c>, <c>plugins list</c>, <c>kubectl</c>
/// and <c>ctr</c> find it without <c>--data-dir</c>: one file holding the path, <c>/run/coracle/data-dir</c> as root,
/// <c>$XDG_RUNTIME_DIR/coracle/data-dir</c> (else <c>~/.coracle/run-data-dir</c>) otherwise, or
/// <c>$CORACLE_RUN_DIR/data-dir</c>. Written atomically (0600) once the node holds its status socket, removed when it
/// stops if it still names that node. A record is only believed while its status socket accepts a connection.
/// </summary>
internal sealed class RunRecord : IDisposable
{
    /// <summary>Overrides the record's folder (tests, several nodes side by side).</summary>
    public const string Variable = "CORACLE_RUN_DIR";

    private const UnixFileMode FileMode600 = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode FolderMode700 = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    private readonly string _path;
    private readonly string _dataDir;

    private RunRecord(string path, string dataDir)
    {
        _path = path;
        _dataDir = dataDir;
    }

    /// <summary>The record file for this user and environment.</summary>
    public static string PathFor(IReadOnlyDictionary<string, string> environment, bool privileged)
    {
        if (environment.GetValueOrDefault(Variable) is { Length: > 0 } overridden)
        {
            return Path.Combine(overridden, "data-dir");
        }

        if (privileged)
        {
            return "/run/coracle/data-dir";
        }

        if (environment.GetValueOrDefault("XDG_RUNTIME_DIR") is { Length: > 0 } runtime)
        {
            return Path.Combine(runtime, "coracle", "data-dir");
        }

        var home = environment.GetValueOrDefault("HOME") is { Length: > 0 } h ? h : Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        return Path.Combine(home, ".coracle", "run-data-dir");
    }

    /// <summary>The record file of this process's user and environment.</summary>
    public static string PathForThisProcess()
    {
        var environment = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var name in new[] { Variable, "XDG_RUNTIME_DIR", "HOME" })
        {
            if (Environment.GetEnvironmentVariable(name) is { } value)
            {
                environment[name] = value;
            }
        }

        return PathFor(environment, Environment.IsPrivilegedProcess);
    }

    /// <summary>Records <paramref name="dataDir"/>; the record is removed on dispose. Null (and a warning) when it cannot be written.</summary>
    public static RunRecord? Claim(string path, string dataDir, ILogger log)
    {
        try
        {
            Write(path, dataDir);
            log.RunRecordWritten(path);
            return new RunRecord(path, dataDir);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            log.RunRecordFailed(path, ex.Message);
            return null;
        }
    }

    /// <summary>Writes the record atomically (temp file, rename), mode 0600 in a 0700 folder.</summary>
    public static void Write(string path, string dataDir)
    {
        var folder = Path.GetDirectoryName(path)!;
        if (!Directory.Exists(folder))
        {
            Directory.CreateDirectory(folder, FolderMode700);
        }

        FileUtil.WriteAtomic(path, dataDir + "\n", FileMode600);
    }

    /// <summary>The recorded data dir, or null when there is no (readable) record.</summary>
    public static string? Read(string path)
    {
        try
        {
            var text = File.ReadAllText(path).Trim();
            return text.Length > 0 && Path.IsPathRooted(text) ? text : null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Removes the record if it still names <paramref name="dataDir"/> (a later node may have replaced it).</summary>
    public static bool Remove(string path, string dataDir)
    {
        if (Read(path) != dataDir)
        {
            return false;
        }

        try
        {
            File.Delete(path);
            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>The recorded data dir when a node answers on its status socket; null for no record or a stale one.</summary>
    public static string? FindRunning(string path) =>
        Read(path) is { } dataDir && StatusClient.TryConnect(Path.Combine(dataDir, "run", "coracle.sock")) ? dataDir : null;

    public void Dispose() => Remove(_path, _dataDir);
}
