using System.CommandLine;
using System.Globalization;
using System.Text;
using Coracle.Core.Composition;
using Coracle.Core.Configuration;
using Coracle.Core.Hosting;
using Coracle.Core.Logging;
using Coracle.Core.Status;

namespace Coracle.Core.Cli;

/// <summary>The actions behind each command. Each returns its exit code explicitly.</summary>
internal static class Commands
{
    public static Task<int> ServerAsync(ParseResult result, Command command, CancellationToken ct) =>
        RunNodeAsync("server", result, command, ct);

    public static Task<int> AgentAsync(ParseResult result, Command command, CancellationToken ct) =>
        RunNodeAsync("agent", result, command, ct);

    private static async Task<int> RunNodeAsync(string role, ParseResult result, Command command, CancellationToken ct)
    {
        // Plan (nothing on disk changes), then apply only a plan without errors.
        var plan = Plan(role, result, command);
        if (plan.Errors.Count > 0)
        {
            WriteErrors(plan.Errors);
            return plan.ExitCode;
        }

        var config = plan.Config;
        using var loggers = LoggingSetup.Create(config.LogFormat, config.LogLevel);
        try
        {
            return role == "server"
                ? await new ServerStart(plan, loggers).RunAsync(ct)
                : await new AgentStart(plan, loggers).RunAsync(ct);
        }
        catch (ConfigException ex)
        {
            WriteErrors(ex.Errors.Select(e => e.ToString()));
            return ExitCodes.InvalidConfig;
        }
        catch (CompositionException ex)
        {
            WriteErrors(ex.Messages);
            return ex.ExitCode;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            return ExitCodes.Ok;
        }
        catch (Exception ex) when (ex is StepFailedException or IOException or UnauthorizedAccessException or InvalidOperationException or System.Net.Sockets.SocketException
            or Identity.CertificateFileException or Identity.TokenFormatException or Join.JoinException)
        {
            WriteErrors([ex.Message]);
            return ExitCodes.RuntimeFailure;
        }
    }

    public static async Task<int> PluginsListAsync(ParseResult result, Command command, CancellationToken ct)
    {
        var config = LoadConfig("server", result, command);
        if (config is null)
        {
            return ExitCodes.InvalidConfig;
        }

        config = PreferRunningNode(config, Environ());

        // A running node knows what it selected and why; without flags, show that.
        var anyFlag = CommandLineBuilder.SettingOptions[command].Any(kv => kv.Key != Settings.DataDir && result.GetResult(kv.Value) is not null);
        if (!anyFlag && await StatusClient.ReadAsync(config.StatusSocket, ct) is { } running)
        {
            Console.WriteLine($"plugins of the running {running.Role} (pid {running.Pid}):");
            Console.Write(PluginTable(running.Plugins));
            return ExitCodes.Ok;
        }

        PluginCatalog catalog;
        try
        {
            catalog = PluginComposition.Load(config);
        }
        catch (CompositionException ex)
        {
            WriteErrors(ex.Messages);
            return ex.ExitCode;
        }

        try
        {
            var selection = PluginSelector.Select(catalog.Entries, config, PluginComposition.Architecture);
            Console.Write(PluginTable(NodeSteps.PluginViews(selection)));
            return ExitCodes.Ok;
        }
        catch (CompositionException ex)
        {
            // Still show what is installed; the selection error says what to fix.
            Console.Write(PluginTable(catalog.Entries.Select(e => new PluginView(e.Name, e.Point, e.Version,
                e.Metadata.Architectures.Count == 0 ? "any" : string.Join("/", e.Metadata.Architectures), false, "selection failed", e.Folder))));
            WriteErrors(ex.Messages);
            return ex.ExitCode;
        }
    }

    public static Task<int> ConfigCheckAsync(ParseResult result, Command command, CancellationToken ct)
    {
        // Exactly the plan `coracle server` makes before it changes anything: the same errors, the same exit code.
        var plan = Plan("server", result, command);
        var config = plan.Config;
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"# effective configuration (file: {config.ConfigFile ?? "none, defaults"})\n");
        var pluginSettings = plan.Catalog?.Settings ?? [];
        foreach (var (section, all) in Settings.BySection(pluginSettings))
        {
            var settings = all.Where(config.Sources.ContainsKey).ToList();
            if (settings.Count == 0)
            {
                continue;
            }

            if (section.Length > 0)
            {
                text.Append(CultureInfo.InvariantCulture, $"\n[{section}]\n");
            }

            foreach (var setting in settings)
            {
                var value = config.Sources[setting];
                var shown = setting.Secret && value.Value is string s && s.Length > 0 ? "\"********\"" : SettingParser.Format(value.Value);
                text.Append(CultureInfo.InvariantCulture, $"{setting.Key} = {shown}  # {value.Source}\n");
            }
        }

