using System.CommandLine;
using System.Globalization;
using Coracle.Core.Configuration;
using Coracle.Core.Identity;

namespace Coracle.Core.Cli;

/// <summary>
/// <c>coracle certificate check|rotate|rotate-ca</c> and <c>coracle token show|create|list|delete</c>. They work on the
/// data dir directly; no running server is needed (a running server loads rotated certificates within seconds).
/// </summary>
internal static class IdentityCommands
{
    private static readonly Option<string[]> ServiceOption = new("--service")
    {
        Description = "Certificate to renew (repeat or comma-separate), e.g. serving-kube-apiserver; default: every leaf",
        HelpName = "NAME",
        Arity = ArgumentArity.OneOrMore,
    };

    private static readonly Option<string> CaPathOption = new("--path")
    {
        Description = "Folder holding the replacement CA pairs (server-ca.crt + server-ca.key, client-ca.crt + client-ca.key, ...)",
        HelpName = "DIR",
        Required = true,
    };

    private static readonly Option<string> TtlOption = new("--ttl")
    {
        Description = "How long the join token is valid (0 = never expires) [default: 24h]",
        HelpName = "DURATION",
        DefaultValueFactory = _ => "24h",
    };

    private static readonly Option<string> DescriptionOption = new("--description")
    {
        Description = "A note shown by 'coracle token list'",
        HelpName = "TEXT",
        DefaultValueFactory = _ => "",
    };

    private static readonly Argument<string> TokenIdArgument = new("ID") { Description = "The token id ('coracle token list')" };

    public static void AddTo(RootCommand root)
    {
        var certificate = new Command("certificate", "Inspect and rotate the server's certificates");
        certificate.Subcommands.Add(CommandLineBuilder.NodeCommand("check", "Print every certificate with its expiry and status", CheckAsync));
        var rotate = CommandLineBuilder.NodeCommand("rotate", "Renew leaf certificates (all, or those named by --service); a running server loads them within seconds", RotateAsync);
        rotate.Options.Add(ServiceOption);
        certificate.Subcommands.Add(rotate);
        var rotateCa = CommandLineBuilder.NodeCommand("rotate-ca", "Install user-supplied CA certificates and keys, then re-issue every leaf they sign", RotateCaAsync);
        rotateCa.Options.Add(CaPathOption);
        certificate.Subcommands.Add(rotateCa);
        root.Subcommands.Add(certificate);

        var token = new Command("token", "Show the server token and manage join tokens");
        token.Subcommands.Add(CommandLineBuilder.NodeCommand("show", "Print the server token (K10<ca-hash>::server:<secret>)", ShowAsync));
        var create = CommandLineBuilder.NodeCommand("create", "Create a join token that expires", CreateAsync);
        create.Options.Add(TtlOption);
        create.Options.Add(DescriptionOption);
        token.Subcommands.Add(create);
        token.Subcommands.Add(CommandLineBuilder.NodeCommand("list", "List join tokens", ListAsync));
        var delete = CommandLineBuilder.NodeCommand("delete", "Delete a join token", DeleteAsync);
        delete.Arguments.Add(TokenIdArgument);
        token.Subcommands.Add(delete);
        root.Subcommands.Add(token);
    }

    private static Task<int> CheckAsync(ParseResult result, Command command, CancellationToken ct) => Run(result, command, config =>
    {
        // A server's certificates; an agent's (issued by the server through the join API) when this is an agent's data dir.
        var serverTls = ClusterCertificates.TlsDir(config.DataDir);
        var agentDir = Join.AgentJoin.AgentDir(config.DataDir);
        var rows = new List<CertCheck>();
        if (Directory.Exists(serverTls) || !Directory.Exists(agentDir))
        {
            rows.AddRange(ClusterCertificates.ForServer(config).Check());
        }

        rows.AddRange(AgentCertificates.Check(agentDir, DateTimeOffset.UtcNow));
        Console.Write(Commands.Table(["CERTIFICATE", "ISSUER", "NOT AFTER", "DAYS LEFT", "STATUS"], rows.Select(r => new[]
        {
            r.Name,
            r.Issuer,
            r.NotAfter == DateTimeOffset.MinValue ? "-" : r.NotAfter.ToString("u", CultureInfo.InvariantCulture),
            r.NotAfter == DateTimeOffset.MinValue ? "-" : Math.Floor((r.NotAfter - DateTimeOffset.UtcNow).TotalDays).ToString(CultureInfo.InvariantCulture),
            r.Status,
        }).ToList()));
        return rows.All(r => r.Status is "ok" or "due for renewal") ? ExitCodes.Ok : ExitCodes.RuntimeFailure;
    });

    private static Task<int> RotateAsync(ParseResult result, Command command, CancellationToken ct) => Run(result, command, config =>
    {
        var certs = ClusterCertificates.ForServer(config);
        var names = SettingParser.SplitList(result.GetValue(ServiceOption) ?? []);
        var known = certs.Specs.Where(s => !s.IsCa).Select(s => s.Name).ToList();
        var unknown = names.Where(n => !known.Contains(n)).ToList();
        if (unknown.Count > 0)
        {
            Commands.WriteErrors([$"--service: unknown certificate {string.Join(", ", unknown)}; leaf certificates are {string.Join(", ", known)}"]);
            return ExitCodes.InvalidConfig;
        }

        var outcomes = certs.Ensure(new HashSet<string>(names, StringComparer.Ordinal));
        PrintOutcomes(outcomes);
        ServerIdentity.WriteKubeconfigs(config, certs, null);
        Console.WriteLine("a running coracle server loads them within 10 seconds (it restarts the components that use them); otherwise they are used at the next start");
        return ExitCodes.Ok;
    });

