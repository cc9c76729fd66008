using Coracle.Core.Composition;
using Coracle.Core.Configuration;
using Coracle.Plugins;

namespace Coracle.Core.Hosting;

/// <summary>
/// The first phase of <c>coracle server</c>/<c>agent</c> and all of <c>coracle config check</c>: read the configuration,
/// load and select the plugins, and check every selected plugin's options — collecting every error of all three and
/// changing nothing on disk. Only a plan without errors is applied (<see cref="ServerStart"/>, <see cref="AgentStart"/>).
/// </summary>
internal sealed class StartPlan
{
    private readonly Dictionary<PluginEntry, object> _instances = [];
    private readonly List<string> _errors = [];

    private StartPlan(CoracleConfig config)
    {
        Config = config;
    }

    /// <summary>The effective configuration (a wrong value keeps its default, and is among the errors).</summary>
    public CoracleConfig Config { get; }

    /// <summary>The installed plugins; null when they could not be loaded.</summary>
    public PluginCatalog? Catalog { get; private set; }

    /// <summary>The selection; null when it failed.</summary>
    public PluginSelection? Selection { get; private set; }

    /// <summary>Every problem, each one line in the house format's <c>WHERE: WHAT; FIX</c>.</summary>
    public IReadOnlyList<string> Errors => _errors;

    /// <summary>0 for a plan that can be applied, 3 when a plugin cannot be loaded or composed, else 2.</summary>
    public int ExitCode { get; private set; } = ExitCodes.Ok;

    /// <summary>Plans the start of <paramref name="role"/>; never throws for bad input.</summary>
    public static StartPlan Make(
        string role,
        string? configFile,
        IReadOnlyDictionary<string, string> environment,
        IReadOnlyDictionary<Setting, IReadOnlyList<string>> flags,
        string? architecture = null)
    {
        // Plugin settings are read like Coracle's own, so the plugins are loaded first, from the roots the configuration
        // names; then the whole configuration is read with their settings.
        var (config, configErrors) = ConfigLoader.LoadAll(role, configFile, environment, flags);
        PluginCatalog? catalog = null;
        CompositionException? loadFailure = null;
        try
        {
            catalog = PluginComposition.Load(config);
            if (catalog.Settings.Count > 0)
            {
                (config, configErrors) = ConfigLoader.LoadAll(role, configFile, environment, flags, catalog.Settings);
            }
        }
        catch (CompositionException ex)
        {
            loadFailure = ex;
        }

        var plan = new StartPlan(config);
        plan.Fail(configErrors.Select(e => e.ToString()), ExitCodes.InvalidConfig);
        if (loadFailure is not null || catalog is null)
        {
            plan.Fail(loadFailure?.Messages ?? [], loadFailure?.ExitCode ?? ExitCodes.PluginFailure);
            return plan;
        }

        plan.Catalog = catalog;

        try
        {
            plan.Selection = PluginSelector.Select(plan.Catalog.Entries, config, architecture ?? PluginComposition.Architecture);
        }
        catch (CompositionException ex)
        {
            plan.Fail(ex.Messages, ex.ExitCode);
            return plan;
        }

        var node = config.ToNodeSettings();
        foreach (var entry in plan.Selection.Decisions.Where(d => d.Selected && d.Entry.Metadata.Implemented).Select(d => d.Entry))
        {
            try
            {
                if (plan.Instance(entry) is IValidatesOptions validating)
                {
                    validating.ValidateOptions(node, config.OptionsOf(entry.Name), PluginDataDir(config, entry));
                }
            }
            catch (PluginConfigException ex)
            {
                plan.Fail([$"{OptionPlace(config, entry, ex.Key)}: {ex.Message}"], ExitCodes.InvalidConfig);
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                plan.Fail([$"{entry.Point} plugin {entry.Name}: checking its options failed: {ex.Message}; fix the plugin or --disable {entry.Name}"], ExitCodes.PluginFailure);
            }
        }

        return plan;
    }

    /// <summary>The one instance of a selected plugin, built on first use (selection never builds the others).</summary>
    public object Instance(PluginEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        if (!_instances.TryGetValue(entry, out var instance))
        {
            instance = entry.Create();
            _instances[entry] = instance;
        }

        return instance;
    }

    /// <summary>The folder a plugin's context hands it (<c>DATA/plugins/NAME</c>).</summary>
    public static string PluginDataDir(CoracleConfig config, PluginEntry entry)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(entry);
        return Path.Combine(config.DataDir, "plugins", entry.Name);
    }

    /// <summary>Where a plugin option is written: <c>FILE: [plugins.NAME] key</c>.</summary>
    public static string OptionPlace(CoracleConfig config, PluginEntry entry, string key)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(entry);
        return config.ConfigFile is null ? $"[plugins.{entry.Name}] {key}" : $"{config.ConfigFile}: [plugins.{entry.Name}] {key}";
    }

    private void Fail(IEnumerable<string> errors, int exitCode)
    {
        var before = _errors.Count;
        _errors.AddRange(errors);
        if (_errors.Count > before && ExitCode != ExitCodes.PluginFailure)
        {
            ExitCode = exitCode;
        }
    }
}
