using System.Reflection;
using Coracle.Core.Configuration;

namespace Coracle.Core.Tests.Configuration;

public sealed class ShippedConfigTests
{
    private static string RepoRoot =>
        typeof(ShippedConfigTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "RepoRoot").Value!;

    [Fact]
    public void ApplianceToml_AtTheRepoRoot_IsTheRenderedDefaultWithEveryKey()
    {
        var shipped = File.ReadAllText(Path.Combine(RepoRoot, "appliance.toml"));

        // If this fails after adding a setting: coracle config default > appliance.toml
        Assert.Equal(DefaultConfigWriter.Render(), shipped);
        foreach (var setting in Settings.All)
        {
            Assert.Contains($"\n{setting.Key} = ", shipped, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void ApplianceToml_Loaded_GivesTheDefaults()
    {
        var config = ConfigLoader.Load("server", Path.Combine(RepoRoot, "appliance.toml"), new Dictionary<string, string> { ["HOME"] = "/root" }, new Dictionary<Setting, IReadOnlyList<string>>());
        var defaults = ConfigLoader.Load("server", null, new Dictionary<string, string> { ["HOME"] = "/root", ["CORACLE_CONFIG_FILE"] = "" }, new Dictionary<Setting, IReadOnlyList<string>>());

        foreach (var setting in Settings.All.Where(s => s != Settings.DataDir && s != Settings.NodeName))
        {
            Assert.Equal(SettingParser.Format(defaults.Sources[setting].Value), SettingParser.Format(config.Sources[setting].Value));
        }
    }
}
