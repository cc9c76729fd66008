using System.Text;
using Coracle.Core.Supervision;

namespace Coracle.Core.Tests.Supervision;

public sealed class RotatingLogFileTests : IDisposable
{
    private readonly TempDir _temp = new("crt-rot");

    public void Dispose() => _temp.Dispose();

    private static byte[] Line(string text) => Encoding.UTF8.GetBytes(text + "\n");

    [Fact]
    public void Write_NewFile_Mode0600InA0700Folder()
    {
        var path = _temp.Combine("logs", "containerd.log");
        using (var file = new RotatingLogFile(path))
        {
            file.Write(Line("hello"));
            file.Flush();
        }

        Assert.Equal("hello\n", File.ReadAllText(path));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(_temp.Combine("logs")));
    }

    [Fact]
    public void Write_ExistingFile_AppendsAndTightensItsMode()
    {
        var path = _temp.Write("kubelet.log", "earlier run\n");
        File.SetUnixFileMode(path, (UnixFileMode)0x1A4); // 0644

        using (var file = new RotatingLogFile(path))
        {
            file.Write(Line("this run"));
        }

        Assert.Equal("earlier run\nthis run\n", File.ReadAllText(path));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
    }

    [Fact]
    public void Write_PastTheLimit_RenamesToDotOneAndStartsANewFile()
    {
        var path = _temp.Combine("kube-apiserver.log");
        using var file = new RotatingLogFile(path, maxBytes: 20);

        file.Write(Line("0123456789"));  // 11 bytes
        file.Write(Line("abcdefghij"));  // 22 bytes: past the limit, rotated
        file.Write(Line("after"));
        file.Flush();

        Assert.Equal("0123456789\nabcdefghij\n", File.ReadAllText(path + ".1"));
        Assert.Equal("after\n", File.ReadAllText(path));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
    }

    [Fact]
    public void Write_SecondRotation_ReplacesTheOldDotOne()
    {
        var path = _temp.Combine("kubelet.log");
        using var file = new RotatingLogFile(path, maxBytes: 10);

        file.Write(Line("first-file-1"));
        file.Write(Line("second-file"));
        file.Write(Line("third"));
        file.Flush();

        Assert.Equal("second-file\n", File.ReadAllText(path + ".1"));
        Assert.Equal("third\n", File.ReadAllText(path));
        Assert.Equal(["kubelet.log", "kubelet.log.1"], Directory.GetFiles(_temp.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Write_AtTheLimitExactly_NotRotated()
    {
        var path = _temp.Combine("x.log");
        using var file = new RotatingLogFile(path, maxBytes: 6);

        file.Write(Line("12345"));
        file.Flush();

        Assert.False(File.Exists(path + ".1"));
        Assert.Equal("12345\n", File.ReadAllText(path));
    }
}
