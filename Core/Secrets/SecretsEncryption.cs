using Coracle.Core.Configuration;
using Coracle.Core.Logging;
using Microsoft.Extensions.Logging;

namespace Coracle.Core.Secrets;

/// <summary>
/// The server's start-up step <c>secrets encryption</c> (K3s's <c>--secrets-encryption</c>): makes sure
/// <c>DATA/server/cred/encryption-config.json</c> says what the configuration asks, and returns the file kube-apiserver
/// gets as <c>--encryption-provider-config</c> (null: no encryption configuration at all).
/// <list type="bullet">
/// <item>on, no file: one new key of <c>secrets-encryption-provider</c> (<c>aescbckey</c> or <c>secretboxkey</c>), identity last;</item>
/// <item>on, a file: kept as it is (the keys change only through <c>coracle secrets-encrypt rotate-keys</c>); a file written while
/// encryption was off gets identity moved last again;</item>
/// <item>off, a file with keys: kept, identity moved first — new writes are stored in the clear, but Secrets encrypted earlier
/// stay readable (dropping the keys would make them unreadable);</item>
/// <item>off, no file: nothing.</item>
/// </list>
/// </summary>
internal static class SecretsEncryption
{
    public static string? Prepare(CoracleConfig config, ILogger log)
    {
        var file = EncryptionConfig.PathFor(config.DataDir);
        var existing = EncryptionConfig.Read(file);
        if (!config.SecretsEncryption)
        {
            if (existing is null || existing.Keys.Count == 0)
            {
                return null;
            }

            var off = existing with { Enabled = false };
            if (existing.Enabled || File.ReadAllText(file) != off.ToJson())
            {
                off.Write(file);
            }

            log.EncryptionOffKeysKept(file, existing.Keys.Count);
            return file;
        }

        if (existing is null || existing.Keys.Count == 0)
        {
            var provider = config.SecretsEncryptionProvider;
            var created = new EncryptionConfig([EncryptionKey.Generate(provider, EncryptionConfig.FirstKeyName(provider))], Enabled: true);
            created.Write(file);
            log.EncryptionKeyGenerated(provider, created.Active!.Name, file);
            return file;
        }

        if (!existing.Enabled)
        {
            existing = existing with { Enabled = true };
            existing.Write(file);
            log.EncryptionReenabled(existing.Active!.Name);
        }

        var active = existing.Active!;
        log.EncryptionActive(active.Name, active.Provider, existing.Keys.Count - 1, file);
        if (active.Provider != config.SecretsEncryptionProvider)
        {
            log.EncryptionProviderDiffers(active.Provider, config.SecretsEncryptionProvider);
        }

        return file;
    }
}