        // Tables of plugins that declare no settings, as written.
        foreach (var (plugin, options) in config.PluginOptions.Where(p => !pluginSettings.Any(s => s.Plugin.Equals(p.Key, StringComparison.OrdinalIgnoreCase))))
        {
            text.Append(CultureInfo.InvariantCulture, $"\n[plugins.{plugin}]\n");
            foreach (var (key, value) in options)
            {
                text.Append(CultureInfo.InvariantCulture, $"{key} = \"{value}\"  # {config.ConfigFile}\n");
            }
        }

        if (plan.Selection is { } selection)
        {
            text.Append("\n# plugins: the active one of each extension point, and why\n");
            foreach (var d in selection.Decisions.OrderBy(d => d.Entry.Point, StringComparer.Ordinal).ThenBy(d => d.Entry.Name, StringComparer.Ordinal))
            {
                text.Append(CultureInfo.InvariantCulture, $"# {d.Entry.Point} {d.Entry.Name}: {(d.Selected ? "selected" : "off")} ({d.Why})\n");
            }
        }

        Console.Write(text.ToString());
        if (plan.Errors.Count > 0)
        {
            WriteErrors(plan.Errors);
        }

        return Task.FromResult(plan.ExitCode);
    }

    /// <summary>The start-up plan from the command line, the environment and the configuration file.</summary>
    internal static StartPlan Plan(string role, ParseResult result, Command command) =>
        StartPlan.Make(role, result.GetValue(CommandLineBuilder.ConfigOption), Environ(), Flags(result, command));

    public static async Task<int> StatusAsync(ParseResult result, Command command, CancellationToken ct)
    {
        if (LoadConfig("server", result, command) is not { } loaded)
        {
            return ExitCodes.InvalidConfig;
        }

        var config = PreferRunningNode(loaded, Environ());
        var status = await StatusClient.ReadAsync(config.StatusSocket, ct);
        if (status is null)
        {
            WriteErrors([$"no coracle node is running with data dir {config.DataDir} (nothing answers on {config.StatusSocket}); start one with 'coracle server' or pass --data-dir"]);
            return ExitCodes.RuntimeFailure;
        }

        if (result.GetValue(CommandLineBuilder.JsonOption))
        {
            Console.WriteLine(System.Text.Json.JsonSerializer.Serialize(status, StatusJson.Default.NodeStatus));
            return Unhealthy(status) is null ? ExitCodes.Ok : ExitCodes.RuntimeFailure;
        }

        var uptime = DateTimeOffset.UtcNow - status.StartedAt;
        Console.WriteLine($"{status.Role} {status.NodeName}  coracle {status.Version}  pid {status.Pid}  up {SettingParser.FormatDuration(TimeSpan.FromSeconds(Math.Floor(uptime.TotalSeconds)))}");
        if (status.JoinedFrom is { } joinedFrom)
        {
            Console.WriteLine($"joined the cluster of {joinedFrom}");
        }
        Console.WriteLine();
        var rows = status.Components.Select(c => new[]
        {
            c.Name, c.State, c.Pid?.ToString(CultureInfo.InvariantCulture) ?? "-", c.Restarts.ToString(CultureInfo.InvariantCulture), c.Detail,
        }).ToList();
        Console.Write(Table(["COMPONENT", "STATE", "PID", "RESTARTS", "DETAIL"], rows));
        if (status.Addons is { Count: > 0 } addons)
        {
            Console.WriteLine();
            Console.Write(AddonTable(addons));
        }

        if (Unhealthy(status) is { } unhealthy)
        {
            WriteErrors([$"status: {unhealthy}; its DETAIL column says why"]);
            return ExitCodes.RuntimeFailure;
        }

        return ExitCodes.Ok;
    }

    /// <summary>
    /// The components that are in trouble and will not get out of it by waiting (failed: gave up restarting; degraded:
    /// running, but what it watches is not, such as etcd without quorum), as "NAME is STATE, ..."; null when none is.
    /// Starting, pending, back-off and unavailable (a component this node does not run) are not trouble for the exit code.
    /// </summary>
    internal static string? Unhealthy(NodeStatus status)
    {
        var bad = status.Components.Where(c => c.State is "failed" or "degraded").Select(c => $"{c.Name} is {c.State}").ToList();
        return bad.Count == 0 ? null : string.Join(", ", bad);
    }

    /// <summary><c>coracle status</c>'s add-ons: name, state, objects owned, pods ready of wanted, one line of detail.</summary>
    internal static string AddonTable(IReadOnlyList<AddonView> addons) =>
        Table(["ADDON", "STATE", "OBJECTS", "PODS", "DETAIL"], addons.Select(a => new[]
        {
            a.Name,
            a.State,
            a.State is "disabled" or "pending" && a.Objects == 0 ? "-" : a.Objects.ToString(CultureInfo.InvariantCulture),
            a.PodsWanted is { } wanted ? $"{a.PodsReady ?? 0}/{wanted}" : "-",
            a.Detail,
        }).ToList());

    public static async Task<int> KillallAsync(ParseResult result, Command command, CancellationToken ct)
    {
        if (LoadConfig("server", result, command) is not { } config)
        {
            return ExitCodes.InvalidConfig;
        }

        if (!Directory.Exists(config.DataDir))
        {
            WriteErrors([$"data dir {config.DataDir} does not exist; pass the node's --data-dir"]);
            return ExitCodes.RuntimeFailure;
        }

        return await Node.Killall.RunAsync(config, line => Console.WriteLine($"killall: {line}"), ct);
    }

    public static int Version()
    {
        Console.WriteLine($"coracle version {VersionInfo.Version} ({System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription}, {PluginComposition.Architecture})");
        return ExitCodes.Ok;
    }

    private static string PluginTable(IEnumerable<PluginView> plugins) =>
        Table(["NAME", "POINT", "VERSION", "ARCH", "STATE", "WHY"], plugins
            .OrderBy(p => Plugins.ExtensionPoints.All.ToList().IndexOf(p.Point))
            .ThenBy(p => p.Name, StringComparer.Ordinal)
            .Select(p => new[] { p.Name, p.Point, p.Version, p.Architectures, p.Selected ? "selected" : "off", p.Why })
            .ToList());

    internal static string Table(string[] header, IReadOnlyList<string[]> rows)
    {
        var widths = header.Select((h, i) => Math.Max(h.Length, rows.Count == 0 ? 0 : rows.Max(r => r[i].Length))).ToArray();
        var text = new StringBuilder();
        foreach (var row in new[] { header }.Concat(rows))
        {
            text.Append(string.Join("  ", row.Select((cell, i) => i == row.Length - 1 ? cell : cell.PadRight(widths[i]))).TrimEnd());
            text.Append('\n');
        }

        return text.ToString();
    }

    internal static CoracleConfig? LoadConfig(string role, ParseResult result, Command command) =>
        TryLoad(role, result.GetValue(CommandLineBuilder.ConfigOption), Flags(result, command));

    private static Dictionary<Setting, IReadOnlyList<string>> Flags(ParseResult result, Command command)
    {
        var flags = new Dictionary<Setting, IReadOnlyList<string>>();
        foreach (var (setting, option) in CommandLineBuilder.SettingOptions[command])
        {
            if (result.GetResult(option) is { } optionResult)
            {
                flags[setting] = optionResult.Tokens.Select(t => t.Value).ToList();
            }
        }

        return flags;
    }

    /// <summary>Loads the configuration from file, environment and <paramref name="flags"/>; prints every error and returns null.</summary>
    internal static CoracleConfig? TryLoad(
        string role,
        string? configFile,
        IReadOnlyDictionary<Setting, IReadOnlyList<string>> flags,
        IReadOnlyDictionary<string, string>? environment = null,
        TextWriter? errors = null)
    {
        try
        {
            return ConfigLoader.Load(role, configFile, environment ?? Environ(), flags, CommandLineBuilder.PluginSettings);
        }
        catch (ConfigException ex)
        {
            WriteErrors(ex.Errors.Select(e => e.ToString()), errors);
            return null;
        }
    }

    /// <summary>
    /// For the verbs that talk to the node running here (status, plugins list, kubectl, ctr): when the user named no
    /// data dir (no --data-dir, CORACLE_DATA_DIR or appliance.toml key), the data dir the running node recorded
    /// (<see cref="RunRecord"/>), if its status socket answers; otherwise <paramref name="config"/> unchanged.
    /// </summary>
    internal static CoracleConfig PreferRunningNode(CoracleConfig config, IReadOnlyDictionary<string, string> environment)
    {
        if (config.Sources.TryGetValue(Settings.DataDir, out var source) && source.Source != "default")
        {
            return config;
        }

        var running = RunRecord.FindRunning(RunRecord.PathFor(environment, Environment.IsPrivilegedProcess));
        return running is null || running == config.DataDir ? config : config with { DataDir = running };
    }

    internal static Dictionary<string, string> Environ()
    {
        var env = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (System.Collections.DictionaryEntry entry in Environment.GetEnvironmentVariables())
        {
            env[(string)entry.Key] = (string?)entry.Value ?? "";
        }

        return env;
    }

    internal static void WriteErrors(IEnumerable<string> errors, TextWriter? to = null)
    {
        to ??= Console.Error;
        foreach (var error in errors)
        {
            to.WriteLine($"coracle: error: {error}");
        }
    }
}
