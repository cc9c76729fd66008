using System.CommandLine;
using System.Globalization;
using System.Text;
using Coracle.Core.Configuration;
using Coracle.Core.Logging;
using Coracle.Core.Status;
using Coracle.Core.Update;
using Microsoft.Extensions.Logging;

namespace Coracle.Core.Cli;

/// <summary>
/// <c>coracle update bundle|apply|status|rollback|mark-good</c>: signed bundles, A/B slots, the trial and its
/// rollback (docs/updates.md).
/// </summary>
internal static class UpdateCommands
{
    private static readonly Option<string> InstallRoot = new("--install-root")
    {
        Description = $"Install root holding slots/a, slots/b, current and update/ [default: {InstallLayout.DefaultRoot}]",
        HelpName = "DIR",
        DefaultValueFactory = _ => InstallLayout.DefaultRoot,
    };

    private static readonly Option<bool> NoRestart = new("--no-restart")
    {
        Description = "Switch the slot but do not restart Coracle (the next start runs it)",
    };

    public static void AddTo(RootCommand root)
    {
        var update = new Command("update", "Over-the-air updates: build signed bundles, apply them to the inactive slot, show and roll back slots");
        update.Subcommands.Add(BundleCommand());
        update.Subcommands.Add(ApplyCommand());

        var status = new Command("status", "Show the slots, their versions, which is current and good, the trial and the last result and why");
        status.Options.Add(InstallRoot);
        status.SetAction(result => Status(result.GetValue(InstallRoot)!));
        update.Subcommands.Add(status);

        var rollback = CommandLineBuilder.NodeCommand("rollback", "Switch back to the other slot (the good one while a trial runs) and restart Coracle", RollbackAsync);
        rollback.Options.Add(InstallRoot);
        rollback.Options.Add(NoRestart);
        update.Subcommands.Add(rollback);

        var markGood = new Command("mark-good", "Mark the current slot good by hand, ending its trial (the node does this itself once healthy)");
        markGood.Options.Add(InstallRoot);
        markGood.SetAction(result => MarkGood(result.GetValue(InstallRoot)!));
        update.Subcommands.Add(markGood);
        root.Subcommands.Add(update);
    }

    private static Command BundleCommand()
    {
        var image = new Option<string>("--image") { Description = "Image tarball (.tar.gz with usr/lib/coracle/, as packaging/build-image.sh makes)", HelpName = "TARBALL", Required = true };
        var key = new Option<string>("--key") { Description = "The vendor's signing key (PEM)", HelpName = "KEY", Required = true };
        var cert = new Option<string>("--cert") { Description = "The vendor's certificate (PEM; intermediates may follow it)", HelpName = "CERT", Required = true };
        var version = new Option<string>("--version") { Description = "The image's version", HelpName = "V", Required = true };
        var minVersion = new Option<string>("--min-version") { Description = "Oldest version this bundle may update from (default: any)", HelpName = "V", DefaultValueFactory = _ => "" };
        var output = new Option<string>("--output", "-o") { Description = "Bundle file to write", HelpName = "FILE", Required = true };
        var command = new Command("bundle", "Build and sign a bundle from an appliance image") { image, key, cert, version, minVersion, output };
        command.SetAction(result =>
        {
            try
            {
                var manifest = BundleFile.Build(result.GetValue(image)!, result.GetValue(key)!, result.GetValue(cert)!, result.GetValue(version)!, result.GetValue(minVersion)!, result.GetValue(output)!);
                Console.WriteLine($"{result.GetValue(output)}: version {manifest.Version}, profile {manifest.Profile}, {manifest.Rid}, {manifest.Files.Count} files, payload SHA-256 {manifest.PayloadSha256}");
                return ExitCodes.Ok;
            }
            catch (UpdateException ex)
            {
                Commands.WriteErrors([ex.Message]);
                return ex.ExitCode;
            }
        });
        return command;
    }

