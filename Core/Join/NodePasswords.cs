using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Coracle.Core.Addons;
using Coracle.Core.Hosting;
using Coracle.Core.Kubernetes;
using Coracle.Core.Logging;
using Microsoft.Extensions.Logging;

namespace Coracle.Core.Join;

/// <summary>What the join API answers a node password with.</summary>
internal enum NodePasswordVerdict
{
    /// <summary>The password is the one stored for the name, or the name was free and now holds it.</summary>
    Accepted,

    /// <summary>The name holds another password and is in use: 403, the agent stops.</summary>
    Conflict,

    /// <summary>Cannot be decided now (kube-apiserver not answering, no cached hash that matches): 503, the agent retries.</summary>
    Unavailable,
}

/// <summary>The verdict and, unless accepted, the one-line reason the agent is told.</summary>
internal sealed record NodePasswordCheck(NodePasswordVerdict Verdict, string Message);

/// <summary>
/// K3s's node passwords (<c>pkg/nodepassword</c>): the first join of a node name stores a salted hash of the agent's
/// password in the Secret <c>kube-system/NAME.node-password.coracle</c> (type <c>coracle.dev/node-password</c>); later
/// joins of that name must present the same password. The name is free again when the Secret is deleted, or when no
/// Node of that name exists and the password was stored at least <see cref="RegistrationGrace"/> ago (so deleting the
/// Node frees it, while an agent that has joined but whose kubelet has not registered yet keeps it).
/// <para>
/// Every decision made with kube-apiserver's answer is also kept in a local cache,
/// <c>DATA/server/cred/node-passwords.json</c> (0600, name → hash). While kube-apiserver does not answer (the join API
/// starts first), a join is accepted only when the cache holds a matching hash for the name — the same password was
/// verified against the Secret before — and is answered 503 (retry) otherwise: a password the cache does not know is
/// never accepted without the Secret.
/// </para>
/// <para>
/// A server that runs no kube-apiserver (its binary or its datastore is missing) has no Secrets: there the local file
/// is the only store — the first join of a name stores its hash, a later join with another password is refused, and
/// removing the name from the file frees it.
/// </para>
/// </summary>
internal sealed class NodePasswords
{
    /// <summary>The Secret type.</summary>
    public const string SecretType = "coracle.dev/node-password";

    /// <summary>The Secrets' namespace.</summary>
    public const string Namespace = "kube-system";

    /// <summary>Annotation: when the hash was stored (RFC 3339); the grace period counts from it.</summary>
    public const string StoredAtAnnotation = "coracle.dev/node-password-stored-at";

    /// <summary>How long a name whose Node does not exist stays held after its password was stored: time for the new agent's kubelet to register.</summary>
    public static readonly TimeSpan RegistrationGrace = TimeSpan.FromMinutes(10);

    /// <summary>The longest node name whose Secret name still fits 253 characters.</summary>
    public static readonly int MaxNodeName = 253 - SecretSuffix.Length;

    private const string SecretSuffix = ".node-password.coracle";
    private const int Iterations = 10_000;
    private static readonly JsonSerializerOptions CacheJson = new() { WriteIndented = true };

    private readonly Func<KubeApi?> _api;
    private readonly string _cacheFile;
    private readonly ILogger _log;
    private readonly TimeProvider _time;
    private readonly Lock _cacheLock = new();

    /// <param name="api">Makes a client for one check (fresh, so renewed admin certificates are picked up); null when the server runs no kube-apiserver.</param>
    /// <param name="cacheFile">The local cache (<see cref="CacheFileFor"/>).</param>
    public NodePasswords(Func<KubeApi?> api, string cacheFile, ILogger log, TimeProvider? time = null)
    {
        _api = api;
        _cacheFile = cacheFile;
        _log = log;
        _time = time ?? TimeProvider.System;
    }

    /// <summary>
    /// The server's store: kube-apiserver on <c>https://127.0.0.1:HTTPS_LISTEN_PORT</c> with the admin client
    /// certificate while <paramref name="runsApiServer"/> says this server runs one, the cache under the data dir.
    /// </summary>
    public static NodePasswords ForServer(Configuration.CoracleConfig config, Func<bool> runsApiServer, ILogger log, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(runsApiServer);
        var tls = Identity.ClusterCertificates.TlsDir(config.DataDir);
        var server = new Uri($"https://127.0.0.1:{config.HttpsListenPort}");
        return new NodePasswords(
            () => runsApiServer()
                ? new KubeApi(server, Path.Combine(tls, "server-ca.crt"), Path.Combine(tls, "client-admin.crt"), Path.Combine(tls, "client-admin.key"), TimeSpan.FromSeconds(10))
                : null,
            CacheFileFor(config.DataDir), log, time);
    }

    public static string SecretName(string node) => node + SecretSuffix;

    public static string CacheFileFor(string dataDir) => Path.Combine(dataDir, "server", "cred", "node-passwords.json");

