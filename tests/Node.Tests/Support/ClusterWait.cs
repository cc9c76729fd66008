namespace Coracle.Node.Tests.Support;

/// <summary>Polls a condition of a cluster of real nodes; on timeout, keeps both nodes' full logs and fails with their tails.</summary>
internal static class ClusterWait
{
    public static async Task UntilAsync(Func<bool> condition, Func<string> what, string test, string id, NodeHarness? server, NodeHarness? agent, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromMinutes(2));
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                var logs = Path.Combine(Path.GetTempPath(), $"coracle-{test}-test-{id}");
                Directory.CreateDirectory(logs);
                File.WriteAllText(Path.Combine(logs, "server.log"), server?.Log ?? "");
                File.WriteAllText(Path.Combine(logs, "agent.log"), agent?.Log ?? "");
                Assert.Fail($"timed out waiting for {what()} (full logs in {logs})\n--- server log tail:\n{server?.Tail(60)}\n--- agent log tail:\n{agent?.Tail(100)}");
            }

            await Task.Delay(1000);
        }
    }
}