    private static Command ApplyCommand()
    {
        var source = new Argument<string>("FILE|URL") { Description = "Bundle file, or its https:// URL (downloaded with resume)" };
        var allowDowngrade = new Option<bool>("--allow-downgrade") { Description = "Install a version not newer than the running one" };
        var allowHttp = new Option<bool>("--allow-http") { Description = "Allow a plain http:// URL (the signature still protects the content)" };
        var downloadCa = new Option<string>("--download-ca") { Description = "Extra CA (PEM) trusted for the HTTPS download, beside the system store", HelpName = "FILE" };
        var command = CommandLineBuilder.NodeCommand("apply", "Verify a bundle, write it to the inactive slot, switch to it on trial and restart Coracle", (result, command, ct) => Task.FromResult(0));
        command.Arguments.Add(source);
        command.Options.Add(InstallRoot);
        command.Options.Add(allowDowngrade);
        command.Options.Add(allowHttp);
        command.Options.Add(downloadCa);
        command.Options.Add(NoRestart);
        command.SetAction((result, ct) => ApplyAsync(result, command, new ApplyOptions
        {
            Source = result.GetValue(source)!,
            CaFile = "",
            AllowDowngrade = result.GetValue(allowDowngrade),
            AllowHttp = result.GetValue(allowHttp),
            DownloadCa = result.GetValue(downloadCa),
        }, ct));
        return command;
    }

    private static async Task<int> ApplyAsync(ParseResult result, Command command, ApplyOptions options, CancellationToken ct)
    {
        if (Commands.LoadConfig("server", result, command) is not { } config)
        {
            return ExitCodes.InvalidConfig;
        }

        options = options with
        {
            CaFile = (string)config.Sources[Settings.UpdateCa].Value,
            DeadlineSeconds = (int)Math.Max(1, ((TimeSpan)config.Sources[Settings.UpdateTrialDeadline].Value).TotalSeconds),
            MaxAttempts = (int)Math.Clamp((long)config.Sources[Settings.UpdateTrialAttempts].Value, 1, 100),
        };
        using var loggers = LoggingSetup.Create(config.LogFormat, config.LogLevel);
        var log = loggers.CreateLogger("update");
        var layout = new InstallLayout(result.GetValue(InstallRoot)!);
        var node = Commands.PreferRunningNode(config, Commands.Environ());
        var running = await StatusClient.ReadAsync(node.StatusSocket, ct);
        IPreUpdateSnapshot snapshot = running is { Role: "server" }
            ? new DatastorePreUpdateSnapshot(Commands.Plan("server", result, command), running.NodeName.Length > 0 ? node with { NodeName = running.NodeName } : node)
            : new NoSnapshot("no server runs on this node, so there is no datastore to snapshot");
        try
        {
            var applier = new UpdateApplier(layout, log, snapshot);
            var (slot, manifest) = await applier.ApplyAsync(options, ct);
            applier.BeforeRestart();
            var how = result.GetValue(NoRestart)
                ? "skipped (--no-restart): the next start runs the new slot"
                : await Restarter.RestartAsync(layout, running, config.StopTimeout, ct);
            log.UpdateRestart(how);
            Console.WriteLine($"version {manifest.Version} is in slot {slot}, current, on trial; 'coracle update status' shows when it is marked good");
            return ExitCodes.Ok;
        }
        catch (UpdateException ex)
        {
            Commands.WriteErrors([ex.Message]);
            return ex.ExitCode;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Commands.WriteErrors([$"update apply: {ex.Message}; check the install root {layout.Root} (free space, permissions) and apply again"]);
            return ExitCodes.RuntimeFailure;
        }
    }

    private static int Status(string root)
    {
        var layout = new InstallLayout(root);
        var active = layout.ActiveSlot();
        if (active is null)
        {
            Commands.WriteErrors([$"{layout.Current}: is not a link to slots/a or slots/b; install with packaging/install.sh or pass the right --install-root"]);
            return ExitCodes.RuntimeFailure;
        }

        Console.Write(StatusText(layout, active, UpdateState.Read(layout.StateFile)));
        return ExitCodes.Ok;
    }

