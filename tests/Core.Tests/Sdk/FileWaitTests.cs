using Coracle.Plugins;

namespace Coracle.Core.Tests.Sdk;

public sealed class FileWaitTests
{
    [Fact]
    public async Task UntilExistsAsync_FileAppearsLater_ReportsWaitingThenCompletes()
    {
        var dir = Directory.CreateTempSubdirectory("coracle-filewait-");
        try
        {
            var file = Path.Combine(dir.FullName, "kubeconfig");
            var reported = new List<string>();
            var wait = FileWait.UntilExistsAsync(file, reported.Add, CancellationToken.None);
            Assert.False(wait.IsCompleted);
            Assert.Equal([file], reported); // said at once what it waits for

            await File.WriteAllTextAsync(file, "x");
            await wait.WaitAsync(TimeSpan.FromSeconds(30)); // a hang guard, not a timing assertion
            Assert.Equal([file], reported);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task UntilExistsAsync_FileExists_CompletesWithoutReporting()
    {
        var file = Path.GetTempFileName();
        try
        {
            var reported = new List<string>();
            await FileWait.UntilExistsAsync(file, reported.Add, CancellationToken.None);
            Assert.Empty(reported);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task UntilExistsAsync_Cancelled_Throws()
    {
        using var cts = new CancellationTokenSource();
        var wait = FileWait.UntilExistsAsync("/nonexistent/coracle/file", _ => cts.Cancel(), cts.Token);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => wait);
    }
}
