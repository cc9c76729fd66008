using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Coracle.Core.Configuration;
using Coracle.Core.Hosting;
using Coracle.Core.Identity;
using Coracle.Core.Logging;
using Coracle.Core.Secrets;
using Microsoft.Extensions.Logging;

namespace Coracle.Core.Join;

/// <summary>
/// What a server that joined another keeps in <c>DATA/server/joined.json</c> (0600) besides the CAs, keys and token it
/// wrote: where it joined, when, the cluster's datastore and what that datastore's plugin returned for it. A restart reads
/// it and needs no other server (K3s behaviour).
/// </summary>
internal sealed record JoinedCluster(
    [property: JsonPropertyName("server")] string Server,
    [property: JsonPropertyName("serverNodeName")] string ServerNodeName,
    [property: JsonPropertyName("joinedAt")] DateTimeOffset JoinedAt,
    [property: JsonPropertyName("datastore")] string Datastore,
    [property: JsonPropertyName("datastoreJoin")] Dictionary<string, string> DatastoreJoin);

/// <summary>
/// <c>coracle server --server https://SERVER:9345 --token T</c>: the joining server's recipe, one step after the data dir
/// lock. Checks the server's CA against the token's hash before trusting anything, asks <c>POST /v1/server-join</c> with the
/// server token (the serving server checks the datastore and the settings that must match), and only then writes the
/// cluster CAs with their keys, the service-account key, the secrets encryption configuration, the token and
/// <c>joined.json</c>. Its own leaf certificates are then made locally, exactly as on a first server. Any refusal is a
/// configuration error naming the flag (exit 2) and leaves the data dir as it was.
/// </summary>
internal static class ServerJoin
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    public static string StateFile(string dataDir) => Path.Combine(dataDir, "server", "joined.json");

    /// <summary>The settings every server of a cluster must share, by flag, as plain text (compared by the serving server).</summary>
    public static IReadOnlyDictionary<string, string> MustMatch(CoracleConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var values = new SortedDictionary<string, string>(StringComparer.Ordinal)
        {
            [Settings.ClusterCidr.Flag] = config.ClusterCidr.ToString(),
            [Settings.ServiceCidr.Flag] = config.ServiceCidr.ToString(),
            [Settings.ClusterDns.Flag] = config.ClusterDns.ToString(),
            [Settings.ClusterDomain.Flag] = config.ClusterDomain,
            [Settings.SecretsEncryption.Flag] = config.SecretsEncryption ? "true" : "false",
        };
        foreach (var (setting, value) in config.Sources.Where(kv => kv.Key.ClusterWide))
        {
            values[setting.Flag] = Setting.PlainText(value.Value);
        }

        return values;
    }

    /// <summary>The stored join, or null on a server that never joined another.</summary>
    public static JoinedCluster? Read(string dataDir)
    {
        var file = StateFile(dataDir);
        if (!File.Exists(file))
        {
            return null;
        }

        try
        {
            return JsonSerializer.Deserialize<JoinedCluster>(File.ReadAllText(file), Json)
                ?? throw new JoinException($"{file} is empty; restore it, or remove DATA/server and join again");
        }
        catch (JsonException ex)
        {
            throw new JoinException($"{file} is not a valid join record ({ex.Message}); restore it, or remove DATA/server and join again");
        }
    }

    /// <summary>
    /// The join of this server: the stored one when it joined before (no network), else a new one when
    /// <c>--server</c> is given, else null (a first server).
    /// </summary>
    public static async Task<JoinedCluster?> EnsureAsync(CoracleConfig config, string datastore, IReadOnlyList<string> peerUrls, ILogger log, CancellationToken ct, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(log);
        if (Read(config.DataDir) is { } stored)
        {
            log.JoinedEarlier(stored.Server, stored.JoinedAt, StateFile(config.DataDir));
            return stored;
        }

        return config.ServerUrl.Length == 0 ? null : await JoinAsync(config, datastore, peerUrls, log, time ?? TimeProvider.System, ct);
    }

    private static async Task<JoinedCluster> JoinAsync(CoracleConfig config, string datastore, IReadOnlyList<string> peerUrls, ILogger log, TimeProvider time, CancellationToken ct)
    {
        var server = new Uri(config.ServerUrl.TrimEnd('/') + "/");
        log.JoiningCluster(server.ToString(), config.NodeName);

        // 1. The token must be the full server token: its CA hash is what makes the answer trustworthy.
        ClusterToken token;
        try
        {
            token = ClusterToken.Parse(config.Token);
        }
        catch (TokenFormatException ex)
        {
            throw new ConfigException("--token", $"{ex.Message} (a server joins with the server token, K10...::server:SECRET)");
        }

        // 2. The CA, fetched untrusted, must hash to the token's.
        var ca = await AgentJoin.FetchCaAsync(server, log, time, ct);
        var actual = ClusterToken.HashCa(ca);
        if (!CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(actual), Encoding.ASCII.GetBytes(token.CaHash)))
        {
            throw new ConfigException("--token", $"the server's CA does not match the token: {server}cacerts hashes to {actual}, the token expects {token.CaHash}; check --server and --token (nothing was written)");
        }

        // 3. Ask to join, trusting only that CA; the serving server checks the datastore and the shared settings.
        using var client = AgentJoin.TrustedClient(ca, token);
        var request = new ServerJoinRequest
        {
            NodeName = config.NodeName,
            Datastore = datastore,
            PeerUrls = peerUrls,
            Settings = new Dictionary<string, string>(MustMatch(config), StringComparer.Ordinal),
        };
        var answer = await AgentJoin.RetryAsync(server, log, time, async () =>
        {
            using var response = await client.PostAsJsonAsync(new Uri(server, "v1/server-join"), request, Json, ct);
            return await ReadAnswerAsync(response, ct);
        }, ct);

        // 4. The answer's server CA must be the one the token pins; every CA must carry a key that matches it.
        if (!answer.Cas.TryGetValue(ClusterCertificates.ServerCa, out var serverCa) || ClusterToken.HashCa(Encoding.ASCII.GetBytes(serverCa.Cert)) != token.CaHash)
        {
            throw new JoinException($"{server}v1/server-join answered with a server CA that is not the one the token pins; nothing was written");
        }

        foreach (var name in ClusterCertificates.CaNames)
        {
            if (!answer.Cas.TryGetValue(name, out var pair))
            {
                throw new JoinException($"{server}v1/server-join answered without the {name} CA; nothing was written (is the server older than this one?)");
            }

            try
            {
                using var parsed = System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPem(pair.Cert, pair.Key);
            }
            catch (Exception ex) when (ex is CryptographicException or ArgumentException)
            {
                throw new JoinException($"{server}v1/server-join answered with a {name} CA that cannot be used ({ex.Message}); nothing was written");
            }
        }

        // 5. A data dir that already holds another cluster's CA is never overwritten.
        var tls = ClusterCertificates.TlsDir(config.DataDir);
        var existing = Path.Combine(tls, ClusterCertificates.ServerCa + ".crt");
        if (File.Exists(existing) && File.ReadAllText(existing) != serverCa.Cert)
        {
            throw new JoinException($"{existing} is another cluster's CA: this data dir belonged to a server of its own cluster; to join {server} start with another --data-dir (or remove {Path.Combine(config.DataDir, "server")}, which loses that cluster)");
        }

        // 6. Write: CAs (key first), the service-account key, the encryption configuration, the token, then the join record.
        FileUtil.PrivateDirectory(tls);
        foreach (var name in ClusterCertificates.CaNames)
        {
            FileUtil.WriteAtomic(Path.Combine(tls, name + ".key"), answer.Cas[name].Key, ClusterCertificates.KeyMode);
            FileUtil.WriteAtomic(Path.Combine(tls, name + ".crt"), answer.Cas[name].Cert, ClusterCertificates.CertMode);
        }

        FileUtil.WriteAtomic(Path.Combine(tls, "service.key"), answer.ServiceAccountKey, ClusterCertificates.KeyMode);
        if (answer.EncryptionConfig is { } encryption)
        {
            FileUtil.PrivateDirectory(ServerIdentity.CredDir(config.DataDir));
            FileUtil.WriteAtomic(EncryptionConfig.PathFor(config.DataDir), encryption, ClusterCertificates.KeyMode);
        }

        FileUtil.WriteAtomic(ServerToken.PathFor(config.DataDir), answer.Token.Trim() + "\n", ClusterCertificates.KeyMode);
        var joined = new JoinedCluster(server.ToString().TrimEnd('/'), answer.Cluster.ServerNodeName, time.GetUtcNow(), answer.Datastore,
            new Dictionary<string, string>(answer.DatastoreJoin, StringComparer.Ordinal));
        FileUtil.WriteAtomic(StateFile(config.DataDir), JsonSerializer.Serialize(joined, Json) + "\n", ClusterCertificates.KeyMode);
        log.JoinedCluster(joined.Server, joined.ServerNodeName, joined.Datastore, answer.EncryptionConfig is null ? "" : ", secrets encryption keys", tls);
        return joined;
    }

    /// <summary>The answer, or the refusal as the exception that says which flag to change.</summary>
    private static async Task<ServerJoinResponse> ReadAnswerAsync(HttpResponseMessage response, CancellationToken ct)
    {
        if (response.IsSuccessStatusCode)
        {
            return await response.Content.ReadFromJsonAsync<ServerJoinResponse>(Json, ct)
                ?? throw new JoinException("v1/server-join answered with an empty body");
        }

        var body = await response.Content.ReadAsStringAsync(ct);
        string detail;
        IReadOnlyList<SettingMismatch> mismatches = [];
        try
        {
            var refusal = JsonSerializer.Deserialize<ServerJoinRefusal>(body, Json);
            detail = refusal?.Error ?? "";
            mismatches = refusal?.Mismatches ?? [];
        }
        catch (JsonException)
        {
            detail = body.Length > 200 ? body[..200] : body;
        }

        throw (int)response.StatusCode switch
        {
            401 => new ConfigException("--token", $"the server rejected the token: {detail}; a server joins with the server token ('coracle token show' on a server of the cluster); nothing was written"),
            403 => new ConfigException("--token", $"the server refused this server: {detail}; nothing was written"),
            409 when mismatches.Count > 0 => new ConfigException(mismatches.Select(m => new ConfigError("--" + m.Flag, m.Message + " (nothing was written)")).ToList()),
            404 => new JoinException($"{response.RequestMessage?.RequestUri} answered 404: the server does not take servers (a Coracle older than this one?); upgrade it"),
            503 => new JoinNotReadyException(detail.Length > 0 ? detail : "v1/server-join answered 503"),
            _ => new JoinException($"v1/server-join failed with {(int)response.StatusCode}: {detail}"),
        };
    }
}
