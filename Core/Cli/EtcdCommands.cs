using System.CommandLine;
using Coracle.Core.Hosting;
using Coracle.Plugins;

namespace Coracle.Core.Cli;

/// <summary>
/// <c>coracle etcd member list|remove NAME</c>: the members of the running server's clustered datastore (the embedded
/// etcd), through the selected datastore plugin's <see cref="IDatastoreCluster"/>. Core knows no etcd: a datastore
/// without that capability is reported plainly.
/// </summary>
internal static class EtcdCommands
{
    private static readonly Argument<string> MemberArgument = new("NAME")
    {
        Description = "The member's name (its server's node name), as 'member list' prints it",
    };

    public static void AddTo(RootCommand root)
    {
        var command = new Command("etcd", "The members of the embedded etcd of the server running on this machine (docs/ha.md)");
        var member = new Command("member", "List or remove members");
        member.Subcommands.Add(CommandLineBuilder.NodeCommand("list", "List the members: name, peer and client URLs, learner, healthy; and whether the cluster has quorum", ListAsync));
        var remove = CommandLineBuilder.NodeCommand("remove", "Remove a member (a server that left the cluster for good)", RemoveAsync);
        remove.Arguments.Add(MemberArgument);
        member.Subcommands.Add(remove);
        command.Subcommands.Add(member);
        root.Subcommands.Add(command);
    }

    private static async Task<int> ListAsync(ParseResult result, Command command, CancellationToken ct)
    {
        if (Cluster(result, command, "member list", out var exit) is not ({ } cluster, { } node, { } options))
        {
            return exit;
        }

        try
        {
            var members = await cluster.MembersAsync(node, options, ct);
            Console.Write(Commands.Table(["NAME", "PEER URLS", "CLIENT URLS", "LEARNER", "HEALTHY"], members.Members.Select(m => new[]
            {
                m.Name.Length > 0 ? m.Name : "(not started)", string.Join(",", m.PeerUrls), m.ClientUrls.Count > 0 ? string.Join(",", m.ClientUrls) : "-",
                m.IsLearner ? "yes" : "no", m.Healthy ? "yes" : "no",
            }).ToList()));
            Console.WriteLine(members.HasQuorum
                ? $"quorum: yes ({members.Members.Count(m => !m.IsLearner)} voting members)"
                : "quorum: NO: a majority of the voting members cannot be reached; writes fail until they run again");
            return members.HasQuorum ? ExitCodes.Ok : ExitCodes.RuntimeFailure;
        }
        catch (InvalidOperationException e)
        {
            Commands.WriteErrors([$"etcd member list: {e.Message}"]);
            return ExitCodes.RuntimeFailure;
        }
    }

    private static async Task<int> RemoveAsync(ParseResult result, Command command, CancellationToken ct)
    {
        var name = result.GetValue(MemberArgument) ?? "";
        if (Cluster(result, command, "member remove", out var exit) is not ({ } cluster, { } node, { } options))
        {
            return exit;
        }

        try
        {
            if (!await cluster.RemoveMemberAsync(node, options, name, ct))
            {
                Commands.WriteErrors([$"etcd member remove: no member named '{name}'; 'coracle etcd member list' shows the members"]);
                return ExitCodes.RuntimeFailure;
            }

            Console.WriteLine($"member {name} removed");
            return ExitCodes.Ok;
        }
        catch (InvalidOperationException e)
        {
            Commands.WriteErrors([$"etcd member remove: {e.Message}"]);
            return ExitCodes.RuntimeFailure;
        }
    }

    /// <summary>The selected datastore's cluster capability with the running node's settings; null after writing the error.</summary>
    private static (IDatastoreCluster, NodeSettings, IReadOnlyDictionary<string, string>)? Cluster(ParseResult result, Command command, string what, out int exit)
    {
        exit = ExitCodes.InvalidConfig;
        var plan = Commands.Plan("server", result, command);
        if (plan.Errors.Count > 0)
        {
            Commands.WriteErrors(plan.Errors);
            exit = plan.ExitCode;
            return null;
        }

        var config = Commands.PreferRunningNode(plan.Config, Commands.Environ());
        var entry = plan.Selection?.Single(ExtensionPoints.Datastore);
        if (entry is null || !entry.Metadata.Implemented || plan.Instance(entry) is not IDatastoreCluster cluster)
        {
            Commands.WriteErrors([$"etcd {what}: the {entry?.Name ?? "selected"} datastore has no members; start the server with --cluster-init (or cluster-init = true in [server] of appliance.toml) for an embedded etcd"]);
            return null;
        }

        return (cluster, config.ToNodeSettings(), config.OptionsOf(entry.Name));
    }
}
