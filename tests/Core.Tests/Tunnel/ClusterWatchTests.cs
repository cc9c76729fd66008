using System.Collections.Concurrent;
using System.Net;
using System.Text;
using Coracle.Core.Tunnel;
using Microsoft.Extensions.Logging.Abstractions;

namespace Coracle.Core.Tests.Tunnel;

/// <summary>
/// The list-and-watch loop against a scripted HTTP handler playing kube-apiserver's list and watch answers (the real
/// kube-apiserver is behind tests/Node.Tests/Node/EgressTests.cs).
/// </summary>
public sealed class ClusterWatchTests
{
    private static string Node(string name, string version, string? podCidr = null) =>
        "{\"metadata\":{\"name\":\"" + name + "\",\"resourceVersion\":\"" + version + "\"},\"spec\":{"
        + (podCidr is null ? "" : "\"podCIDR\":\"" + podCidr + "\"") + "},\"status\":{}}";

    private static string Event(string type, string node) => "{\"type\":\"" + type + "\",\"object\":" + node + "}";

    [Fact]
    public async Task RunAsync_ListThenWatchEventsThenGone_KeepsEveryObjectAndListsAgain()
    {
        var handler = new ScriptedApiServer(
        [
            $$"""{"kind":"NodeList","metadata":{"resourceVersion":"10"},"items":[{{Node("n1", "9")}}]}""",
            string.Join('\n',
                Event("ADDED", Node("n2", "11")),
                """{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"12"}}}""",
                Event("MODIFIED", Node("n1", "13", "10.42.0.0/24")),
                Event("DELETED", Node("n2", "14")),
                """{"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired"}}""") + "\n",
            $$"""{"kind":"NodeList","metadata":{"resourceVersion":"20"},"items":[{{Node("n1", "13", "10.42.0.0/24")}},{{Node("n3", "19")}}]}""",
        ]);
        using var client = new HttpClient(handler) { BaseAddress = new Uri("https://127.0.0.1:6443") };
        var snapshots = new ConcurrentQueue<string>();
        using var stop = new CancellationTokenSource();
        var watch = new ClusterWatch<NodeEntry>(client, "/api/v1/nodes", "metadata.name!=x", NodeEntry.FromJson, NullLogger.Instance)
        {
            Changed = all =>
            {
                snapshots.Enqueue(string.Join(",", all.OrderBy(n => n.Name, StringComparer.Ordinal).Select(n => n.Name + (n.PodCidrs.Count > 0 ? "=" + n.PodCidrs[0] : ""))));
                if (snapshots.Count == 5)
                {
                    stop.Cancel();
                }
            },
        };

        await watch.RunAsync(stop.Token);

        Assert.True(watch.Synced);
        Assert.Equal(["n1", "n1,n2", "n1=10.42.0.0/24,n2", "n1=10.42.0.0/24", "n1=10.42.0.0/24,n3"], snapshots);
        Assert.Equal(
        [
            "/api/v1/nodes?limit=0&fieldSelector=metadata.name%21%3Dx",
            "/api/v1/nodes?watch=1&allowWatchBookmarks=true&timeoutSeconds=300&resourceVersion=10&fieldSelector=metadata.name%21%3Dx",
            "/api/v1/nodes?limit=0&fieldSelector=metadata.name%21%3Dx",
        ], handler.Requests.Take(3));
    }

    /// <summary>Answers each GET with the next scripted body; once the script is done, holds the request open.</summary>
    private sealed class ScriptedApiServer(IReadOnlyList<string> bodies) : HttpMessageHandler
    {
        private int _next;

        public ConcurrentQueue<string> Requests { get; } = new();

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Requests.Enqueue(request.RequestUri!.PathAndQuery);
            var index = Interlocked.Increment(ref _next) - 1;
            if (index >= bodies.Count)
            {
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }

            return new HttpResponseMessage(HttpStatusCode.OK) { Content = new StringContent(bodies[index], Encoding.UTF8, "application/json") };
        }
    }
}
