namespace Coracle.Plugins;

/// <summary>The runtime-handler extension point: discovers extra OCI runtimes. Any number are active.</summary>
public interface IRuntimeHandlerProvider
{
    /// <summary>Returns the handlers found on this host; none found is not an error.</summary>
    IReadOnlyList<RuntimeHandler> Discover(IPluginContext context);
}