    /// <summary><c>pbkdf2-sha256$ITERATIONS$SALT$HASH</c> (base64), with a random 16-byte salt.</summary>
    public static string Hash(string password)
    {
        var salt = RandomNumberGenerator.GetBytes(16);
        var hash = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password), salt, Iterations, HashAlgorithmName.SHA256, 32);
        return string.Create(CultureInfo.InvariantCulture, $"pbkdf2-sha256${Iterations}${Convert.ToBase64String(salt)}${Convert.ToBase64String(hash)}");
    }

    /// <summary>True when <paramref name="password"/> hashes to <paramref name="stored"/>; compared in constant time. An unreadable hash matches nothing.</summary>
    public static bool Matches(string password, string stored)
    {
        var parts = stored.Split('$');
        if (parts.Length != 4 || parts[0] != "pbkdf2-sha256" || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var iterations)
            || iterations is < 1 or > 10_000_000)
        {
            return false;
        }

        try
        {
            var salt = Convert.FromBase64String(parts[2]);
            var expected = Convert.FromBase64String(parts[3]);
            if (expected.Length == 0)
            {
                return false;
            }

            var actual = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password), salt, iterations, HashAlgorithmName.SHA256, expected.Length);
            return CryptographicOperations.FixedTimeEquals(actual, expected);
        }
        catch (FormatException)
        {
            return false;
        }
    }

    /// <summary>
    /// Checks (and at a first join stores) <paramref name="password"/> for <paramref name="node"/>. Concurrent joins of
    /// one name are safe through kube-apiserver's own concurrency control: a create that finds the Secret made
    /// meanwhile, or a replace whose resourceVersion is stale, decides again from the Secret as it now is.
    /// </summary>
    public async Task<NodePasswordCheck> CheckAsync(string node, string password, CancellationToken cancellationToken)
    {
        try
        {
            using var api = _api();
            return api is null ? CheckWithFileOnly(node, password) : await CheckWithApiAsync(api, node, password, cancellationToken);
        }
        catch (KubeApiUnavailableException ex)
        {
            return CheckWithCache(node, password, ex.Message);
        }
    }

    /// <summary>No kube-apiserver on this server: the local file is the store.</summary>
    private NodePasswordCheck CheckWithFileOnly(string node, string password)
    {
        lock (_cacheLock)
        {
            var cache = ReadCacheFile();
            if (!cache.TryGetValue(node, out var stored))
            {
                Remember(node, Hash(password));
                _log.NodePasswordStored(node, _cacheFile);
                return new NodePasswordCheck(NodePasswordVerdict.Accepted, "");
            }

            if (Matches(password, stored))
            {
                return new NodePasswordCheck(NodePasswordVerdict.Accepted, "");
            }
        }

        const string Why = "this server runs no kube-apiserver, so its local file is the only store";
        _log.NodePasswordConflict(node, Why);
        return new NodePasswordCheck(NodePasswordVerdict.Conflict,
            $"node name {node} is taken: the node password stored for it in {_cacheFile} differs from this agent's and {Why}; "
            + $"if {node} is this machine reinstalled or a retired node, free the name by removing {node} from that file on the server and retry, otherwise give this agent another --node-name");
    }

    private async Task<NodePasswordCheck> CheckWithApiAsync(KubeApi api, string node, string password, CancellationToken cancellationToken)
    {
        var path = $"/api/v1/namespaces/{Namespace}/secrets/{SecretName(node)}";
        for (var attempt = 0; attempt < 3; attempt++)
        {
            var secret = await api.GetAsync(path, cancellationToken);
            if (secret.IsNotFound)
            {
                var hash = Hash(password);
                var created = await api.CreateAsync($"/api/v1/namespaces/{Namespace}/secrets", SecretBody(node, hash, null), cancellationToken);
                if (created.IsConflict)
                {
                    continue; // stored meanwhile by someone else: check against that one
                }

                if (!created.IsSuccess)
                {
                    return CheckWithCache(node, password, $"storing Secret {Namespace}/{SecretName(node)}: {created.Describe()}");
                }

                Remember(node, hash);
                _log.NodePasswordStored(node, $"{Namespace}/{SecretName(node)}");
                return new NodePasswordCheck(NodePasswordVerdict.Accepted, "");
            }

            if (!secret.IsSuccess)
            {
                return CheckWithCache(node, password, $"reading Secret {Namespace}/{SecretName(node)}: {secret.Describe()}");
            }

            var stored = StoredHash(secret.Body);
            if (stored is not null && Matches(password, stored))
            {
                Remember(node, stored);
                return new NodePasswordCheck(NodePasswordVerdict.Accepted, "");
            }

            // Another password. The name is free only when its Node is gone and the password is old enough that the
            // agent holding it would have registered by now.
            var nodeObject = await api.GetAsync($"/api/v1/nodes/{node}", cancellationToken);
            if (nodeObject.IsSuccess)
            {
                return Conflict(node, $"node {node} exists");
            }

            if (!nodeObject.IsNotFound)
            {
                return Unavailable(node, $"reading Node {node}: {nodeObject.Describe()}");
            }

            var storedAt = StoredAt(secret.Body);
            var now = _time.GetUtcNow();
            if (storedAt is { } at && now - at < RegistrationGrace)
            {
                return Conflict(node, $"its password was stored at {at:u}, less than {RegistrationGrace.TotalMinutes:0} minutes ago, by an agent whose node has not registered yet");
            }

            var replacement = Hash(password);
            var replaced = await api.ReplaceAsync(path, SecretBody(node, replacement, ObjectRef.Text(secret.Body?["metadata"]?["resourceVersion"])), cancellationToken);
            if (replaced.IsConflict || replaced.IsNotFound)
            {
                continue; // changed or deleted meanwhile: decide again
            }

            if (!replaced.IsSuccess)
            {
                return Unavailable(node, $"replacing Secret {Namespace}/{SecretName(node)}: {replaced.Describe()}");
            }

            Remember(node, replacement);
            _log.NodePasswordReplaced(node, $"{Namespace}/{SecretName(node)}");
            return new NodePasswordCheck(NodePasswordVerdict.Accepted, "");
        }

        return Unavailable(node, $"Secret {Namespace}/{SecretName(node)} kept changing while it was checked");
    }

    /// <summary>kube-apiserver could not decide: only a cached hash that matches is accepted.</summary>
    private NodePasswordCheck CheckWithCache(string node, string password, string reason)
    {
        var cache = ReadCache();
        if (cache.TryGetValue(node, out var stored) && Matches(password, stored))
        {
            _log.NodePasswordCached(node, reason);
            return new NodePasswordCheck(NodePasswordVerdict.Accepted, "");
        }

        return stored is null
            ? Unavailable(node, $"kube-apiserver cannot tell yet whether node {node} already has another password ({reason})")
            : Unavailable(node, $"node {node}'s password differs from the one this server last accepted and kube-apiserver cannot tell yet whether node {node} still exists ({reason})");
    }

    private NodePasswordCheck Conflict(string node, string why)
    {
        var secret = SecretName(node);
        var message = $"node name {node} is taken: the node password stored in Secret {Namespace}/{secret} differs from this agent's and {why}; "
            + $"if {node} is this machine reinstalled or a retired node, free the name with 'kubectl -n {Namespace} delete secret {secret}' (or 'kubectl delete node {node}') and retry, otherwise give this agent another --node-name";
        _log.NodePasswordConflict(node, why);
        return new NodePasswordCheck(NodePasswordVerdict.Conflict, message);
    }

    private NodePasswordCheck Unavailable(string node, string why)
    {
        _log.NodePasswordUndecided(node, why);
        return new NodePasswordCheck(NodePasswordVerdict.Unavailable, $"cannot check the node password of {node} now: {why}; retry when the server's kube-apiserver is up");
    }

    private JsonObject SecretBody(string node, string hash, string? resourceVersion)
    {
        var metadata = new JsonObject
        {
            ["name"] = SecretName(node),
            ["namespace"] = Namespace,
            ["labels"] = new JsonObject { ["app.kubernetes.io/managed-by"] = "coracle" },
            ["annotations"] = new JsonObject { [StoredAtAnnotation] = _time.GetUtcNow().UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture) },
        };
        if (resourceVersion is not null)
        {
            metadata["resourceVersion"] = resourceVersion;
        }

        return new JsonObject
        {
            ["apiVersion"] = "v1",
            ["kind"] = "Secret",
            ["metadata"] = metadata,
            ["type"] = SecretType,
            ["data"] = new JsonObject { ["hash"] = Convert.ToBase64String(Encoding.UTF8.GetBytes(hash)) },
        };
    }

    private static string? StoredHash(JsonNode? secret)
    {
        try
        {
            return ObjectRef.Text(secret?["data"]?["hash"]) is { } data ? Encoding.UTF8.GetString(Convert.FromBase64String(data)) : null;
        }
        catch (FormatException)
        {
            return null;
        }
    }

    private static DateTimeOffset? StoredAt(JsonNode? secret)
    {
        var text = ObjectRef.Text(secret?["metadata"]?["annotations"]?[StoredAtAnnotation]) ?? ObjectRef.Text(secret?["metadata"]?["creationTimestamp"]);
        return DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var at) ? at : null;
    }

    private Dictionary<string, string> ReadCache()
    {
        lock (_cacheLock)
        {
            return ReadCacheFile();
        }
    }

    private Dictionary<string, string> ReadCacheFile()
    {
        try
        {
            return File.Exists(_cacheFile)
                ? JsonSerializer.Deserialize<Dictionary<string, string>>(File.ReadAllText(_cacheFile), CacheJson) ?? []
                : [];
        }
        catch (JsonException ex)
        {
            // Unreadable: as if empty, which accepts nothing without kube-apiserver; the next verified join rewrites it.
            _log.NodePasswordCacheUnreadable(_cacheFile, ex.Message);
            return [];
        }
    }

    private void Remember(string node, string hash)
    {
        lock (_cacheLock)
        {
            var cache = ReadCacheFile();
            if (cache.TryGetValue(node, out var known) && known == hash)
            {
                return;
            }

            cache[node] = hash;
            FileUtil.WriteAtomic(_cacheFile, JsonSerializer.Serialize(new SortedDictionary<string, string>(cache, StringComparer.Ordinal), CacheJson) + "\n", Identity.ClusterCertificates.KeyMode);
        }
    }
}
