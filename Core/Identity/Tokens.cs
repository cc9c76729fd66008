using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Coracle.Core.Hosting;

namespace Coracle.Core.Identity;

/// <summary>A token that cannot be parsed; the message says which form is expected.</summary>
internal sealed class TokenFormatException(string message) : Exception(message);

/// <summary>
/// A token in K3s's secure form: <c>K10&lt;sha256 hex of the server CA bundle&gt;::&lt;credential&gt;</c>. The credential is
/// <c>server:&lt;secret&gt;</c> for the server token or <c>&lt;id&gt;.&lt;secret&gt;</c> for a join token.
/// </summary>
internal sealed record ClusterToken(string CaHash, string Credential)
{
    public const string Prefix = "K10";

    public override string ToString() => $"{Prefix}{CaHash}::{Credential}";

    /// <summary>The password sent with HTTP basic auth (user <c>node</c>) or as a bearer token.</summary>
    public string Password => Credential.StartsWith("server:", StringComparison.Ordinal) ? Credential["server:".Length..] : Credential;

    public static ClusterToken Parse(string text)
    {
        text = text.Trim();
        if (!text.StartsWith(Prefix, StringComparison.Ordinal) || text.IndexOf("::", StringComparison.Ordinal) is var sep && sep < 0)
        {
            throw new TokenFormatException("the token is not in the secure K10<ca-hash>::<credential> form; copy it from 'coracle token show' or 'coracle token create' on the server");
        }

        var hash = text[Prefix.Length..sep];
        var credential = text[(sep + 2)..];
        if (hash.Length != 64 || !hash.All(char.IsAsciiHexDigit))
        {
            throw new TokenFormatException("the token's CA hash is not 64 hex digits (sha256); copy the whole token from the server");
        }

        if (credential.Length == 0)
        {
            throw new TokenFormatException("the token has no credential after '::'; copy the whole token from the server");
        }

        return new ClusterToken(hash.ToLowerInvariant(), credential);
    }

    /// <summary>sha256 hex of the CA bundle exactly as <c>/cacerts</c> serves it.</summary>
    public static string HashCa(byte[] caBundle) => Convert.ToHexStringLower(SHA256.HashData(caBundle));

    /// <summary>Constant-time comparison of two secrets through their hashes (equal length, no early exit).</summary>
    public static bool SecretEquals(string candidate, string expected) =>
        CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(candidate)), SHA256.HashData(Encoding.UTF8.GetBytes(expected)));

    public static string NewSecret(int bytes = 24) => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(bytes));
}

/// <summary>The server token at <c>DATA/server/token</c> (mode 0600).</summary>
internal static class ServerToken
{
    public static string PathFor(string dataDir) => Path.Combine(dataDir, "server", "token");

    /// <summary>
    /// Reads the stored token or creates it from <paramref name="configured"/> (<c>--token</c>: a bare secret or a full
    /// K10 token) or a random secret. The CA hash always reflects the current server CA.
    /// </summary>
    public static ClusterToken Ensure(string dataDir, string caFile, string configured)
    {
        var hash = ClusterToken.HashCa(File.ReadAllBytes(caFile));
        var path = PathFor(dataDir);
        string secret;
        if (configured.Length > 0)
        {
            secret = configured.StartsWith(ClusterToken.Prefix, StringComparison.Ordinal) ? ClusterToken.Parse(configured).Password : configured;
            if (configured.StartsWith(ClusterToken.Prefix, StringComparison.Ordinal) && ClusterToken.Parse(configured).CaHash != hash)
            {
                throw new TokenFormatException($"--token carries CA hash {ClusterToken.Parse(configured).CaHash[..12]}..., but this server's CA ({caFile}) hashes to {hash[..12]}...; give the bare secret or the matching token");
            }
        }
        else if (File.Exists(path))
        {
            secret = Read(path).Password;
        }
        else
        {
            secret = ClusterToken.NewSecret();
        }

        var token = new ClusterToken(hash, "server:" + secret);
        if (!File.Exists(path) || File.ReadAllText(path).Trim() != token.ToString())
        {
            FileUtil.WriteAtomic(path, token + "\n", ClusterCertificates.KeyMode);
        }

        return token;
    }

