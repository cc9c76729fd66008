namespace Coracle.Core.Supervision;

/// <summary>
/// An append-only log file (mode 0600, its folder 0700) that starts over when it passes a size: <c>NAME.log</c> is
/// renamed to <c>NAME.log.1</c> (replacing the previous one) and a new <c>NAME.log</c> begins, so a component never
/// holds more than about twice the limit on a flash card. One buffered stream stays open while the process runs;
/// the caller writes blocks of whole lines and flushes after each block (no fsync).
/// </summary>
internal sealed class RotatingLogFile : IDisposable
{
    public const long DefaultMaxBytes = 10 * 1024 * 1024;

    private const UnixFileMode FileMode600 = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode FolderMode700 = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    private readonly long _maxBytes;
    private FileStream? _stream;

    public RotatingLogFile(string path, long maxBytes = DefaultMaxBytes)
    {
        Path = path;
        _maxBytes = maxBytes;
        _stream = Open();
    }

    public string Path { get; }

    /// <summary>The previous file, kept after a rotation.</summary>
    public string PreviousPath => Path + ".1";

    /// <summary>Appends whole lines (each ending in a newline); rotates once the file has passed the limit.</summary>
    public void Write(ReadOnlySpan<byte> lines)
    {
        var stream = _stream ??= Open();
        stream.Write(lines);
        if (stream.Position > _maxBytes)
        {
            Rotate();
        }
    }

    /// <summary>Hands the buffered bytes to the kernel (one write call per batch of lines).</summary>
    public void Flush() => _stream?.Flush(flushToDisk: false);

    public void Dispose()
    {
        _stream?.Dispose();
        _stream = null;
    }

    private void Rotate()
    {
        _stream!.Dispose();
        _stream = null;
        File.Move(Path, PreviousPath, overwrite: true);
        _stream = Open();
    }

    private FileStream Open()
    {
        var folder = System.IO.Path.GetDirectoryName(Path)!;
        if (!Directory.Exists(folder))
        {
            Directory.CreateDirectory(folder, FolderMode700);
        }

        var stream = new FileStream(Path, new FileStreamOptions
        {
            Mode = FileMode.Append,
            Access = FileAccess.Write,
            Share = FileShare.ReadWrite | FileShare.Delete,
            BufferSize = 16 * 1024,
            UnixCreateMode = FileMode600,
        });

        // A file left by an older version (or created by hand) may be more open than 0600.
        File.SetUnixFileMode(stream.SafeFileHandle, FileMode600);
        return stream;
    }
}
