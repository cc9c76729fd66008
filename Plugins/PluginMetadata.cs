namespace Coracle.Plugins;

/// <summary>
/// The metadata view the host composes plugins with. System.Composition needs a concrete class here;
/// it fills it from the properties of <see cref="CoraclePluginAttribute"/>.
/// </summary>
public sealed class PluginMetadata
{
    /// <summary>Builds the view from System.Composition's metadata dictionary.</summary>
    public PluginMetadata(IDictionary<string, object> metadata)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        Name = Get(metadata, nameof(Name), "");
        ExtensionPoint = Get(metadata, nameof(ExtensionPoint), "");
        Architectures = Get(metadata, nameof(Architectures), Array.Empty<string>());
        Description = Get(metadata, nameof(Description), "");
        Conflicts = Get(metadata, nameof(Conflicts), Array.Empty<string>());
        Implemented = Get(metadata, nameof(Implemented), true);
        Order = Get(metadata, nameof(Order), 0);
        EndpointSchemes = Get(metadata, nameof(EndpointSchemes), Array.Empty<string>());
        HasCleanup = Get(metadata, nameof(HasCleanup), false);
        IsDefault = Get(metadata, nameof(IsDefault), false);
    }

    /// <summary>Builds the view directly (tests, listings).</summary>
    public PluginMetadata(string name, string extensionPoint)
    {
        Name = name;
        ExtensionPoint = extensionPoint;
        Architectures = [];
        Description = "";
        Conflicts = [];
        Implemented = true;
        EndpointSchemes = [];
    }

    /// <inheritdoc cref="CoraclePluginAttribute.Name"/>
    public string Name { get; init; }

    /// <inheritdoc cref="CoraclePluginAttribute.ExtensionPoint"/>
    public string ExtensionPoint { get; init; }

    /// <inheritdoc cref="CoraclePluginAttribute.Architectures"/>
    public IReadOnlyList<string> Architectures { get; init; }

    /// <inheritdoc cref="CoraclePluginAttribute.Description"/>
    public string Description { get; init; }

    /// <inheritdoc cref="CoraclePluginAttribute.Conflicts"/>
    public IReadOnlyList<string> Conflicts { get; init; }

    /// <inheritdoc cref="CoraclePluginAttribute.Implemented"/>
    public bool Implemented { get; init; }

    /// <inheritdoc cref="CoraclePluginAttribute.Order"/>
    public int Order { get; init; }

    /// <inheritdoc cref="CoraclePluginAttribute.EndpointSchemes"/>
    public IReadOnlyList<string> EndpointSchemes { get; init; }

    /// <inheritdoc cref="CoraclePluginAttribute.IsDefault"/>
    public bool IsDefault { get; init; }

    /// <inheritdoc cref="CoraclePluginAttribute.HasCleanup"/>
    public bool HasCleanup { get; init; }

    private static T Get<T>(IDictionary<string, object> metadata, string key, T fallback) =>
        metadata.TryGetValue(key, out var value) && value is T typed ? typed : fallback;
}
