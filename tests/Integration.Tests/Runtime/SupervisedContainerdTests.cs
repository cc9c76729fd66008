using Coracle.Core.Hosting;
using Coracle.Core.Supervision;
using Coracle.Integration.Tests.Support;
using Coracle.Plugins;
using Coracle.Plugins.Runtime.Containerd;

namespace Coracle.Integration.Tests.Runtime;

/// <summary>The containerd plugin under the host's real supervisor, with Debian's containerd.</summary>
[Trait("Category", "Integration")]
public sealed class SupervisedContainerdTests : IAsyncDisposable
{
    private readonly TempDir _temp = new("coracle-ctd");
    private readonly ListLoggerFactory _logs = new();
    private readonly Supervisor _supervisor;

    public SupervisedContainerdTests()
    {
        _supervisor = new Supervisor(_logs);
    }

    public async ValueTask DisposeAsync()
    {
        await _supervisor.StopAsync();
        _temp.Dispose();
    }

    private ComponentStatus Containerd => _supervisor.Snapshot().Single(c => c.Name == "containerd");

    [Fact]
    public async Task Containerd_KilledWithSigkill_IsRestartedAndCriAnswersAgain()
    {
        var node = new NodeSettings
        {
            Role = "server",
            NodeName = "it-node",
            DataDir = _temp.Combine("data"),
            RunDir = _temp.Combine("run"),
            ComponentsDir = _temp.Combine("components"),
            Architecture = "x64",
            ClusterCidr = "10.42.0.0/16",
            ServiceCidr = "10.43.0.0/16",
            ClusterDns = "10.43.0.10",
            ClusterDomain = "cluster.local",
            PauseImage = "docker.io/library/busybox:coracle-pause",
        };
        var context = new PluginContext(
            node,
            new Dictionary<string, string> { ["stream-server-port"] = "0" },
            FileUtil.PrivateDirectory(_temp.Combine("data", "plugins", "containerd")),
            PluginFolderAttribute.Resolve(typeof(ContainerdPlugin), node.DataDir).ToDictionary(f => f.Key, f => FileUtil.PrivateDirectory(f.Value)),
            _logs.CreateLogger("containerd-plugin"),
            _logs,
            _supervisor,
            new ManifestSink(_temp.Combine("data", "server", "manifests")),
            new NodeCertificates(_temp.Combine("data", "server", "tls")));
        var endpoint = new ContainerdPlugin().Configure(context, new RuntimeOptions());
        Assert.DoesNotContain(_supervisor.Snapshot(), c => c.State == ComponentState.Unavailable);

        _supervisor.Start(CancellationToken.None);
        await _supervisor.WaitReadyAsync(endpoint.ComponentName, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(60));
        var first = Containerd.Pid!.Value;

        Native.Kill(first, Native.SigKill);

        // Readiness is CRI Version + Status over the socket: "ready" again means CRI answers again.
        await Wait.UntilAsync(() => Containerd is { State: ComponentState.Ready, Pid: { } pid } && pid != first, "containerd to be restarted and answer CRI", 60);
        Assert.Equal(1, Containerd.Restarts);
        Assert.Contains(_logs.Lines, l => l.StartsWith("[containerd] exited (killed by signal 9); restart 1", StringComparison.Ordinal));
        Assert.Contains(_logs.Lines, l => l.StartsWith("[containerd] time=", StringComparison.Ordinal));

        var second = Containerd.Pid!.Value;
        await _supervisor.StopAsync();
        Assert.False(Native.IsAlive(second));
    }
}
