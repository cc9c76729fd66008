using Coracle.Core.Join;
using Microsoft.Extensions.Logging.Abstractions;

namespace Coracle.Core.Tests.Join;

/// <summary>
/// <see cref="NodePasswords"/> without kube-apiserver: the hash format, and a server that runs none, where the local
/// file is the only store. (With kube-apiserver: <see cref="NodePasswordApiServerTests"/>; with one that is down:
/// <see cref="JoinServerTests"/>.)
/// </summary>
public sealed class NodePasswordsTests : IDisposable
{
    private readonly TempDir _dir = new("crt-npw");

    public void Dispose() => _dir.Dispose();

    private NodePasswords FileOnly() => new(() => null, _dir.Combine("node-passwords.json"), NullLogger.Instance);

    [Fact]
    public void Matches_HashOfThePassword_TrueOnlyForThatPassword()
    {
        var stored = NodePasswords.Hash("secret-1");

        Assert.True(NodePasswords.Matches("secret-1", stored));
        Assert.False(NodePasswords.Matches("secret-2", stored));
        Assert.False(NodePasswords.Matches("secret-1", "garbage"));
        Assert.False(NodePasswords.Matches("secret-1", "pbkdf2-sha256$10000$!!$!!"));
        Assert.NotEqual(stored, NodePasswords.Hash("secret-1"));
        Assert.StartsWith("pbkdf2-sha256$10000$", stored, StringComparison.Ordinal);
    }

    [Fact]
    public void SecretName_NodeName_K3sFormWithCoracleSuffix()
    {
        Assert.Equal("agent-1.node-password.coracle", NodePasswords.SecretName("agent-1"));
        Assert.Equal(231, NodePasswords.MaxNodeName);
    }

    [Fact]
    public async Task CheckAsync_NoKubeApiServer_FirstJoinStoresInTheFileAndTheSamePasswordIsAccepted()
    {
        var passwords = FileOnly();

        var first = await passwords.CheckAsync("agent-1", "pw-1", CancellationToken.None);
        var again = await passwords.CheckAsync("agent-1", "pw-1", CancellationToken.None);

        Assert.Equal(NodePasswordVerdict.Accepted, first.Verdict);
        Assert.Equal(NodePasswordVerdict.Accepted, again.Verdict);
        var file = _dir.Combine("node-passwords.json");
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
        Assert.DoesNotContain("pw-1", await File.ReadAllTextAsync(file), StringComparison.Ordinal);
    }

    [Fact]
    public async Task CheckAsync_NoKubeApiServerAnotherPassword_ConflictNamingTheFileAsTheFix()
    {
        var passwords = FileOnly();
        await passwords.CheckAsync("agent-1", "pw-1", CancellationToken.None);

        var other = await passwords.CheckAsync("agent-1", "pw-2", CancellationToken.None);

        var file = _dir.Combine("node-passwords.json");
        Assert.Equal(NodePasswordVerdict.Conflict, other.Verdict);
        Assert.Equal($"node name agent-1 is taken: the node password stored for it in {file} differs from this agent's and this server runs no kube-apiserver, so its local file is the only store; "
            + $"if agent-1 is this machine reinstalled or a retired node, free the name by removing agent-1 from that file on the server and retry, otherwise give this agent another --node-name", other.Message);
    }
}
