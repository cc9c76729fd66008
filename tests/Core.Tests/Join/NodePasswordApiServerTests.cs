using System.Text;
using System.Text.Json.Nodes;
using Coracle.Core.Addons;
using Coracle.Core.Configuration;
using Coracle.Core.Join;
using Coracle.Core.Kubernetes;
using Coracle.Core.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace Coracle.Core.Tests.Join;

/// <summary>
/// Node passwords against the real kube-apiserver (CORACLE_K8S_BIN, one for the class): real agents
/// (<see cref="AgentJoin.JoinAsync"/>, each with its own data dir and so its own password) join a real join API
/// whose password Secrets live in that kube-apiserver. Nodes are created and deleted by hand, as a kubelet's
/// registration and <c>kubectl delete node</c> would. Each test uses node names of its own. The registration grace
/// period is passed by advancing the join API's clock, never by waiting.
/// </summary>
[Trait("Category", "Integration")]
public sealed class NodePasswordApiServerTests(ApiServerFixture kube) : IClassFixture<ApiServerFixture>, IAsyncLifetime, IDisposable
{
    private readonly TempDir _dir = new("crt-npw");
    private JoinServerHost? _server;
    private KubeApi? _api;

    private JoinServerHost Server => _server!;

    private KubeApi Api => _api ??= kube.Api();

