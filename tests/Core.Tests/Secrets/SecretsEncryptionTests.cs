using System.Text;
using System.Text.Json.Nodes;
using Coracle.Core.Cli;
using Coracle.Core.Configuration;
using Coracle.Core.Kubernetes;
using Coracle.Core.Secrets;
using Coracle.Core.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace Coracle.Core.Tests.Secrets;

/// <summary>
/// Secrets encryption at rest with the real kube-apiserver 1.32 over Coracle's SQLite datastore, the file read directly:
/// no Secret value in the clear, the aescbc prefix with the active key's name, rotate-keys re-encrypting every Secret (also
/// one written before encryption was turned on) under the new key, the old key gone only afterwards.
/// </summary>
[Trait("Category", "Integration")]
public sealed class SecretsEncryptionTests : IDisposable
{
    private readonly TempDir _dir = new("sec");

    public void Dispose() => _dir.Dispose();

    private static JsonObject Secret(string name, string value) => new()
    {
        ["apiVersion"] = "v1",
        ["kind"] = "Secret",
        ["metadata"] = new JsonObject { ["name"] = name, ["namespace"] = "default" },
        ["stringData"] = new JsonObject { ["password"] = value },
    };

    private static async Task<string> ReadSecretAsync(KubeApi api, string name)
    {
        var got = await api.GetAsync($"/api/v1/namespaces/default/secrets/{name}", CancellationToken.None);
        Assert.True(got.IsSuccess, got.Describe());
        return Encoding.UTF8.GetString(Convert.FromBase64String(got.Body!["data"]!["password"]!.GetValue<string>()));
    }

    private static bool Contains(byte[] haystack, string needle) => haystack.AsSpan().IndexOf(Encoding.UTF8.GetBytes(needle)) >= 0;

    private static string Prefix(byte[]? value) => value is null ? "(none)" : Encoding.UTF8.GetString(value.AsSpan(0, Math.Min(value.Length, 60)));