    private static Task<int> RotateCaAsync(ParseResult result, Command command, CancellationToken ct) => Run(result, command, config =>
    {
        var certs = ClusterCertificates.ForServer(config);
        var replaced = certs.ReplaceCas(result.GetValue(CaPathOption)!);
        var outcomes = certs.Ensure();
        PrintOutcomes(outcomes);
        ServerIdentity.WriteKubeconfigs(config, certs, null);
        Console.WriteLine($"replaced CAs: {string.Join(", ", replaced)}");
        if (replaced.Contains(ClusterCertificates.ServerCa))
        {
            var token = ServerToken.Ensure(config.DataDir, certs.CertFile(ClusterCertificates.ServerCa), "");
            Console.WriteLine($"the server CA changed, so the token's CA hash changed; agents join with the new token: {token}");
        }

        Console.WriteLine("restart 'coracle server' to load them; agents must re-join to get certificates from the new CAs");
        return ExitCodes.Ok;
    });

    private static Task<int> ShowAsync(ParseResult result, Command command, CancellationToken ct) => Run(result, command, config =>
    {
        var path = ServerToken.PathFor(config.DataDir);
        if (!File.Exists(path))
        {
            Commands.WriteErrors([$"no server token in {path}; start 'coracle server' once with this data dir first"]);
            return ExitCodes.RuntimeFailure;
        }

        Console.WriteLine(ServerToken.Read(path));
        return ExitCodes.Ok;
    });

    private static Task<int> CreateAsync(ParseResult result, Command command, CancellationToken ct) => Run(result, command, config =>
    {
        var ttlText = result.GetValue(TtlOption) ?? "24h";
        if (!SettingParser.TryParseDuration(ttlText, out var ttl, out var error))
        {
            Commands.WriteErrors([$"--ttl: {error}"]);
            return ExitCodes.InvalidConfig;
        }

        var ca = ClusterCertificates.ForServer(config).CertFile(ClusterCertificates.ServerCa);
        if (!File.Exists(ca))
        {
            Commands.WriteErrors([$"no server CA in {ca}; start 'coracle server' once with this data dir first"]);
            return ExitCodes.RuntimeFailure;
        }

        var (record, credential) = new JoinTokenStore(config.DataDir).Create(ttl, result.GetValue(DescriptionOption) ?? "");
        Console.WriteLine(new ClusterToken(ClusterToken.HashCa(File.ReadAllBytes(ca)), credential));
        Console.Error.WriteLine($"token {record.Id} expires {JoinTokenStore.FormatExpiry(record, DateTimeOffset.UtcNow)}");
        return ExitCodes.Ok;
    });

    private static Task<int> ListAsync(ParseResult result, Command command, CancellationToken ct) => Run(result, command, config =>
    {
        var now = DateTimeOffset.UtcNow;
        var tokens = new JoinTokenStore(config.DataDir).List();
        Console.Write(Commands.Table(["ID", "CREATED", "EXPIRES", "DESCRIPTION"], tokens.Select(t => new[]
        {
            t.Id, t.Created.ToString("u", CultureInfo.InvariantCulture), JoinTokenStore.FormatExpiry(t, now), t.Description,
        }).ToList()));
        return ExitCodes.Ok;
    });

    private static Task<int> DeleteAsync(ParseResult result, Command command, CancellationToken ct) => Run(result, command, config =>
    {
        var id = result.GetValue(TokenIdArgument)!;
        if (!new JoinTokenStore(config.DataDir).Delete(id))
        {
            Commands.WriteErrors([$"no join token {id}; see 'coracle token list'"]);
            return ExitCodes.RuntimeFailure;
        }

        Console.WriteLine($"deleted join token {id}");
        return ExitCodes.Ok;
    });

    private static void PrintOutcomes(IReadOnlyList<CertOutcome> outcomes) =>
        Console.Write(Commands.Table(["CERTIFICATE", "ACTION", "NOT AFTER"], outcomes.Select(o => new[]
        {
            o.Name, o.Action, o.NotAfter.ToString("u", CultureInfo.InvariantCulture),
        }).ToList()));

    private static Task<int> Run(ParseResult result, Command command, Func<CoracleConfig, int> action)
    {
        var config = Commands.LoadConfig("server", result, command);
        if (config is null)
        {
            return Task.FromResult(ExitCodes.InvalidConfig);
        }

        try
        {
            return Task.FromResult(action(config));
        }
        catch (Exception ex) when (ex is CertificateFileException or TokenFormatException or IOException or UnauthorizedAccessException)
        {
            Commands.WriteErrors([ex.Message]);
            return Task.FromResult(ExitCodes.RuntimeFailure);
        }
    }
}
