using System.CommandLine;
using System.Globalization;
using Coracle.Core.Configuration;
using Coracle.Core.Hosting;
using Coracle.Core.Snapshots;

namespace Coracle.Core.Cli;

/// <summary>
/// <c>coracle etcd-snapshot save|ls|delete|prune</c>, K3s's subcommand and flags. <c>save</c> asks the running server's
/// datastore for a snapshot (etcd's <c>Maintenance.Snapshot</c> on the endpoint the datastore plugin names); the others
/// work on the snapshot folder (docs/ha.md).
/// </summary>
internal static class SnapshotCommands
{
    private static readonly Option<string> NameOption = new("--name")
    {
        Description = $"Base name of the snapshot (save) or of the snapshots to prune [default: {SnapshotStore.OnDemandName}]",
        HelpName = "NAME",
    };

    private static readonly Option<string> DirOption = new("--dir")
    {
        Description = "Snapshot folder (same as --etcd-snapshot-dir) [default: DATA/server/db/snapshots]",
        HelpName = "DIR",
    };

    private static readonly Option<string> RetentionOption = new("--snapshot-retention")
    {
        Description = "Snapshots of --name to keep, the newest (same as --etcd-snapshot-retention) [default: 5]",
        HelpName = "N",
    };

    private static readonly Argument<string[]> NamesArgument = new("NAME")
    {
        Description = "Snapshot file names, as 'ls' prints them",
        Arity = ArgumentArity.OneOrMore,
    };

    public static void AddTo(RootCommand root)
    {
        var command = new Command("etcd-snapshot", "Save, list, delete and prune snapshots of the server's datastore (docs/ha.md)");
        var save = Node("save", "Save a snapshot of the running server's datastore as NAME-NODE-UNIXTIME in the snapshot folder", SaveAsync);
        save.Options.Add(NameOption);
        var ls = Node("ls", "List the snapshots: name, location, size, created, node, sha256", ListAsync);
        ls.Aliases.Add("list");
        var delete = Node("delete", "Delete snapshots by name", DeleteAsync);
        delete.Arguments.Add(NamesArgument);
        var prune = Node("prune", "Delete all but the newest --snapshot-retention snapshots of this node named --name", PruneAsync);
        prune.Options.Add(NameOption);
        prune.Options.Add(RetentionOption);
        foreach (var sub in new[] { save, ls, delete, prune })
        {
            sub.Options.Add(DirOption);
            command.Subcommands.Add(sub);
        }

        root.Subcommands.Add(command);
    }

    private static Command Node(string name, string description, Func<ParseResult, Command, CancellationToken, Task<int>> action) =>
        CommandLineBuilder.NodeCommand(name, description, action);

    private static async Task<int> SaveAsync(ParseResult result, Command command, CancellationToken ct)
    {
        var plan = Commands.Plan("server", result, command);
        if (plan.Errors.Count > 0)
        {
            Commands.WriteErrors(plan.Errors);
            return plan.ExitCode;
        }

        var config = await RunningNodeNameAsync(Commands.PreferRunningNode(plan.Config, Commands.Environ()), ct);
        var name = result.GetValue(NameOption) ?? SnapshotStore.OnDemandName;
        if (SnapshotStore.NameProblem(name) is { } problem)
        {
            Commands.WriteErrors([$"--name: {problem}"]);
            return ExitCodes.InvalidConfig;
        }

        var store = Store(result, config);
        try
        {
            if (await ServerSnapshots.SaveAsync(plan, config, store, name, ct) is not { } record)
            {
                Commands.WriteErrors([$"etcd-snapshot save: the {ServerSnapshots.Datastore(plan).Name} datastore has no snapshots; back up its data with its own tools"]);
                return ExitCodes.RuntimeFailure;
            }

            Console.WriteLine($"Snapshot {record.Name} saved: {record.Size} bytes, revision {record.Revision}, sha256 {record.Sha256}, in {record.Location}");
            return ExitCodes.Ok;
        }
        catch (Exception e) when (e is SnapshotException or IOException or UnauthorizedAccessException)
        {
            Commands.WriteErrors([$"etcd-snapshot save: {e.Message}; start 'coracle server' on data dir {config.DataDir} or pass the running server's --data-dir"]);
            return ExitCodes.RuntimeFailure;
        }
    }

