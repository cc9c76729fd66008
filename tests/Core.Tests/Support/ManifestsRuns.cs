using Coracle.Core.Addons;
using Coracle.Core.Kubernetes;

namespace Coracle.Core.Tests.Support;

/// <summary>
/// Manifests controllers a test runs against the real kube-apiserver fixture, each on its own client: stopped and their
/// clients disposed when the test ends; <see cref="AssertNoneCrashed"/> fails a wait early with the controller's error.
/// </summary>
internal sealed class ManifestsRuns : IAsyncDisposable
{
    private readonly List<(CancellationTokenSource Stop, Task Task, KubeApi Api)> _running = [];

    /// <summary>Runs <paramref name="service"/> on <paramref name="api"/> (which it then owns) until the test ends.</summary>
    public void Start(ManifestsService service, KubeApi api)
    {
        var stop = new CancellationTokenSource();
        _running.Add((stop, Task.Run(() => service.RunAsync(api, stop.Token)), api));
    }

    /// <summary>Fails when a controller's task faulted, with its exception and <paramref name="log"/>.</summary>
    public void AssertNoneCrashed(IEnumerable<string> log)
    {
        var crashed = _running.FirstOrDefault(r => r.Task.IsFaulted);
        Assert.True(crashed.Task is null, $"the controller crashed: {crashed.Task?.Exception}\n{string.Join('\n', log)}");
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var (stop, task, api) in _running)
        {
            await stop.CancelAsync();
            try
            {
                await task;
            }
            catch (OperationCanceledException)
            {
            }

            api.Dispose();
            stop.Dispose();
        }
    }
}