    [K8sFact(Binaries = ["kube-apiserver"])]
    public async Task SecretsEncryption_RealApiServerOnSqlite_NothingInTheClearAndRotateKeysReencryptsEverySecret()
    {
        await using var server = new SqliteApiServer(_dir.Path);
        var before = "plain-before-" + Guid.NewGuid().ToString("N");
        var after = "secret-after-" + Guid.NewGuid().ToString("N");

        // 1. Without encryption: a Secret is stored in the clear (the direct read works).
        var plain = server.Config();
        Assert.Null(SecretsEncryption.Prepare(plain, NullLogger.Instance));
        await server.StartAsync(plain, null);
        using (var api = server.Api())
        {
            Assert.True((await api.CreateAsync("/api/v1/namespaces/default/secrets", Secret("before", before), CancellationToken.None)).IsSuccess);
        }

        Assert.True(Contains(server.StoredValue("/registry/secrets/default/before")!, before));
        await server.StopApiServerAsync();

        // 2. --secrets-encryption: the server writes the configuration (0600) and kube-apiserver encrypts new writes.
        var encrypted = server.Config((Settings.SecretsEncryption, "true"));
        var file = SecretsEncryption.Prepare(encrypted, NullLogger.Instance)!;
        Assert.Equal(EncryptionConfig.PathFor(_dir.Path), file);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
        await server.StartAsync(encrypted, file);
        using var admin = server.Api();
        Assert.True((await admin.CreateAsync("/api/v1/namespaces/default/secrets", Secret("after", after), CancellationToken.None)).IsSuccess);

        Assert.Equal(after, await ReadSecretAsync(admin, "after"));
        Assert.Equal(before, await ReadSecretAsync(admin, "before")); // identity last: the old plaintext Secret stays readable
        Assert.False(Contains(server.RawFiles(), after), "the new Secret's value is in the datastore's files in the clear");
        Assert.StartsWith("k8s:enc:aescbc:v1:aescbckey:", Prefix(server.StoredValue("/registry/secrets/default/after")), StringComparison.Ordinal);
        Assert.True(Contains(server.StoredValue("/registry/secrets/default/before")!, before)); // not yet re-encrypted

        // 3. rotate-keys: a new key, kube-apiserver reloads, every Secret rewritten, the old key removed.
        var rotation = new KeyRotation(admin, file, NullLogger.Instance);
        var (key, rewritten, removed) = await rotation.RotateAsync("aescbc", CancellationToken.None);

        Assert.NotEqual("aescbckey", key.Name);
        Assert.Equal(["aescbckey"], removed);
        Assert.True(rewritten >= 2, $"{rewritten} secrets rewritten");
        var config = EncryptionConfig.Read(file)!;
        Assert.Equal([key.Name], config.Keys.Select(k => k.Name));
        Assert.Equal(after, await ReadSecretAsync(admin, "after"));
        Assert.Equal(before, await ReadSecretAsync(admin, "before"));
        var stored = server.StoredValues("/registry/secrets/");
        Assert.Contains(stored, s => s.Key == "/registry/secrets/default/before");
        Assert.All(stored, s => Assert.StartsWith(key.StoragePrefix, Prefix(s.Value), StringComparison.Ordinal));
        Assert.False(Contains(server.StoredValue("/registry/secrets/default/before")!, before));

        // 4. status: on, the active key, and (once kube-apiserver re-read the file without the old key) that it uses it.
        var modified = File.GetLastWriteTimeUtc(file);
        var reloads = await rotation.ReloadsAsync(CancellationToken.None);
        Assert.NotNull(reloads);
        if (!reloads.Uses(modified))
        {
            Assert.Contains("kube-apiserver: has not re-read the file since it changed",
                SecretsEncryptCommands.Status(encrypted, file, config, modified, reloads), StringComparison.Ordinal);
            await rotation.WaitForLoadedAsync(reloads, modified, CancellationToken.None);
            reloads = await rotation.ReloadsAsync(CancellationToken.None);
        }

        var status = SecretsEncryptCommands.Status(encrypted, file, config, modified, reloads);
        Assert.Contains("Encryption Status: Enabled", status, StringComparison.Ordinal);
        Assert.Contains($"Active Key: {key.Name}", status, StringComparison.Ordinal);
        Assert.Contains("Provider: aescbc", status, StringComparison.Ordinal);
        Assert.Contains("kube-apiserver: uses this configuration", status, StringComparison.Ordinal);

        // A second server in the cluster: rotate-keys refuses in one line and changes nothing (each server has its own file).
        var other = JsonNode.Parse("""{"apiVersion":"v1","kind":"Node","metadata":{"name":"other-server","labels":{"node-role.kubernetes.io/control-plane":"true"}}}""")!;
        var self = JsonNode.Parse("""{"apiVersion":"v1","kind":"Node","metadata":{"name":"this-server","labels":{"node-role.kubernetes.io/control-plane":"true"}}}""")!;
        Assert.True((await admin.CreateAsync("/api/v1/nodes", other, CancellationToken.None)).IsSuccess);
        Assert.True((await admin.CreateAsync("/api/v1/nodes", self, CancellationToken.None)).IsSuccess);
        var fileBefore = File.ReadAllText(file);
        var refused = await Assert.ThrowsAsync<KeyRotationException>(() => rotation.RotateAsync("aescbc", CancellationToken.None));
        Assert.Equal("the cluster has 2 servers (other-server, this-server) and rotate-keys changes this server's keys only: the others could not read Secrets written with the new key; nothing was changed (docs/secrets-encryption.md)", refused.Message);
        Assert.Equal(fileBefore, File.ReadAllText(file));
        Assert.True((await admin.DeleteAsync("/api/v1/nodes/other-server", CancellationToken.None)).IsSuccess);

        // 5. The provider switches at the next rotation: secretbox, every Secret again.
        var (boxKey, _, boxRemoved) = await rotation.RotateAsync("secretbox", CancellationToken.None);
        Assert.Equal([key.Name], boxRemoved);
        Assert.All(server.StoredValues("/registry/secrets/"), s => Assert.StartsWith($"k8s:enc:secretbox:v1:{boxKey.Name}:", Prefix(s.Value), StringComparison.Ordinal));
        Assert.Equal(before, await ReadSecretAsync(admin, "before"));
        Assert.Equal(after, await ReadSecretAsync(admin, "after"));
    }

