namespace Coracle.TestPlugins.Dependency;

/// <summary>A base type the dependent plugin derives from; deleting this assembly breaks the plugin's types.</summary>
public abstract class HelperBase
{
    /// <summary>A value.</summary>
    public virtual string Name => "helper";
}
