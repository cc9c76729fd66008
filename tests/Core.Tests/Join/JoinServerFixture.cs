using Coracle.Core.Identity;
using Coracle.Core.Join;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Coracle.Core.Tests.Join;

/// <summary>
/// One real <see cref="JoinServer"/> for the join API tests (<see cref="JoinServerHost"/>). Its kube-apiserver is down
/// (nothing listens on its port), so node passwords are decided by the local cache alone, which knows
/// <see cref="SeededNode"/> with <see cref="SeededPassword"/> (a node that joined before). One join token is already
/// expired, one is valid and one was revoked when the tests run.
/// </summary>
public sealed class JoinServerFixture : IAsyncLifetime, IDisposable
{
    /// <summary>The node the password cache knows.</summary>
    public const string SeededNode = "agent-1";

    /// <summary><see cref="SeededNode"/>'s password.</summary>
    public const string SeededPassword = "0123456789abcdef0123456789abcdef";

    private readonly TempDir _temp = new("crt-join");
    private JoinServerHost _host = null!;

    public FakeTimeProvider Time => _host.Time;

    public HttpClient Client => _host.Client;

    public string Url => _host.Url;

    /// <summary>The port kube-apiserver would listen on (nothing does).</summary>
    public int ApiPort => _host.Config.HttpsListenPort;

    internal ClusterCertificates Certificates => _host.Certificates;

    internal ClusterToken ServerToken => _host.ServerToken;

    internal JoinTokenRecord ExpiredRecord { get; private set; } = null!;

    public string ExpiredJoinToken { get; private set; } = "";

    public string ValidJoinToken { get; private set; } = "";

    public string RevokedJoinToken { get; private set; } = "";

    public string DataDir => _temp.Path;

    public async Task InitializeAsync()
    {
        _host = await JoinServerHost.StartAsync(_temp.Path, FreePorts.Next(), (config, time) =>
        {
            var cache = NodePasswords.CacheFileFor(config.DataDir);
            Directory.CreateDirectory(Path.GetDirectoryName(cache)!);
            File.WriteAllText(cache, $$"""{"{{SeededNode}}": "{{NodePasswords.Hash(SeededPassword)}}"}""");
            return NodePasswords.ForServer(config, () => true, NullLogger.Instance, time);
        }, host =>
        {
            (ExpiredRecord, ExpiredJoinToken) = host.JoinTokens.Create(TimeSpan.FromMinutes(1), "expires before the tests run");
            (_, ValidJoinToken) = host.JoinTokens.Create(TimeSpan.FromDays(1), "valid while the tests run");
            var (revoked, credential) = host.JoinTokens.Create(TimeSpan.FromDays(1), "revoked before the tests run");
            RevokedJoinToken = credential;
            host.JoinTokens.Delete(revoked.Id);
        });
    }

    /// <summary>Stops the server (xUnit calls this before <see cref="Dispose"/>).</summary>
    public async Task DisposeAsync() => await _host.DisposeAsync();

    public void Dispose() => _temp.Dispose();
}
