using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Coracle.Core.Hosting;

namespace Coracle.Core.Secrets;

/// <summary>One key of the encryption configuration: its provider (<c>aescbc</c> or <c>secretbox</c>), name and base64 secret.</summary>
internal sealed record EncryptionKey(string Provider, string Name, string Secret)
{
    /// <summary>The prefix kube-apiserver puts before every value this key encrypted: <c>k8s:enc:aescbc:v1:NAME:</c>.</summary>
    public string StoragePrefix => $"k8s:enc:{Provider}:v1:{Name}:";

    /// <summary>K3s's label for the key type (<c>AES-CBC</c>, <c>XSalsa20-Poly1305</c>), as <c>k3s secrets-encrypt status</c> prints it.</summary>
    public string TypeLabel => Provider == EncryptionConfig.SecretBox ? "XSalsa20-Poly1305" : "AES-CBC";

    /// <summary>A new key of <paramref name="provider"/>: 32 random bytes (AES-256 for aescbc; secretbox needs exactly 32).</summary>
    public static EncryptionKey Generate(string provider, string name) =>
        new(provider, name, Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)));
}

/// <summary>
/// kube-apiserver's <c>EncryptionConfiguration</c> (apiserver.config.k8s.io/v1) for Secrets, as K3s keeps it in
/// <c>DATA/server/cred/encryption-config.json</c> (0600): the keys in order, the first one encrypting every write, the others
/// only decrypting; <c>identity</c> last so values written before encryption was on stay readable. With
/// <see cref="Enabled"/> false <c>identity</c> comes first (writes are stored in the clear) and the keys only decrypt what
/// they once encrypted. Immutable; <see cref="Write"/> replaces the file atomically and durably.
/// </summary>
internal sealed record EncryptionConfig(IReadOnlyList<EncryptionKey> Keys, bool Enabled)
{
    public const string AesCbc = "aescbc";
    public const string SecretBox = "secretbox";
    public const string Identity = "identity";

    /// <summary>The providers <c>--secrets-encryption-provider</c> accepts, as in K3s 1.32.</summary>
    public static IReadOnlyList<string> Providers { get; } = [AesCbc, SecretBox];

    public static string PathFor(string dataDir) => System.IO.Path.Combine(Coracle.Core.Identity.ServerIdentity.CredDir(dataDir), "encryption-config.json");

    /// <summary>The key new writes use; null when encryption is off or there is no key.</summary>
    public EncryptionKey? Active => Enabled && Keys.Count > 0 ? Keys[0] : null;

    /// <summary>K3s's first key name for a provider: <c>aescbckey</c>, <c>secretboxkey</c>.</summary>
    public static string FirstKeyName(string provider) => provider + "key";

