using Coracle.Core.Identity;
using Coracle.Core.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace Coracle.Core.Tests.Identity;

public sealed class TokenTests : IDisposable
{
    private const string Hash = "f27babe72648d3818a133faaeb6b7f9d5a06c4254596f1b00fc858d8aab805e2";
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Parse_ServerToken_SplitsHashAndSecret()
    {
        var token = ClusterToken.Parse($"K10{Hash}::server:s3cret\n");

        Assert.Equal(Hash, token.CaHash);
        Assert.Equal("server:s3cret", token.Credential);
        Assert.Equal("s3cret", token.Password);
        Assert.Equal($"K10{Hash}::server:s3cret", token.ToString());
    }

    [Fact]
    public void Parse_JoinToken_PasswordIsIdDotSecret()
    {
        Assert.Equal("abc123.0123456789abcdef", ClusterToken.Parse($"K10{Hash}::abc123.0123456789abcdef").Password);
    }

    [Theory]
    [InlineData("justasecret", "the token is not in the secure K10<ca-hash>::<credential> form; copy it from 'coracle token show' or 'coracle token create' on the server")]
    [InlineData("K10abc::server:x", "the token's CA hash is not 64 hex digits (sha256); copy the whole token from the server")]
    [InlineData("K10f27babe72648d3818a133faaeb6b7f9d5a06c4254596f1b00fc858d8aab805e2::", "the token has no credential after '::'; copy the whole token from the server")]
    public void Parse_Malformed_ThrowsWithTheFix(string text, string message)
    {
        Assert.Equal(message, Assert.Throws<TokenFormatException>(() => ClusterToken.Parse(text)).Message);
    }

    [Fact]
    public void ServerTokenEnsure_FirstStart_HashesTheCaAndStoresTheToken0600()
    {
        var ca = Path.Combine(_dir.Path, "ca.crt");
        File.WriteAllText(ca, "-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----\n");

        var token = ServerToken.Ensure(_dir.Path, ca, "");
        var again = ServerToken.Ensure(_dir.Path, ca, "");

        var expected = Run.OpenSsl("dgst", "-sha256", "-r", ca).Split(' ')[0];
        Assert.Equal(expected, token.CaHash);
        Assert.Equal(token, again);
        Assert.Equal(48, token.Password.Length);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(ServerToken.PathFor(_dir.Path)));
        Assert.Equal(token + "\n", File.ReadAllText(ServerToken.PathFor(_dir.Path)));
    }

    [Fact]
    public void ServerTokenEnsure_ConfiguredSecret_IsUsed()
    {
        var ca = Path.Combine(_dir.Path, "ca.crt");
        File.WriteAllText(ca, "x");

        Assert.Equal("my-secret", ServerToken.Ensure(_dir.Path, ca, "my-secret").Password);
    }

    [Fact]
    public void JoinTokenCheck_BeforeAndAfterTtl_ValidThenExpired()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2030, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var store = new JoinTokenStore(_dir.Path, time);
        var (record, credential) = store.Create(TimeSpan.FromHours(24), "gateway batch");

        Assert.Equal(TokenCheck.Valid, store.Check(credential, out _));
        time.Advance(TimeSpan.FromHours(23) + TimeSpan.FromMinutes(59));
        Assert.Equal(TokenCheck.Valid, store.Check(credential, out _));
        time.Advance(TimeSpan.FromMinutes(1));
        Assert.Equal(TokenCheck.Expired, store.Check(credential, out var expired));
        Assert.Equal(record.Id, expired!.Id);
        Assert.Equal("expired 2030-01-02 00:00:00Z", JoinTokenStore.FormatExpiry(record, time.GetUtcNow()));
    }

    [Fact]
    public void JoinTokenCheck_WrongSecretOrUnknownId_Invalid()
    {
        var store = new JoinTokenStore(_dir.Path);
        var (record, credential) = store.Create(null, "");

        Assert.Equal(TokenCheck.Invalid, store.Check(record.Id + ".wrongsecret00000", out _));
        Assert.Equal(TokenCheck.Invalid, store.Check("zzzzzz." + credential.Split('.')[1], out _));
        Assert.Equal(TokenCheck.Invalid, store.Check("nodot", out _));
        Assert.Equal(TokenCheck.Valid, store.Check(credential, out _));
    }

    [Fact]
    public void JoinTokenStore_File_HoldsOnlyHashesAndIsPrivate()
    {
        var store = new JoinTokenStore(_dir.Path);
        var (_, credential) = store.Create(TimeSpan.FromHours(1), "d");

        var text = File.ReadAllText(store.FilePath);
        Assert.DoesNotContain(credential.Split('.')[1], text, StringComparison.Ordinal);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(store.FilePath));
    }

    [Fact]
    public void JoinTokenDelete_Existing_RevokesIt()
    {
        var store = new JoinTokenStore(_dir.Path);
        var (record, credential) = store.Create(null, "");

        Assert.True(store.Delete(record.Id));
        Assert.False(store.Delete(record.Id));
        Assert.Equal(TokenCheck.Invalid, store.Check(credential, out _));
        Assert.Empty(store.List());
    }

    [Fact]
    public void SecretEquals_ComparesExactly()
    {
        Assert.True(ClusterToken.SecretEquals("abc", "abc"));
        Assert.False(ClusterToken.SecretEquals("abc", "abd"));
        Assert.False(ClusterToken.SecretEquals("abc", "abcd"));
    }
}
