using Coracle.Plugins;

namespace Coracle.TestPlugins.Addon;

/// <summary>An add-on that writes test-addon.yaml; <c>--test-addon-mode off</c> turns it off.</summary>
[CoraclePlugin("test-addon", ExtensionPoints.Addon, typeof(IAddon), Description = "test add-on")]
[PluginSetting("mode", "Test mode; off turns the add-on off", Default = "on", Choices = ["on", "off"], TurnsOff = ["off"])]
public sealed class TestAddon : IAddon
{
    /// <inheritdoc />
    public void Configure(IPluginContext context) =>
        context.Manifests.Write("test-addon.yaml", $"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: test-addon\n  namespace: default\ndata:\n  mode: {context.Options["mode"]}\n");
}

/// <summary>An add-on that is declared but not implemented.</summary>
[CoraclePlugin("idle-addon", ExtensionPoints.Addon, typeof(IAddon), Description = "test add-on, not implemented", Implemented = false)]
public sealed class IdleAddon : IAddon
{
    /// <inheritdoc />
    public void Configure(IPluginContext context) => throw new NotSupportedException("never constructed");
}
