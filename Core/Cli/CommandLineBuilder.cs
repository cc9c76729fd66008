using System.CommandLine;
using Coracle.Core.Configuration;

namespace Coracle.Core.Cli;

/// <summary>
/// The CLI only turns flags into a configuration and hands it on. Every setting flag is generated from
/// <see cref="Settings"/>, so flags, appliance.toml keys and CORACLE_* variables can never drift apart.
/// </summary>
internal static class CommandLineBuilder
{
    public static readonly Option<string> ConfigOption = new("--config", "-c")
    {
        Description = $"appliance.toml to read (default {ConfigLoader.DefaultConfigFile}; CORACLE_CONFIG_FILE)",
        HelpName = "FILE",
    };

    /// <summary><c>coracle status --json</c>: the node's status document as the status socket sends it.</summary>
    public static readonly Option<bool> JsonOption = new("--json")
    {
        Description = "Print the status as one JSON document (components, plugins, add-ons) instead of tables",
    };

    /// <summary>The command tree; <paramref name="pluginSettings"/> (the installed plugins' settings) become flags like Coracle's own.</summary>
    public static RootCommand Build(IReadOnlyList<Setting>? pluginSettings = null)
    {
        PluginSettings = pluginSettings ?? [];
        var root = new RootCommand("Coracle: a lightweight Kubernetes distribution for edge appliances");
        root.Subcommands.Add(NodeCommand("server", "Run a server node: datastore, control plane and node components", Commands.ServerAsync));
        root.Subcommands.Add(NodeCommand("agent", "Run an agent node that joins a server", Commands.AgentAsync));

        var plugins = new Command("plugins", "Inspect installed plugins");
        plugins.Subcommands.Add(NodeCommand("list", "List installed plugins and whether each is selected, and why", Commands.PluginsListAsync, includeAgentOnly: true));
        root.Subcommands.Add(plugins);

        var config = new Command("config", "Inspect configuration");
        config.Subcommands.Add(NodeCommand("check", "Validate the configuration and print the effective values with their sources", Commands.ConfigCheckAsync, includeAgentOnly: true));
        var defaults = new Command("default", "Print the documented default appliance.toml (every key with its default)");
        defaults.SetAction(_ =>
        {
            Console.Write(DefaultConfigWriter.Render(PluginSettings));
            return ExitCodes.Ok;
        });
        config.Subcommands.Add(defaults);
        root.Subcommands.Add(config);

        IdentityCommands.AddTo(root);
        SecretsEncryptCommands.AddTo(root);
        UpdateCommands.AddTo(root);
        SnapshotCommands.AddTo(root);
        EtcdCommands.AddTo(root);

        var status = DataDirCommand("status", "Show the components and add-ons of the node running on this machine and their state", Commands.StatusAsync);
        status.Options.Add(JsonOption);
        root.Subcommands.Add(status);
        root.Subcommands.Add(DataDirCommand("killall", "Stop the node on this data dir with all its containers and remove its network state, mounts, sysctls and cgroups (like k3s-killall.sh)", Commands.KillallAsync));

        // Handled before parsing (Program.cs) so that every argument reaches the tool; listed here for --help.
        root.Subcommands.Add(new Command("kubectl", "Run kubectl (components dir or PATH) with the admin kubeconfig"));
        root.Subcommands.Add(new Command("ctr", "Run ctr against the container runtime socket this node recorded, in the k8s.io namespace"));

        var version = new Command("version", "Print the version");
        version.SetAction(_ => Commands.Version());
        root.Subcommands.Add(version);
        return root;
    }

    /// <summary>The installed plugins' settings the command line was built with.</summary>
    public static IReadOnlyList<Setting> PluginSettings { get; private set; } = [];

    /// <summary>Flag options of a command, keyed by setting; filled in when the command is built.</summary>
    public static Dictionary<Command, Dictionary<Setting, Option>> SettingOptions { get; } = [];

    /// <summary>A command about the node on one data dir: only --config and --data-dir.</summary>
    private static Command DataDirCommand(string name, string description, Func<ParseResult, Command, CancellationToken, Task<int>> action)
    {
        var command = new Command(name, description);
        command.Options.Add(ConfigOption);
        var dataDir = FlagOption(Settings.DataDir);
        command.Options.Add(dataDir);
        SettingOptions[command] = new Dictionary<Setting, Option> { [Settings.DataDir] = dataDir };
        command.SetAction((result, ct) => action(result, command, ct));
        return command;
    }

    internal static Command NodeCommand(
        string name,
        string description,
        Func<ParseResult, Command, CancellationToken, Task<int>> action,
        bool includeAgentOnly = false)
    {
        var command = new Command(name, description);
        command.Options.Add(ConfigOption);
        var options = new Dictionary<Setting, Option>();
        foreach (var setting in Settings.All.Concat(PluginSettings))
        {
            if (name == "agent" && setting.ServerOnly && !includeAgentOnly)
            {
                continue;
            }

            var option = FlagOption(setting);
            options[setting] = option;
            command.Options.Add(option);
        }

        SettingOptions[command] = options;
        command.SetAction((result, ct) => action(result, command, ct));
        return command;
    }

    private static Option FlagOption(Setting setting)
    {
        var help = setting.Help;
        if (setting.Choices.Count > 0)
        {
            help += $" ({string.Join("|", setting.Choices)})";
        }

        var defaultText = setting.Default switch
        {
            string s when s.Length > 0 => s,
            long l => l.ToString(System.Globalization.CultureInfo.InvariantCulture),
            _ => null,
        };
        if (defaultText is not null)
        {
            help += $" [default: {defaultText}]";
        }

        help += $" [env: {setting.EnvironmentVariable}]";
        var helpName = setting.Kind switch
            {
                SettingKind.StringList or SettingKind.IpList => "VALUE[,VALUE]",
                SettingKind.ArgList => "NAME=VALUE",
                SettingKind.Duration => "DURATION",
                SettingKind.Integer => "N",
                SettingKind.Cidr => "CIDR",
                SettingKind.IpAddress => "IP",
                SettingKind.FileMode => "MODE",
                _ => "VALUE",
            };
        return setting.Kind is SettingKind.StringList or SettingKind.IpList or SettingKind.ArgList
            ? new Option<string[]>("--" + setting.Flag, setting.Aliases.Select(a => "--" + a).ToArray())
            {
                Description = help,
                HelpName = helpName,
                Arity = ArgumentArity.OneOrMore,
                AllowMultipleArgumentsPerToken = false,
            }
            : new Option<string>("--" + setting.Flag, setting.Aliases.Select(a => "--" + a).ToArray())
            {
                Description = help,
                HelpName = helpName,
                // A boolean flag alone means true (--secrets-encryption), as in K3s; --flag=false still turns it off.
                Arity = setting.Kind == SettingKind.Boolean ? ArgumentArity.ZeroOrOne : ArgumentArity.ExactlyOne,
            };
    }
}