    public async Task InitializeAsync()
    {
        if (kube.WhyNot is not null)
        {
            return;
        }

        _server = await JoinServerHost.StartAsync(_dir.Combine("server"), kube.Server.Port,
            (config, time) => new NodePasswords(kube.Api, NodePasswords.CacheFileFor(config.DataDir), NullLogger.Instance, time));
    }

    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }

    public void Dispose()
    {
        _api?.Dispose();
        _dir.Dispose();
    }

    /// <summary>Joins as <paramref name="node"/> from the machine (data dir) <paramref name="machine"/>.</summary>
    private Task<AgentIdentity> JoinAsync(string machine, string node)
    {
        var config = TestConfig.Load("agent", _dir.Combine(machine), (Settings.Server, Server.Url), (Settings.Token, Server.ServerToken.ToString()),
            (Settings.NodeName, node), (Settings.NodeIp, "127.0.0.1"));
        return AgentJoin.JoinAsync(config, NullLogger.Instance, CancellationToken.None);
    }

    private async Task<string> RefusedAsync(string machine, string node) =>
        (await Assert.ThrowsAsync<JoinException>(() => JoinAsync(machine, node))).Message;

    private string PasswordOf(string machine) => File.ReadAllText(AgentJoin.NodePasswordFile(_dir.Combine(machine))).Trim();

    private async Task<JsonNode> SecretAsync(string node)
    {
        var secret = await Api.GetAsync($"/api/v1/namespaces/kube-system/secrets/{node}.node-password.coracle", CancellationToken.None);
        Assert.True(secret.IsSuccess, secret.Describe());
        return secret.Body!;
    }

    private static string StoredHash(JsonNode secret) => Encoding.UTF8.GetString(Convert.FromBase64String(ObjectRef.Text(secret["data"]?["hash"])!));

    private async Task CreateNodeAsync(string node)
    {
        var created = await Api.CreateAsync("/api/v1/nodes", new JsonObject { ["apiVersion"] = "v1", ["kind"] = "Node", ["metadata"] = new JsonObject { ["name"] = node } }, CancellationToken.None);
        Assert.True(created.IsSuccess, created.Describe());
    }

    private async Task DeleteAsync(string path)
    {
        var deleted = await Api.DeleteAsync(path, CancellationToken.None);
        Assert.True(deleted.IsSuccess, deleted.Describe());
    }

    private static string Taken(string node, string why) =>
        $"the server refused this node: node name {node} is taken: the node password stored in Secret kube-system/{node}.node-password.coracle differs from this agent's and {why}; "
        + $"if {node} is this machine reinstalled or a retired node, free the name with 'kubectl -n kube-system delete secret {node}.node-password.coracle' (or 'kubectl delete node {node}') and retry, otherwise give this agent another --node-name";

    [K8sFact(Binaries = ["kube-apiserver"])]
    public async Task FirstJoin_StoresTheHashInASecret_AndTheSameMachineRejoins()
    {
        await JoinAsync("m1", "np-first");

        var secret = await SecretAsync("np-first");
        Assert.Equal("coracle.dev/node-password", ObjectRef.Text(secret["type"]));
        var stored = StoredHash(secret);
        Assert.True(NodePasswords.Matches(PasswordOf("m1"), stored), stored);
        Assert.DoesNotContain(PasswordOf("m1"), secret.ToJsonString(), StringComparison.Ordinal);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(AgentJoin.NodePasswordFile(_dir.Combine("m1"))));

        await JoinAsync("m1", "np-first");

        Assert.Equal(stored, StoredHash(await SecretAsync("np-first")));
    }

    [K8sFact(Binaries = ["kube-apiserver"])]
    public async Task AnotherMachineSameName_NodeExists_RefusedNamingTheSecretAndTheFix()
    {
        await JoinAsync("m1", "np-taken");
        await CreateNodeAsync("np-taken");
        Server.Time.Advance(NodePasswords.RegistrationGrace + TimeSpan.FromMinutes(1));

        var error = await RefusedAsync("m2", "np-taken");

        Assert.Equal(Taken("np-taken", "node np-taken exists"), error);
        Assert.True(NodePasswords.Matches(PasswordOf("m1"), StoredHash(await SecretAsync("np-taken"))));
        await JoinAsync("m1", "np-taken");
    }

    [K8sFact(Binaries = ["kube-apiserver"])]
    public async Task AnotherMachineSameName_NodeNotRegisteredYet_RefusedWithinTheGracePeriod()
    {
        await JoinAsync("m1", "np-young");
        var storedAt = ObjectRef.Text((await SecretAsync("np-young"))["metadata"]?["annotations"]?[NodePasswords.StoredAtAnnotation])!;

        var error = await RefusedAsync("m2", "np-young");

        var at = DateTimeOffset.Parse(storedAt, System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(Taken("np-young", $"its password was stored at {at:u}, less than 10 minutes ago, by an agent whose node has not registered yet"), error);
    }

    [K8sFact(Binaries = ["kube-apiserver"])]
    public async Task NodeDeleted_AnotherMachineTakesTheName_AndTheOldPasswordIsRefused()
    {
        await JoinAsync("m1", "np-freed");
        await CreateNodeAsync("np-freed");
        await DeleteAsync("/api/v1/nodes/np-freed");
        Server.Time.Advance(NodePasswords.RegistrationGrace + TimeSpan.FromMinutes(1));

        await JoinAsync("m2", "np-freed");

        Assert.True(NodePasswords.Matches(PasswordOf("m2"), StoredHash(await SecretAsync("np-freed"))));
        await CreateNodeAsync("np-freed");
        Assert.Equal(Taken("np-freed", "node np-freed exists"), await RefusedAsync("m1", "np-freed"));
    }

    [K8sFact(Binaries = ["kube-apiserver"])]
    public async Task SecretDeleted_NodeStillExists_AnotherMachineTakesTheName()
    {
        await JoinAsync("m1", "np-secret");
        await CreateNodeAsync("np-secret");
        Assert.Equal(Taken("np-secret", "node np-secret exists"), await RefusedAsync("m2", "np-secret"));

        await DeleteAsync("/api/v1/namespaces/kube-system/secrets/np-secret.node-password.coracle");
        await JoinAsync("m2", "np-secret");

        Assert.True(NodePasswords.Matches(PasswordOf("m2"), StoredHash(await SecretAsync("np-secret"))));
    }

    [K8sFact(Binaries = ["kube-apiserver"])]
    public async Task KubeApiServerDown_ThePasswordVerifiedBeforeIsAcceptedFromTheLocalCache()
    {
        await JoinAsync("m1", "np-cache");
        var cacheFile = NodePasswords.CacheFileFor(Server.DataDir);
        var cache = JsonNode.Parse(await File.ReadAllTextAsync(cacheFile))!;
        Assert.Equal(StoredHash(await SecretAsync("np-cache")), ObjectRef.Text(cache["np-cache"]));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(cacheFile));

        // Another join API with that cache and no kube-apiserver (nothing listens on its port).
        await using var offline = await JoinServerHost.StartAsync(_dir.Combine("server-offline"), FreePorts.Next(),
            (config, time) => new NodePasswords(() => new KubeApi(new Uri($"https://127.0.0.1:{config.HttpsListenPort}"), kube.CaFile, kube.CertFile, kube.KeyFile),
                cacheFile, NullLogger.Instance, time));
        var m1 = TestConfig.Load("agent", _dir.Combine("m1"), (Settings.Server, offline.Url), (Settings.Token, offline.ServerToken.ToString()),
            (Settings.NodeName, "np-cache"), (Settings.NodeIp, "127.0.0.1"));

        var identity = await AgentJoin.JoinAsync(m1, NullLogger.Instance, CancellationToken.None);

        Assert.Equal("srv", identity.Cluster.ServerNodeName);
    }

    /// <summary>A server's own check (<see cref="ServerNodePassword"/>) for <paramref name="node"/> from the machine <paramref name="machine"/>, run in the background; its reports are collected.</summary>
    private (ServerNodePassword Check, List<(string Detail, bool Degraded)> Reports, Task Run) StartServerCheck(string machine, string node, TimeProvider time, CancellationToken stop)
    {
        var reports = new List<(string, bool)>();
        var check = new ServerNodePassword(new NodePasswords(kube.Api, NodePasswords.CacheFileFor(_dir.Combine(machine)), NullLogger.Instance), _dir.Combine(machine), node, NullLogger.Instance, time);
        var run = check.RunAsync((detail, degraded) => { lock (reports) { reports.Add((detail, degraded)); } }, stop);
        return (check, reports, run);
    }

    private static async Task UntilAsync(Func<bool> condition, string what)
    {
        for (var deadline = DateTime.UtcNow.AddSeconds(60); !condition(); await Task.Delay(100))
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for {what}");
        }
    }

    private static (string Detail, bool Degraded) Last(List<(string Detail, bool Degraded)> reports)
    {
        lock (reports)
        {
            return reports.Count == 0 ? ("", false) : reports[^1];
        }
    }

    [K8sFact(Binaries = ["kube-apiserver"])]
    public async Task ServerOwnPassword_FirstStart_HoldsTheServersNameAndAnAgentClaimingItIsRefused()
    {
        using var stop = new CancellationTokenSource();
        var (check, reports, run) = StartServerCheck("srv-a", "np-server", TimeProvider.System, stop.Token);
        await UntilAsync(() => check.Decided, "the server's own node password check");

        Assert.Equal(("node np-server is held with this server's password (Secret kube-system/np-server.node-password.coracle)", false), Last(reports));
        Assert.True(NodePasswords.Matches(PasswordOf("srv-a"), StoredHash(await SecretAsync("np-server"))));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(AgentJoin.NodePasswordFile(_dir.Combine("srv-a"))));
        await CreateNodeAsync("np-server"); // the server's kubelet registers

        // An agent (with the agent token) claiming the server's name is refused: it gets no kubelet certificate of the server.
        Assert.Equal(Taken("np-server", "node np-server exists"), await RefusedAsync("intruder", "np-server"));

        // The server restarted: the same password file, the same Secret.
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run);
        using var again = new CancellationTokenSource();
        var (second, secondReports, secondRun) = StartServerCheck("srv-a", "np-server", TimeProvider.System, again.Token);
        await UntilAsync(() => second.Decided, "the restarted server's check");
        Assert.False(Last(secondReports).Degraded, Last(secondReports).Detail);
        await again.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => secondRun);
    }

    [K8sFact(Binaries = ["kube-apiserver"])]
    public async Task ServerOwnPassword_NameHeldByAnAgent_DegradedNamingTheSecretAndTheFix_ThenTakenOnceTheSecretIsDeleted()
    {
        await JoinAsync("m1", "np-srv-held");
        await CreateNodeAsync("np-srv-held");
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        using var stop = new CancellationTokenSource();

        var (check, reports, run) = StartServerCheck("srv-b", "np-srv-held", time, stop.Token);
        await UntilAsync(() => check.Decided, "the server's own node password check");

        var file = AgentJoin.NodePasswordFile(_dir.Combine("srv-b"));
        Assert.Equal(("node name np-srv-held is held by another machine: Secret kube-system/np-srv-held.node-password.coracle holds another node password than this server's "
            + $"({file}); if that machine is retired, 'kubectl -n kube-system delete secret np-srv-held.node-password.coracle' and this server takes the name within 1 minute, "
            + "otherwise give this server another --node-name", true), Last(reports));
        Assert.True(NodePasswords.Matches(PasswordOf("m1"), StoredHash(await SecretAsync("np-srv-held"))), "the agent's password is left as it was");

        await DeleteAsync("/api/v1/namespaces/kube-system/secrets/np-srv-held.node-password.coracle");
        await UntilAsync(() => { time.Advance(ServerNodePassword.ConflictInterval); return !Last(reports).Degraded; }, "the server taking its name after the Secret was deleted");

        Assert.True(NodePasswords.Matches(PasswordOf("srv-b"), StoredHash(await SecretAsync("np-srv-held"))));
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run);
    }
}
