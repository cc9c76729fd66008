using System.Net;
using System.Net.Sockets;
using Coracle.Core.Agent;
using Coracle.Core.Join;
using Coracle.Core.Tests.Support;
using Coracle.TestSupport;
using Xunit;

namespace Coracle.Core.Tests.Agent;

/// <summary>An agent restarting while the server it joined is down joins through another server it learned (real loopback sockets).</summary>
public sealed class AgentJoinFailoverTests : IDisposable
{
    private readonly ListLoggerFactory _logs = new();
    private readonly string _dir = Directory.CreateTempSubdirectory("coracle-agentjoin-").FullName;

    [Fact]
    public async Task ReachableServer_JoinedServerRefuses_TheFirstKnownServerThatAnswersAndALineSayingWhy()
    {
        using var live = new TcpListener(IPAddress.Loopback, 0);
        live.Start();
        var dead = new Uri($"https://127.0.0.1:{DeadPort()}/");
        var other = new Uri($"https://127.0.0.1:{((IPEndPoint)live.LocalEndpoint).Port}/");

        var chosen = await AgentJoin.ReachableServerAsync(dead, [other], _logs.CreateLogger("join"), TimeProvider.System, CancellationToken.None)
            .WaitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal(other, chosen);
        Assert.Contains(_logs.Lines, l => l.Contains($"server {dead} does not answer (", StringComparison.Ordinal)
            && l.EndsWith($"); joining through {other}, another server of the cluster this agent knows", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ReachableServer_NoOtherServerKnown_TheJoinedOneAtOnceWithoutDialling()
    {
        var dead = new Uri($"https://127.0.0.1:{DeadPort()}/");
        Assert.Equal(dead, await AgentJoin.ReachableServerAsync(dead, [], _logs.CreateLogger("join"), TimeProvider.System, CancellationToken.None));
        Assert.Empty(_logs.Lines);
    }

    [Fact]
    public void KnownServers_SavedLoadBalancerList_OtherServersAtTheSupervisorPort_NoneOnAFirstJoin()
    {
        var config = TestConfig.Server(_dir);
        var joined = new Uri("https://10.0.0.1:9345/");
        Assert.Empty(AgentJoin.KnownServers(config, joined));

        var agentDir = Directory.CreateDirectory(AgentJoin.AgentDir(config.DataDir)).FullName;
        ServerList.Load(Path.Combine(agentDir, "load-balancer.json"), "10.0.0.1:6443", _logs.CreateLogger("lb")).Update(["10.0.0.1:6443", "10.0.0.2:6443", "10.0.0.3:6443"]);
        Assert.Equal([new Uri("https://10.0.0.2:9345/"), new Uri("https://10.0.0.3:9345/")], AgentJoin.KnownServers(config, joined));
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static int DeadPort()
    {
        var port = FreePorts.Next();
        return port;
    }
}