    public static ClusterToken Read(string path)
    {
        try
        {
            return ClusterToken.Parse(File.ReadAllText(path));
        }
        catch (TokenFormatException ex)
        {
            throw new TokenFormatException($"{path}: {ex.Message}");
        }
    }
}

/// <summary>A stored join token: only the secret's sha256 is kept.</summary>
internal sealed record JoinTokenRecord(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("secretSha256")] string SecretSha256,
    [property: JsonPropertyName("description")] string Description,
    [property: JsonPropertyName("created")] DateTimeOffset Created,
    [property: JsonPropertyName("expires")] DateTimeOffset? Expires)
{
    public bool IsExpired(DateTimeOffset now) => Expires is { } e && e <= now;
}

/// <summary>Outcome of checking a presented credential.</summary>
internal enum TokenCheck
{
    Valid,
    Invalid,
    Expired,
}

/// <summary>
/// Join tokens (<c>coracle token create</c>) in <c>DATA/server/join-tokens.json</c> (mode 0600). The file holds ids,
/// descriptions, expiry and sha256 of each secret; the secret is shown once, at creation.
/// </summary>
internal sealed class JoinTokenStore
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };
    private readonly TimeProvider _time;
    private readonly object _gate = new();

    public JoinTokenStore(string dataDir, TimeProvider? time = null)
    {
        FilePath = Path.Combine(dataDir, "server", "join-tokens.json");
        _time = time ?? TimeProvider.System;
    }

    public string FilePath { get; }

    public IReadOnlyList<JoinTokenRecord> List()
    {
        lock (_gate)
        {
            if (!File.Exists(FilePath))
            {
                return [];
            }

            try
            {
                return JsonSerializer.Deserialize<List<JoinTokenRecord>>(File.ReadAllText(FilePath), Json) ?? [];
            }
            catch (JsonException ex)
            {
                throw new TokenFormatException($"{FilePath} is not a valid token list ({ex.Message}); restore it or delete it (which revokes every join token)");
            }
        }
    }

    /// <summary>Creates a token; returns its record and the secret credential <c>id.secret</c>.</summary>
    public (JoinTokenRecord Record, string Credential) Create(TimeSpan? ttl, string description)
    {
        lock (_gate)
        {
            var list = List().ToList();
            const string alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
            var id = RandomNumberGenerator.GetString(alphabet, 6);
            var secret = RandomNumberGenerator.GetString(alphabet, 16);
            var now = _time.GetUtcNow();
            var record = new JoinTokenRecord(id, Hash(secret), description, now, ttl is { } t && t > TimeSpan.Zero ? now + t : null);
            list.Add(record);
            Save(list);
            return (record, $"{id}.{secret}");
        }
    }

    public bool Delete(string id)
    {
        lock (_gate)
        {
            var list = List().ToList();
            var removed = list.RemoveAll(r => r.Id == id) > 0;
            if (removed)
            {
                Save(list);
            }

            return removed;
        }
    }

    /// <summary>Checks an <c>id.secret</c> credential in constant time. Expired is reported only when the secret matches.</summary>
    public TokenCheck Check(string credential, out JoinTokenRecord? record)
    {
        record = null;
        var dot = credential.IndexOf('.', StringComparison.Ordinal);
        if (dot <= 0)
        {
            return TokenCheck.Invalid;
        }

        var id = credential[..dot];
        var candidate = Hash(credential[(dot + 1)..]);
        var match = List().FirstOrDefault(r => r.Id == id);
        var expected = match?.SecretSha256 ?? new string('0', 64);
        var equal = CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(candidate), Encoding.ASCII.GetBytes(expected));
        if (match is null || !equal)
        {
            return TokenCheck.Invalid;
        }

        record = match;
        return match.IsExpired(_time.GetUtcNow()) ? TokenCheck.Expired : TokenCheck.Valid;
    }

    private static string Hash(string secret) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(secret)));

    private void Save(List<JoinTokenRecord> list) =>
        FileUtil.WriteAtomic(FilePath, JsonSerializer.Serialize(list, Json) + "\n", ClusterCertificates.KeyMode);

    public static string FormatExpiry(JoinTokenRecord record, DateTimeOffset now) => record.Expires switch
    {
        null => "never",
        { } e when e <= now => $"expired {e.ToString("u", CultureInfo.InvariantCulture)}",
        { } e => e.ToString("u", CultureInfo.InvariantCulture),
    };
}
