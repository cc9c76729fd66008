using System.Composition;
using System.Composition.Hosting;
using System.Reflection;
using Coracle.Plugins;
using McMaster.NETCore.Plugins;
using Microsoft.Extensions.Logging;

namespace Coracle.Core.Composition;

/// <summary>
/// Loads every plugin folder in its own load context (contracts, composition attributes and logging shared
/// with the host) and composes all exports in one <see cref="ContainerConfiguration"/>. Nothing is
/// constructed here; <see cref="PluginEntry.Create"/> does that for the selected plugins only.
/// </summary>
internal sealed class PluginCatalog
{
    /// <summary>The contract type of each extension point.</summary>
    public static IReadOnlyDictionary<string, Type> Contracts { get; } = new Dictionary<string, Type>
    {
        [ExtensionPoints.Datastore] = typeof(IDatastore),
        [ExtensionPoints.ContainerRuntime] = typeof(IContainerRuntime),
        [ExtensionPoints.RuntimeHandler] = typeof(IRuntimeHandlerProvider),
        [ExtensionPoints.Cni] = typeof(ICniPlugin),
        [ExtensionPoints.Ingress] = typeof(IIngressController),
        [ExtensionPoints.LoadBalancer] = typeof(IServiceLoadBalancer),
        [ExtensionPoints.Addon] = typeof(IAddon),
    };

    private static readonly Type[] SharedTypes =
    [
        typeof(IPluginContext),
        typeof(ExportAttribute),
        typeof(ILogger),
    ];

    private PluginCatalog(IReadOnlyList<PluginEntry> entries, IReadOnlyList<PluginFolder> folders)
    {
        Entries = entries;
        Folders = folders;
    }

    public IReadOnlyList<PluginEntry> Entries { get; }

    public IReadOnlyList<PluginFolder> Folders { get; }

    /// <summary>Every setting the installed plugins declare.</summary>
    public IReadOnlyList<Configuration.Setting> Settings => Entries.SelectMany(e => e.Settings).ToList();

    /// <summary>A catalog of no plugins (when loading failed; the failure is reported by the plan).</summary>
    public static PluginCatalog Empty { get; } = new([], []);

    public static PluginCatalog Load(IReadOnlyList<PluginFolder> folders)
    {
        var assemblies = new List<(Assembly Assembly, PluginFolder Folder)>();
        foreach (var folder in folders)
        {
            Assembly assembly;
            try
            {
                var loader = PluginLoader.CreateFromAssemblyFile(folder.AssemblyPath, SharedTypes, config =>
                {
                    config.PreferSharedTypes = true;
                });
                assembly = loader.LoadDefaultAssembly();
                _ = assembly.GetTypes();
            }
            catch (Exception ex) when (ex is BadImageFormatException or FileLoadException or FileNotFoundException
                or ReflectionTypeLoadException or TypeLoadException or InvalidOperationException)
            {
                var cause = ex is ReflectionTypeLoadException rtle && rtle.LoaderExceptions.FirstOrDefault() is { } first
                    ? first.Message
                    : ex.Message;
                throw new CompositionException(
                    $"plugin '{folder.Name}' failed to load from {folder.AssemblyPath}: {OneLine(cause)}; reinstall it or remove its folder", ExitCodes.PluginFailure);
            }

            assemblies.Add((assembly, folder));
        }

        var configuration = new ContainerConfiguration()
            .WithAssembly(typeof(PluginCatalog).Assembly)
            .WithAssemblies(assemblies.Select(a => a.Assembly));

        CompositionHost container;
        try
        {
            container = configuration.CreateContainer();
        }
        catch (Exception ex) when (ex is System.Composition.Hosting.CompositionFailedException or ReflectionTypeLoadException)
        {
            throw new CompositionException($"plugins could not be composed: {OneLine(ex.Message)}", ExitCodes.PluginFailure);
        }

        // Which folder exported which name: read from the attributes, without constructing anything.
        var origin = new Dictionary<(string, Type), List<(PluginFolder Folder, string Version, Type Type)>>();
        foreach (var (assembly, folder) in assemblies)
        {
            var version = assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
                ?? assembly.GetName().Version?.ToString() ?? "?";
            version = version.Split('+')[0];
            foreach (var type in assembly.GetTypes())
            {
                foreach (var attribute in type.GetCustomAttributes<CoraclePluginAttribute>())
                {
                    var key = (attribute.Name.ToLowerInvariant(), attribute.ContractType!);
                    if (!origin.TryGetValue(key, out var list))
                    {
                        origin[key] = list = [];
                    }

                    list.Add((folder, version, type));
                }
            }
        }

        var entries = new List<PluginEntry>();
        entries.AddRange(Collect<IDatastore>(container, origin));
        entries.AddRange(Collect<IContainerRuntime>(container, origin));
        entries.AddRange(Collect<IRuntimeHandlerProvider>(container, origin));
        entries.AddRange(Collect<ICniPlugin>(container, origin));
        entries.AddRange(Collect<IIngressController>(container, origin));
        entries.AddRange(Collect<IServiceLoadBalancer>(container, origin));
        entries.AddRange(Collect<IAddon>(container, origin));

        foreach (var group in entries.GroupBy(e => e.Name, StringComparer.OrdinalIgnoreCase))
        {
            var list = group.ToList();
            if (list.Count > 1)
            {
                throw new CompositionException(
                    $"plugin name '{group.Key}' is exported {list.Count} times (by {string.Join(" and ", list.Select(e => e.Folder).Distinct())}); remove one of the plugin folders", ExitCodes.PluginFailure);
            }
        }

        foreach (var entry in entries)
        {
            if (!Contracts.TryGetValue(entry.Point, out var contract) || contract != entry.Contract)
            {
                throw new CompositionException(
                    $"plugin '{entry.Name}' in {entry.Folder} declares extension point '{entry.Point}' but exports {entry.Contract.Name}; fix its [CoraclePlugin] attribute", ExitCodes.PluginFailure);
            }
        }

        var declarations = PluginSettings.Check(entries);
        if (declarations.Count > 0)
        {
            throw new CompositionException(declarations, ExitCodes.PluginFailure);
        }

        return new PluginCatalog(entries, folders);
    }

    private static IEnumerable<PluginEntry> Collect<T>(
        CompositionHost container,
        Dictionary<(string, Type), List<(PluginFolder Folder, string Version, Type Type)>> origin)
    {
        var seen = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
        foreach (var factory in container.GetExports<ExportFactory<T, PluginMetadata>>())
        {
            var name = factory.Metadata.Name;
            var index = seen.GetValueOrDefault(name);
            seen[name] = index + 1;
            var from = origin.TryGetValue((name.ToLowerInvariant(), typeof(T)), out var list) && index < list.Count
                ? list[index]
                : (Folder: new PluginFolder("(core)", ""), Version: "?", Type: null!);
            yield return PluginEntry.From(factory, from.Folder.Directory, from.Version, from.Type);
        }
    }

    private static string OneLine(string text) =>
        text.ReplaceLineEndings(" ").Trim();
}
