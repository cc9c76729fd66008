namespace Coracle.TestSupport;

/// <summary>A unique, short temp folder (unix socket paths must stay under 108 bytes), removed on dispose.</summary>
public sealed class TempDir : IDisposable
{
    public TempDir(string prefix = "crt")
    {
        Path = System.IO.Path.Combine("/tmp", $"{prefix}-{Guid.NewGuid().ToString("N")[..10]}");
        Directory.CreateDirectory(Path);
        File.SetUnixFileMode(Path, (UnixFileMode)0x1ED); // 0755: plugin folders below it must not be world-writable
    }

    public string Path { get; }

    public string Combine(params string[] parts) => System.IO.Path.Combine([Path, .. parts]);

    public string Write(string relative, string content)
    {
        var file = Combine(relative);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(file)!);
        File.WriteAllText(file, content);
        return file;
    }

    public string WriteExecutable(string relative, string content)
    {
        var file = Write(relative, content);
        File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return file;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
