using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Coracle.Core.Configuration;
using Coracle.Core.Identity;
using Coracle.Core.Join;
using Coracle.Core.Tests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Coracle.Core.Tests.Join;

/// <summary>
/// <see cref="AgentJoin.JoinAsync"/> against the real join API of <see cref="JoinServerFixture"/> (its kube-apiserver
/// down, its password cache knowing one node): the pinned CA, TLS with a server that is not the pinned one, and the
/// agent's node password file.
/// </summary>
public sealed class AgentJoinTests(JoinServerFixture server) : IClassFixture<JoinServerFixture>, IDisposable
{
    private static readonly TimeSpan HangGuard = TimeSpan.FromSeconds(60);
    private readonly TempDir _agent = new("crt-agent");

    public void Dispose() => _agent.Dispose();

    private CoracleConfig Agent(string url, string token, string node) =>
        TestConfig.Load("agent", _agent.Path, (Settings.Server, url), (Settings.Token, token), (Settings.NodeName, node), (Settings.NodeIp, "127.0.0.1"));

    private string Token => server.ServerToken.ToString();

    [Fact]
    public async Task JoinAsync_TokenPinsAnotherCa_RefusesNamingBothHashes()
    {
        var pinned = new string('a', 64);
        var actual = ClusterToken.HashCa(await File.ReadAllBytesAsync(server.Certificates.CertFile(ClusterCertificates.ServerCa)));
        var config = Agent(server.Url, $"K10{pinned}::server:{server.ServerToken.Password}", "agent-x");

        var error = await Assert.ThrowsAsync<JoinException>(() => AgentJoin.JoinAsync(config, NullLogger.Instance, CancellationToken.None));

        Assert.Equal($"the server's CA does not match the token: {server.Url}/cacerts hashes to {actual}, the token expects {pinned}; check --server and --token", error.Message);
        Assert.False(File.Exists(AgentJoin.NodePasswordFile(_agent.Path)), "nothing is written before the server is trusted");
    }

    [Fact]
    public async Task JoinAsync_ServerRelaysTheCaButHasAnotherCertificate_RefusesTls()
    {
        // A man in the middle that serves the real /cacerts (so the hash matches the token) with a TLS certificate of its own.
        var caBytes = await File.ReadAllBytesAsync(server.Certificates.CertFile(ClusterCertificates.ServerCa));
        var port = FreePorts.Next();
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=coracle-supervisor", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        using var ownCert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, port, listen => listen.UseHttps(ownCert)));
        await using var mitm = builder.Build();
        mitm.MapGet("/cacerts", () => Results.Bytes(caBytes, "application/x-pem-file"));
        mitm.MapFallback(() => Results.Text("{}", "application/json"));
        await mitm.StartAsync();
        var url = $"https://127.0.0.1:{port}";

        var error = await Assert.ThrowsAsync<JoinException>(() => AgentJoin.JoinAsync(Agent(url, Token, "agent-x"), NullLogger.Instance, CancellationToken.None));

        Assert.StartsWith($"TLS with {url}/ failed: ", error.Message, StringComparison.Ordinal);
        Assert.EndsWith("; the server's certificate must be issued by the CA the token pins (check --server: is it the server the token is from?) and name this address (--tls-san on the server)", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.Message);
        await mitm.StopAsync();
    }

    [Fact]
    public async Task JoinAsync_KnownNodeWithItsPassword_JoinsAndKeepsThePasswordFile()
    {
        var file = AgentJoin.NodePasswordFile(_agent.Path);
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        await File.WriteAllTextAsync(file, JoinServerFixture.SeededPassword + "\n");

        var identity = await AgentJoin.JoinAsync(Agent(server.Url, Token, JoinServerFixture.SeededNode), NullLogger.Instance, CancellationToken.None);

        Assert.Equal("srv", identity.Cluster.ServerNodeName);
        Assert.True(File.Exists(Path.Combine(identity.Directory, "client-kubelet.crt")));
        Assert.Equal(JoinServerFixture.SeededPassword + "\n", await File.ReadAllTextAsync(file));
    }

    [Fact]
    public async Task JoinAsync_FirstJoinWhileKubeApiServerIsDown_CreatesA0600PasswordAndWaits()
    {
        var lines = new ConcurrentQueue<string>();
        using var loggers = new ListLoggerFactory(lines);
        using var stop = new CancellationTokenSource(HangGuard);
        var join = AgentJoin.JoinAsync(Agent(server.Url, Token, "agent-new"), loggers.CreateLogger("agent"), stop.Token);

        while (!lines.Any(l => l.Contains("cannot check the node password of agent-new now", StringComparison.Ordinal)) && !join.IsCompleted)
        {
            await Task.Delay(50, stop.Token);
        }

        Assert.False(join.IsCompleted, join.Exception?.ToString());
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => join);
        var file = AgentJoin.NodePasswordFile(_agent.Path);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
        Assert.Matches("^[0-9a-f]{32}\n$", await File.ReadAllTextAsync(file));
        Assert.Contains(lines, l => l.Contains($"created this node's password in {file}; the server keeps its hash for node agent-new", StringComparison.Ordinal));
    }

    [Fact]
    public void EnsureNodePassword_EmptyFile_RefusesNamingTheFileAndTheFix()
    {
        var file = AgentJoin.NodePasswordFile(_agent.Path);
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        File.WriteAllText(file, "\n");

        var error = Assert.Throws<JoinException>(() => AgentJoin.EnsureNodePassword(_agent.Path, "agent-7", NullLogger.Instance));

        Assert.Equal($"{file} holds no usable node password (empty); delete it to make a new one, and on the server 'kubectl -n kube-system delete secret agent-7.node-password.coracle'", error.Message);
    }

    [Fact]
    public void EnsureNodePassword_SecondCall_ReturnsTheSamePassword()
    {
        var first = AgentJoin.EnsureNodePassword(_agent.Path, "agent-7", NullLogger.Instance);

        var second = AgentJoin.EnsureNodePassword(_agent.Path, "agent-7", NullLogger.Instance);

        Assert.Equal(first, second);
        Assert.Equal(32, first.Length);
    }
}
