using System.Runtime.InteropServices;

namespace Coracle.Core.Hosting;

/// <summary>Small file helpers: private folders and atomic, durable writes.</summary>
internal static class FileUtil
{
    public static string PrivateDirectory(string path)
    {
        Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
    }

    /// <summary>Writes to a temp file, fsyncs it and renames it over the target, so a crash never leaves half a file.</summary>
    public static void WriteAtomic(string path, string content, UnixFileMode mode)
    {
        var dir = Path.GetDirectoryName(path)!;
        Directory.CreateDirectory(dir);
        var temp = Path.Combine(dir, $".{Path.GetFileName(path)}.{Environment.ProcessId}.tmp");
        using (var stream = new FileStream(temp, new FileStreamOptions
        {
            Mode = FileMode.Create,
            Access = FileAccess.Write,
            UnixCreateMode = mode,
        }))
        using (var writer = new StreamWriter(stream))
        {
            writer.Write(content);
            writer.Flush();
            stream.Flush(flushToDisk: true);
        }

        File.SetUnixFileMode(temp, mode);
        File.Move(temp, path, overwrite: true);
        DirectorySync.Sync(dir);
    }
}


/// <summary>fsync of a folder, so a rename in it survives a power cut.</summary>
internal static partial class DirectorySync
{
    public static void Sync(string dir)
    {
        var fd = Open(dir, 0 /* O_RDONLY */);
        if (fd < 0)
        {
            return;
        }

        try
        {
            _ = Fsync(fd);
        }
        finally
        {
            _ = Close(fd);
        }
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}
