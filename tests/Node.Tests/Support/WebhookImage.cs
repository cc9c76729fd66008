using Coracle.Plugins.Runtime.Containerd;

namespace Coracle.Node.Tests.Support;

/// <summary>The test webhook's image, compiled from tests/Node.Tests/Webhook/main.go with Debian's golang-go.</summary>
internal static partial class AddonImages
{
    /// <summary>Writes the webhook image into <paramref name="imagesDir"/>, compiling the webhook first when needed.</summary>
    public static void WriteWebhook(string imagesDir) =>
        ImageBuilder.WriteArchive(Path.Combine(imagesDir, "webhook.tar"), new ImageLayout
        {
            RepoTag = Webhook,
            Files = new Dictionary<string, string> { ["webhook"] = WebhookBinary() },
            Entrypoint = ["/webhook"],
            Busybox = null,
        });

    /// <summary>The static webhook binary, rebuilt when main.go is newer than the cached one.</summary>
    private static string WebhookBinary()
    {
        var source = Path.Combine(RepoRoot(), "tests", "Node.Tests", "Webhook", "main.go");
        var cache = Directory.CreateDirectory(Path.Combine(AppContext.BaseDirectory, "webhook")).FullName;
        var binary = Path.Combine(cache, "webhook");
        if (File.Exists(binary) && File.GetLastWriteTimeUtc(binary) >= File.GetLastWriteTimeUtc(source))
        {
            return binary;
        }

        var go = new[] { "/usr/bin/go", "/usr/lib/go/bin/go" }.FirstOrDefault(File.Exists);
        Assert.True(go is not null, "go is missing: apt-get install -y golang-go (scripts/prereqs.sh test installs it)");
        var fresh = $"{binary}.{Environment.ProcessId}.new"; // node test processes may run side by side
        var (code, stdout, stderr) = Run.Tool(go!, ["build", "-trimpath", "-ldflags=-s", "-o", fresh, source], new Dictionary<string, string>
        {
            ["CGO_ENABLED"] = "0",
            ["GOCACHE"] = Path.Combine(cache, "go-cache"),
            ["GOPATH"] = Path.Combine(cache, "go-path"),
        }, TimeSpan.FromMinutes(5));
        Assert.True(code == 0, $"go build of {source} failed ({code}): {stdout}{stderr}");
        Assert.True(ImageBuilder.IsStaticElf(fresh), $"{fresh} is not a static executable");
        File.Move(fresh, binary, overwrite: true);
        return binary;
    }

    private static string RepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Directory.Packages.props")))
        {
            dir = dir.Parent;
        }

        return dir!.FullName;
    }
}
