namespace Coracle.Core.Hosting;

/// <summary>
/// The data dir's lock, <c>DATA/run/coracle.lock</c>: an exclusive advisory lock (flock) held for the node's lifetime
/// and released by the kernel when the process dies, even by kill -9. Taken before anything else is written, so a
/// second node on the same data dir is refused without changing a file.
/// </summary>
internal sealed class DataDirLock : IDisposable
{
    private readonly FileStream _file;

    private DataDirLock(FileStream file)
    {
        _file = file;
    }

    /// <summary>Creates the folders (0700) if needed and takes the lock; throws <see cref="IOException"/> when held.</summary>
    public static DataDirLock Acquire(string dataDir, string runDir)
    {
        var path = Path.Combine(runDir, "coracle.lock");
        if (File.Exists(path))
        {
            // A live node holds it: try before touching the folders, whose modes a first start may still change.
            return new DataDirLock(Open(path, dataDir));
        }

        FileUtil.PrivateDirectory(dataDir);
        FileUtil.PrivateDirectory(runDir);
        return new DataDirLock(Open(path, dataDir));
    }

    public void Dispose() => _file.Dispose();

    private static FileStream Open(string path, string dataDir)
    {
        try
        {
            // FileShare.None takes flock(LOCK_EX | LOCK_NB) on Linux; opening an existing file does not modify it.
            return new FileStream(path, new FileStreamOptions
            {
                Mode = FileMode.OpenOrCreate,
                Access = FileAccess.ReadWrite,
                Share = FileShare.None,
                UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            });
        }
        catch (IOException ex) when (ex is not FileNotFoundException and not DirectoryNotFoundException)
        {
            throw new IOException($"data dir {dataDir} is in use by another coracle on this machine ({path} is locked); stop it first ('coracle status --data-dir {dataDir}' shows it) or use another --data-dir", ex);
        }
    }
}