    private static Task<int> ListAsync(ParseResult result, Command command, CancellationToken ct)
    {
        if (Load(result, command) is not { } config)
        {
            return Task.FromResult(ExitCodes.InvalidConfig);
        }

        var store = Store(result, config);
        try
        {
            Console.Write(Table(store.List()));
            return Task.FromResult(ExitCodes.Ok);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Commands.WriteErrors([$"etcd-snapshot ls: {store.Directory}: {e.Message}; check the folder or pass --dir"]);
            return Task.FromResult(ExitCodes.RuntimeFailure);
        }
    }

    /// <summary><c>ls</c>'s table: K3s's name, location, size and created, and Coracle's node and sha256.</summary>
    internal static string Table(IReadOnlyList<SnapshotRecord> records) =>
        Commands.Table(["NAME", "LOCATION", "SIZE", "CREATED", "NODE", "SHA256"], records.Select(r => new[]
        {
            r.Name,
            "file://" + r.Location,
            r.Size.ToString(CultureInfo.InvariantCulture),
            r.CreatedAt.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
            r.Node.Length > 0 ? r.Node : "-",
            r.Sha256.Length > 0 ? r.Sha256 : "-",
        }).ToList());

    private static Task<int> DeleteAsync(ParseResult result, Command command, CancellationToken ct)
    {
        if (Load(result, command) is not { } config)
        {
            return Task.FromResult(ExitCodes.InvalidConfig);
        }

        var store = Store(result, config);
        try
        {
            foreach (var name in store.Delete(result.GetValue(NamesArgument) ?? []))
            {
                Console.WriteLine($"Snapshot {name} deleted");
            }

            return Task.FromResult(ExitCodes.Ok);
        }
        catch (Exception e) when (e is SnapshotException or IOException or UnauthorizedAccessException)
        {
            Commands.WriteErrors([$"etcd-snapshot delete: {e.Message}"]);
            return Task.FromResult(ExitCodes.RuntimeFailure);
        }
    }

    private static async Task<int> PruneAsync(ParseResult result, Command command, CancellationToken ct)
    {
        if (Load(result, command) is not { } loaded)
        {
            return ExitCodes.InvalidConfig;
        }

        var config = await RunningNodeNameAsync(loaded, ct);

        var name = result.GetValue(NameOption) ?? SnapshotStore.OnDemandName;
        var retention = config.EtcdSnapshotRetention;
        if (result.GetValue(RetentionOption) is { } text)
        {
            if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out retention) || retention < 1)
            {
                Commands.WriteErrors([$"--snapshot-retention: '{text}' is not a number of snapshots of at least 1; write for example 5"]);
                return ExitCodes.InvalidConfig;
            }
        }

        if (SnapshotStore.NameProblem(name) is { } problem)
        {
            Commands.WriteErrors([$"--name: {problem}"]);
            return ExitCodes.InvalidConfig;
        }

        var store = Store(result, config);
        try
        {
            var pruned = store.Prune(name, retention);
            foreach (var deleted in pruned)
            {
                Console.WriteLine($"Snapshot {deleted} deleted");
            }

            Console.WriteLine($"kept the newest {retention} snapshots named {name}-{config.NodeName}-*; deleted {pruned.Count}");
            return ExitCodes.Ok;
        }
        catch (Exception e) when (e is SnapshotException or IOException or UnauthorizedAccessException)
        {
            Commands.WriteErrors([$"etcd-snapshot prune: {e.Message}"]);
            return ExitCodes.RuntimeFailure;
        }
    }

    /// <summary>
    /// Snapshot names carry the node name: without <c>--node-name</c> (or its variable or key), the running server's, as its
    /// status socket reports it, so the files match the node that took them; otherwise <paramref name="config"/> unchanged.
    /// </summary>
    private static async Task<CoracleConfig> RunningNodeNameAsync(CoracleConfig config, CancellationToken ct)
    {
        if (config.Sources.TryGetValue(Settings.NodeName, out var source) && source.Source != "default")
        {
            return config;
        }

        return await Status.StatusClient.ReadAsync(config.StatusSocket, ct) is { } running && running.NodeName.Length > 0
            ? config with { NodeName = running.NodeName }
            : config;
    }

    private static CoracleConfig? Load(ParseResult result, Command command) =>
        Commands.LoadConfig("server", result, command) is { } config ? Commands.PreferRunningNode(config, Commands.Environ()) : null;

    private static SnapshotStore Store(ParseResult result, CoracleConfig config)
    {
        var dir = result.GetValue(DirOption) is { Length: > 0 } d ? Path.GetFullPath(d) : config.SnapshotDir;
        return new SnapshotStore(dir, config.NodeName, TimeProvider.System);
    }
}