    /// <summary>A rotated key's name: <c>aescbckey-20261206T210438Z</c> (no colon: it is part of the storage prefix).</summary>
    public static string RotatedKeyName(string provider, DateTimeOffset now) =>
        provider + "key-" + now.UtcDateTime.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture);

    /// <summary>This configuration with <paramref name="key"/> first (encrypting from now on), every other key kept to decrypt.</summary>
    public EncryptionConfig WithNewKey(EncryptionKey key) => new([key, .. Keys.Where(k => k.Name != key.Name)], Enabled: true);

    /// <summary>Only the active key (after every Secret was rewritten with it).</summary>
    public EncryptionConfig WithActiveKeyOnly() => this with { Keys = Keys.Take(1).ToList() };

    /// <summary>The JSON kube-apiserver reads: consecutive keys of one provider share an entry; identity last (first when off).</summary>
    public string ToJson()
    {
        var providers = new JsonArray();
        if (!Enabled)
        {
            providers.Add(new JsonObject { [Identity] = new JsonObject() });
        }

        foreach (var run in Runs(Keys))
        {
            var keys = new JsonArray();
            foreach (var key in run)
            {
                keys.Add(new JsonObject { ["name"] = key.Name, ["secret"] = key.Secret });
            }

            providers.Add(new JsonObject { [run[0].Provider] = new JsonObject { ["keys"] = keys } });
        }

        if (Enabled)
        {
            providers.Add(new JsonObject { [Identity] = new JsonObject() });
        }

        var root = new JsonObject
        {
            ["kind"] = "EncryptionConfiguration",
            ["apiVersion"] = "apiserver.config.k8s.io/v1",
            ["resources"] = new JsonArray(new JsonObject
            {
                ["resources"] = new JsonArray("secrets"),
                ["providers"] = providers,
            }),
        };
        return root.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";
    }

    private static IEnumerable<List<EncryptionKey>> Runs(IReadOnlyList<EncryptionKey> keys)
    {
        var run = new List<EncryptionKey>();
        foreach (var key in keys)
        {
            if (run.Count > 0 && run[0].Provider != key.Provider)
            {
                yield return run;
                run = [];
            }

            run.Add(key);
        }

        if (run.Count > 0)
        {
            yield return run;
        }
    }

    /// <summary>Parses the file's JSON; anything but one <c>secrets</c> resource with aescbc, secretbox and identity providers is refused.</summary>
    public static EncryptionConfig Parse(string json, string file)
    {
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(json);
        }
        catch (JsonException ex)
        {
            throw new EncryptionConfigException($"{file}: not valid JSON ({ex.Message}); restore it from a backup, the keys in it decrypt your Secrets");
        }

        if (root?["resources"] is not JsonArray { Count: 1 } resources
            || resources[0]?["resources"] is not JsonArray names || names.Count != 1 || names[0]?.GetValue<string>() != "secrets"
            || resources[0]?["providers"] is not JsonArray providers)
        {
            throw new EncryptionConfigException($"{file}: not an EncryptionConfiguration for secrets as Coracle writes it (one resources entry, [\"secrets\"], with providers)");
        }

        var keys = new List<EncryptionKey>();
        var identityAt = -1;
        for (var i = 0; i < providers.Count; i++)
        {
            if (providers[i] is not JsonObject provider || provider.Count != 1)
            {
                throw new EncryptionConfigException($"{file}: providers[{i}] must name exactly one provider");
            }

            var (type, body) = provider.First();
            if (type == Identity)
            {
                identityAt = keys.Count;
                continue;
            }

            if (!Providers.Contains(type))
            {
                throw new EncryptionConfigException($"{file}: provider {type} is not supported; Coracle manages {string.Join(", ", Providers)} and identity");
            }

            foreach (var key in body?["keys"] as JsonArray ?? [])
            {
                var name = key?["name"]?.GetValue<string>();
                var secret = key?["secret"]?.GetValue<string>();
                if (string.IsNullOrEmpty(name) || string.IsNullOrEmpty(secret))
                {
                    throw new EncryptionConfigException($"{file}: a {type} key without name or secret");
                }

                keys.Add(new EncryptionKey(type, name, secret));
            }
        }

        if (identityAt < 0)
        {
            throw new EncryptionConfigException($"{file}: no identity provider; Coracle keeps it so Secrets written in the clear stay readable");
        }

        // identity first = off; identity after a key = on.
        return new EncryptionConfig(keys, Enabled: keys.Count > 0 && identityAt > 0);
    }

    /// <summary>The configuration in <paramref name="file"/>, or null when there is none.</summary>
    public static EncryptionConfig? Read(string file) =>
        File.Exists(file) ? Parse(File.ReadAllText(file), file) : null;

    /// <summary>
    /// Replaces <paramref name="file"/> (0600) atomically and durably: temp file fsync'd, renamed, then the folder fsync'd,
    /// so after a power cut the file holds either the old or the new keys, never a key kube-apiserver used that is lost.
    /// </summary>
    public void Write(string file)
    {
        FileUtil.WriteAtomic(file, ToJson(), UnixFileMode.UserRead | UnixFileMode.UserWrite);
        DirectorySync.Sync(System.IO.Path.GetDirectoryName(file)!);
    }
}

/// <summary>The encryption configuration file cannot be used as it is; the message names the file and the fix.</summary>
internal sealed class EncryptionConfigException(string message) : Exception(message);
