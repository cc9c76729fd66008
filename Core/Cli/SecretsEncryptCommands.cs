using System.CommandLine;
using Coracle.Core.Configuration;
using Coracle.Core.Identity;
using Coracle.Core.Kubernetes;
using Coracle.Core.Logging;
using Coracle.Core.Secrets;

namespace Coracle.Core.Cli;

/// <summary>
/// <c>coracle secrets-encrypt status|rotate-keys</c>, K3s's subcommand. <c>status</c> reads the data dir's encryption
/// configuration and asks the running kube-apiserver (if any) whether it loaded it; <c>rotate-keys</c> needs the running
/// server (docs/secrets-encryption.md).
/// </summary>
internal static class SecretsEncryptCommands
{
    public static void AddTo(RootCommand root)
    {
        var command = new Command("secrets-encrypt", "Inspect secrets encryption at rest and rotate its keys (--secrets-encryption)");
        command.Subcommands.Add(CommandLineBuilder.NodeCommand("status", "Print whether Secrets are encrypted, the active key and its provider", StatusAsync));
        command.Subcommands.Add(CommandLineBuilder.NodeCommand(
            "rotate-keys",
            "Add a new key (of --secrets-encryption-provider), wait until kube-apiserver uses it, rewrite every Secret with it, then remove the old keys",
            RotateKeysAsync));
        root.Subcommands.Add(command);
    }

    private static async Task<int> StatusAsync(ParseResult result, Command command, CancellationToken ct)
    {
        var config = Commands.LoadConfig("server", result, command);
        if (config is null)
        {
            return ExitCodes.InvalidConfig;
        }

        var file = EncryptionConfig.PathFor(config.DataDir);
        EncryptionConfig? current;
        try
        {
            current = EncryptionConfig.Read(file);
        }
        catch (Exception ex) when (ex is EncryptionConfigException or IOException or UnauthorizedAccessException)
        {
            Commands.WriteErrors([ex.Message]);
            return ExitCodes.RuntimeFailure;
        }

        ApiServerReloads? reloads = null;
        if (current is not null)
        {
            try
            {
                using var api = AdminApi(config, TimeSpan.FromSeconds(5));
                reloads = await new KeyRotation(api, file, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance).ReloadsAsync(ct);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
            {
                // No admin certificate to ask with: the status says kube-apiserver did not answer.
            }
        }

        Console.Write(Status(config, file, current, current is null ? null : File.GetLastWriteTimeUtc(file), reloads));
        return ExitCodes.Ok;
    }

    /// <summary>The status text: K3s's first line, then provider, active key, file, what kube-apiserver loaded, and the keys.</summary>
    internal static string Status(CoracleConfig config, string file, EncryptionConfig? current, DateTimeOffset? modified, ApiServerReloads? reloads)
    {
        var text = new System.Text.StringBuilder();
        if (current is null || current.Keys.Count == 0)
        {
            text.AppendLine("Encryption Status: Disabled");
            text.AppendLine(config.SecretsEncryption
                ? $"--secrets-encryption is on, but {file} does not exist yet: restart 'coracle server' to create it"
                : $"no encryption configuration ({file}); start 'coracle server --secrets-encryption' to encrypt Secrets");
            return text.ToString();
        }

        var active = current.Active;
        text.AppendLine($"Encryption Status: {(active is null ? "Disabled" : "Enabled")}");
        text.AppendLine($"Provider: {active?.Provider ?? "identity (keys kept only to decrypt)"}");
        text.AppendLine($"Active Key: {active?.Name ?? "none"}");
        text.AppendLine($"Config: {file}");
        text.AppendLine("kube-apiserver: " + (reloads is null
            ? "not answering (it loads the file when it starts)"
            : modified is { } changed && reloads.Uses(changed) ? "uses this configuration"
            : "has not re-read the file since it changed (it does so about once a minute)"));
        if (active is not null && active.Provider != config.SecretsEncryptionProvider)
        {
            text.AppendLine($"secrets-encryption-provider is {config.SecretsEncryptionProvider}: 'coracle secrets-encrypt rotate-keys' switches to it");
        }

        text.AppendLine();
        text.Append(Commands.Table(["ACTIVE", "KEY TYPE", "PROVIDER", "NAME"], current.Keys.Select(k => new[]
        {
            k == active ? "*" : "", k.TypeLabel, k.Provider, k.Name,
        }).ToList()));
        return text.ToString();
    }

    private static async Task<int> RotateKeysAsync(ParseResult result, Command command, CancellationToken ct)
    {
        var config = Commands.LoadConfig("server", result, command);
        if (config is null)
        {
            return ExitCodes.InvalidConfig;
        }

        using var loggers = LoggingSetup.Create(config.LogFormat, config.LogLevel);
        using var api = AdminApi(config, TimeSpan.FromSeconds(30));
        var file = EncryptionConfig.PathFor(config.DataDir);
        try
        {
            var (key, rewritten, removed) = await new KeyRotation(api, file, loggers.CreateLogger("secrets-encrypt"))
                .RotateAsync(config.SecretsEncryptionProvider, ct);
            Console.WriteLine($"active key {key.Name} ({key.Provider}); {rewritten} secrets rewritten; removed {(removed.Count == 0 ? "no keys" : string.Join(", ", removed))}");
            return ExitCodes.Ok;
        }
        catch (Exception ex) when (ex is KeyRotationException or EncryptionConfigException or IOException or UnauthorizedAccessException)
        {
            Commands.WriteErrors([ex.Message]);
            return ExitCodes.RuntimeFailure;
        }
    }

    private static KubeApi AdminApi(CoracleConfig config, TimeSpan timeout)
    {
        var tls = ClusterCertificates.TlsDir(config.DataDir);
        return new KubeApi(new Uri($"https://127.0.0.1:{config.HttpsListenPort}"), Path.Combine(tls, "server-ca.crt"),
            Path.Combine(tls, "client-admin.crt"), Path.Combine(tls, "client-admin.key"), timeout);
    }
}