    [Fact]
    public void ApiServerReloads_Metrics_CountSuccessesLastReloadAndStart()
    {
        // As kube-apiserver 1.32.13 prints them after one reload.
        const string Metrics = """
            # HELP apiserver_encryption_config_controller_automatic_reloads_total [ALPHA] Total number of reload successes and failures.
            apiserver_encryption_config_controller_automatic_reload_last_timestamp_seconds{apiserver_id_hash="sha256:73",status="success"} 1.79659207903469e+09
            apiserver_encryption_config_controller_automatic_reloads_total{apiserver_id_hash="sha256:73",status="success"} 1
            apiserver_encryption_config_controller_automatic_reloads_total{apiserver_id_hash="sha256:73",status="failure"} 4
            process_start_time_seconds 1.7965919e+09
            """;

        var reloads = ApiServerReloads.Parse(Metrics);

        Assert.Equal(1, reloads.Successes);
        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(1796592079034), reloads.LastSuccess);
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1796591900), reloads.Started);
        var before = reloads with { Successes = 0 };
        var written = DateTimeOffset.FromUnixTimeSeconds(1796592000);
        Assert.True(reloads.LoadedSince(before, written));
        Assert.False(reloads.LoadedSince(reloads, written)); // no reload since the write
        Assert.False(reloads.LoadedSince(null, written));
        Assert.True((reloads with { Started = written.AddSeconds(1), Successes = 0 }).LoadedSince(reloads, written)); // restarted after it
        Assert.True(reloads.Uses(written));
        Assert.False(reloads.Uses(written.AddMinutes(2)));
    }

    [Fact]
    public void Prepare_On_WritesOneAescbcKeyWithIdentityLast0600()
    {
        var file = SecretsEncryption.Prepare(TestConfig.Server(_dir.Path, (Settings.SecretsEncryption, "true")), NullLogger.Instance)!;

        var json = JsonNode.Parse(File.ReadAllText(file))!;
        Assert.Equal("EncryptionConfiguration", json["kind"]!.GetValue<string>());
        Assert.Equal("apiserver.config.k8s.io/v1", json["apiVersion"]!.GetValue<string>());
        Assert.Equal("secrets", json["resources"]![0]!["resources"]![0]!.GetValue<string>());
        var providers = json["resources"]![0]!["providers"]!.AsArray();
        Assert.Equal(2, providers.Count);
        Assert.Equal("aescbckey", providers[0]!["aescbc"]!["keys"]![0]!["name"]!.GetValue<string>());
        Assert.Equal(32, Convert.FromBase64String(providers[0]!["aescbc"]!["keys"]![0]!["secret"]!.GetValue<string>()).Length);
        Assert.NotNull(providers[1]!["identity"]);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
        Assert.Equal(Path.Combine(_dir.Path, "server", "cred", "encryption-config.json"), file);
    }

    [Fact]
    public void Prepare_SecretboxProvider_WritesSecretboxKey()
    {
        var file = SecretsEncryption.Prepare(
            TestConfig.Server(_dir.Path, (Settings.SecretsEncryption, "true"), (Settings.SecretsEncryptionProvider, "secretbox")), NullLogger.Instance)!;

        var config = EncryptionConfig.Read(file)!;
        Assert.Equal(new EncryptionKey("secretbox", "secretboxkey", config.Keys[0].Secret), config.Active);
        Assert.Equal(32, Convert.FromBase64String(config.Keys[0].Secret).Length);
    }

    [Fact]
    public void Prepare_RestartedOn_KeepsTheKeys()
    {
        var config = TestConfig.Server(_dir.Path, (Settings.SecretsEncryption, "true"));
        var file = SecretsEncryption.Prepare(config, NullLogger.Instance)!;
        var first = File.ReadAllText(file);

        SecretsEncryption.Prepare(config, NullLogger.Instance);

        Assert.Equal(first, File.ReadAllText(file));
    }

    [Fact]
    public void Prepare_TurnedOffWithKeys_KeepsThemToDecryptWithIdentityFirstAndOnAgainPutsIdentityLast()
    {
        var file = SecretsEncryption.Prepare(TestConfig.Server(_dir.Path, (Settings.SecretsEncryption, "true")), NullLogger.Instance)!;
        var key = EncryptionConfig.Read(file)!.Keys[0];

        Assert.Equal(file, SecretsEncryption.Prepare(TestConfig.Server(_dir.Path), NullLogger.Instance));
        var off = EncryptionConfig.Read(file)!;
        Assert.False(off.Enabled);
        Assert.Equal([key], off.Keys);
        Assert.NotNull(JsonNode.Parse(File.ReadAllText(file))!["resources"]![0]!["providers"]![0]!["identity"]);

        SecretsEncryption.Prepare(TestConfig.Server(_dir.Path, (Settings.SecretsEncryption, "true")), NullLogger.Instance);
        Assert.Equal(key, EncryptionConfig.Read(file)!.Active);
    }

    [Fact]
    public void Prepare_OffWithoutFile_NoConfiguration()
    {
        Assert.Null(SecretsEncryption.Prepare(TestConfig.Server(_dir.Path), NullLogger.Instance));
        Assert.False(File.Exists(EncryptionConfig.PathFor(_dir.Path)));
    }

    [Fact]
    public void EncryptionConfig_NewKeyThenActiveOnly_NewFirstOldDecryptOnlyThenDropped()
    {
        var old = EncryptionKey.Generate("aescbc", "aescbckey");
        var fresh = EncryptionKey.Generate("secretbox", "secretboxkey-20261206T210000Z");
        var staged = new EncryptionConfig([old], Enabled: true).WithNewKey(fresh);

        var parsed = EncryptionConfig.Parse(staged.ToJson(), "f");
        Assert.Equal([fresh, old], parsed.Keys);
        Assert.Equal(fresh, parsed.Active);
        var providers = JsonNode.Parse(staged.ToJson())!["resources"]![0]!["providers"]!.AsArray();
        Assert.Equal(["secretbox", "aescbc", "identity"], providers.Select(p => p!.AsObject().First().Key));
        Assert.Equal([fresh], EncryptionConfig.Parse(staged.WithActiveKeyOnly().ToJson(), "f").Keys);
    }

    [Theory]
    [InlineData("{", "f: not valid JSON")]
    [InlineData("""{"resources":[{"resources":["secrets"],"providers":[{"kms":{}},{"identity":{}}]}]}""", "f: provider kms is not supported; Coracle manages aescbc, secretbox and identity")]
    [InlineData("""{"resources":[{"resources":["secrets"],"providers":[{"aescbc":{"keys":[{"name":"k","secret":"c2VjcmV0"}]}}]}]}""", "f: no identity provider")]
    public void EncryptionConfig_Unusable_ErrorNamesTheFile(string json, string error)
    {
        var ex = Assert.Throws<EncryptionConfigException>(() => EncryptionConfig.Parse(json, "f"));
        Assert.StartsWith(error, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Config_UnknownProvider_OneErrorNamingTheFlagAndTheChoices()
    {
        var (_, errors) = ConfigLoader.LoadAll("server", null, new Dictionary<string, string> { ["CORACLE_CONFIG_FILE"] = "", ["HOME"] = "/root" },
            new Dictionary<Setting, IReadOnlyList<string>> { [Settings.DataDir] = [_dir.Path], [Settings.SecretsEncryptionProvider] = ["aesgcm"] });

        Assert.Equal(["--secrets-encryption-provider: 'aesgcm' is not one of aescbc, secretbox"], errors.Select(e => e.ToString()));
    }

    [Fact]
    public void Flag_BareSecretsEncryption_MeansTrue()
    {
        var root = CommandLineBuilder.Build();
        var parsed = root.Parse(["server", "--secrets-encryption", "--secrets-encryption-provider", "secretbox"]);

        Assert.Empty(parsed.Errors);
        Assert.Equal(true, SettingParser.Parse(Settings.SecretsEncryption, [], out var error));
        Assert.Null(error);
        Assert.Equal(false, SettingParser.Parse(Settings.SecretsEncryption, ["false"], out _));
    }

    [Fact]
    public void ApiServerArgs_WithEncryptionConfig_PassesItWithAutomaticReload()
    {
        var config = TestConfig.Server(_dir.Path);
        var paths = new KubernetesPaths { TlsDir = "/t", CredDir = "/c", DatastoreServers = ["unix:///s"], EncryptionProviderConfigFile = "/c/encryption-config.json" };

        var args = ComponentArgs.ApiServerDefaults(config, paths);

        Assert.Equal("/c/encryption-config.json", args["encryption-provider-config"]);
        Assert.Equal("true", args["encryption-provider-config-automatic-reload"]);
        Assert.False(ComponentArgs.ApiServerDefaults(config, paths with { EncryptionProviderConfigFile = null }).ContainsKey("encryption-provider-config"));
    }

    [Fact]
    public void Status_Off_SaysDisabledAndHowToTurnItOn()
    {
        var config = TestConfig.Server(_dir.Path);

        var status = SecretsEncryptCommands.Status(config, "/d/server/cred/encryption-config.json", null, null, null);

        Assert.Equal("Encryption Status: Disabled\nno encryption configuration (/d/server/cred/encryption-config.json); start 'coracle server --secrets-encryption' to encrypt Secrets\n", status);
    }
}