    internal static string StatusText(InstallLayout layout, string active, UpdateState? state)
    {
        state ??= new UpdateState { Good = active };
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"install root {layout.Root}, current slot {active}\n\n");
        var rows = InstallLayout.SlotNames.Select(slot =>
        {
            var image = layout.Image(slot);
            var exists = Directory.Exists(layout.SlotPath(slot));
            var role = slot == state.Incomplete ? "incomplete"
                : slot == state.Trial ? $"trial (start {state.Attempts} of {state.MaxAttempts}, {state.DeadlineSeconds} s each)"
                : slot == state.Good ? "good"
                : exists ? "previous" : "empty";
            return new[] { slot, image?.Version ?? (exists ? "?" : "-"), image?.Profile ?? "-", role, slot == active ? "*" : "" };
        }).ToList();
        text.Append(Commands.Table(["SLOT", "VERSION", "PROFILE", "STATE", "CURRENT"], rows));
        text.Append(CultureInfo.InvariantCulture, $"\nlast result: {(state.Result.Length == 0 ? "none" : $"{state.Result} at {state.Time}: {state.Reason}")}\n");
        return text.ToString();
    }

    private static async Task<int> RollbackAsync(ParseResult result, Command command, CancellationToken ct)
    {
        if (Commands.LoadConfig("server", result, command) is not { } config)
        {
            return ExitCodes.InvalidConfig;
        }

        var layout = new InstallLayout(result.GetValue(InstallRoot)!);
        try
        {
            var target = Rollback(layout);
            var node = Commands.PreferRunningNode(config, Commands.Environ());
            var running = await StatusClient.ReadAsync(node.StatusSocket, ct);
            var how = result.GetValue(NoRestart) ? "skipped (--no-restart)" : await Restarter.RestartAsync(layout, running, config.StopTimeout, ct);
            Console.WriteLine($"current -> slots/{target} (version {layout.Image(target)?.Version ?? "?"}); restart: {how}");
            return ExitCodes.Ok;
        }
        catch (UpdateException ex)
        {
            Commands.WriteErrors([ex.Message]);
            return ex.ExitCode;
        }
    }

    /// <summary>Points current at the other slot (the link first, then the state: a crash between leaves a trial that is not current, which the guard clears).</summary>
    internal static string Rollback(InstallLayout layout)
    {
        var active = layout.ActiveSlot() ?? throw new UpdateException(layout.Current, "is not a link to slots/a or slots/b", "install with packaging/install.sh or pass the right --install-root", ExitCodes.RuntimeFailure);
        var state = UpdateState.Read(layout.StateFile) ?? new UpdateState { Good = active };
        var target = InstallLayout.Other(active);
        if (state.Incomplete == target || !File.Exists(Path.Combine(layout.SlotPath(target), "coracle")))
        {
            throw new UpdateException("update rollback", $"slot {target} holds no complete image", "nothing to roll back to; apply a bundle instead", ExitCodes.RuntimeFailure);
        }

        layout.Switch(target);
        (state with { Good = target, Trial = "", Attempts = 0 })
            .WithResult("rolled-back", $"by hand from slot {active} (version {layout.Image(active)?.Version ?? "?"}) to slot {target}")
            .Write(layout.StateFile);
        return target;
    }

    private static int MarkGood(string root)
    {
        var layout = new InstallLayout(root);
        if (layout.ActiveSlot() is not { } active)
        {
            Commands.WriteErrors([$"{layout.Current}: is not a link to slots/a or slots/b; pass the right --install-root"]);
            return ExitCodes.RuntimeFailure;
        }

        UpdateGate.MarkGood(layout, active, "marked good by hand");
        Console.WriteLine($"slot {active} is good");
        return ExitCodes.Ok;
    }
}
