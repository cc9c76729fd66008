namespace Coracle.Integration.Tests.Support;

/// <summary>A temp folder (mode 0755) removed on dispose.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir(string prefix = "coracle-it")
    {
        Path = Directory.CreateTempSubdirectory(prefix).FullName;
        File.SetUnixFileMode(Path, (UnixFileMode)0x1ED);
    }

    public string Path { get; }

    public string Combine(params string[] parts) => System.IO.Path.Combine([Path, .. parts]);

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
