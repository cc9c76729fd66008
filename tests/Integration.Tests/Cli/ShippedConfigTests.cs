using System.Reflection;
using Coracle.Integration.Tests.Support;

namespace Coracle.Integration.Tests.Cli;

/// <summary>
/// The shipped appliance.toml is what the built <c>coracle</c> with every shipped plugin renders as its documented
/// defaults (Coracle's settings and each plugin's own), and reading it back changes no value.
/// </summary>
[Trait("Category", "Integration")]
public sealed class ShippedConfigTests : IDisposable
{
    private readonly TempDir _temp = new("coracle-shipped");

    public void Dispose() => _temp.Dispose();

    private static string RepoRoot =>
        typeof(ShippedConfigTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "RepoRoot").Value!;

    private static string Coracle => Path.Combine(TestPlugins.CoreOutputDir, "coracle");

    [Fact]
    public async Task ApplianceToml_AtTheRepoRoot_IsTheRenderedDefaultOfTheHostAndEveryShippedPlugin()
    {
        var (code, stdout, stderr) = await CoracleProcess.RunAsync(Coracle, "config", "default");

        Assert.True(code == 0, stderr);

        // If this fails after adding a setting (Coracle's or a plugin's): Core/bin/Release/net10.0/coracle config default > appliance.toml
        Assert.Equal(stdout, await File.ReadAllTextAsync(Path.Combine(RepoRoot, "appliance.toml")));
        foreach (var table in new[] { "[plugins.flannel]", "[plugins.containerd]", "[plugins.sqlite]", "[plugins.calico]" })
        {
            Assert.Contains("\n" + table + "\n", stdout, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task ApplianceToml_Loaded_GivesTheDefaults()
    {
        var dataDir = _temp.Combine("data");
        var env = new Dictionary<string, string> { ["CORACLE_CONFIG_FILE"] = "" };
        var (_, withFile, fileErrors) = await CoracleProcess.RunAsync(Coracle, env,
            "config", "check", "--config", Path.Combine(RepoRoot, "appliance.toml"), "--data-dir", dataDir, "--node-name", "n1");
        var (_, defaults, _) = await CoracleProcess.RunAsync(Coracle, env, "config", "check", "--data-dir", dataDir, "--node-name", "n1");

        // Values only: the sources differ (file:line:column against "default").
        static List<string> Values(string text) => text.Split('\n')
            .Where(l => l.Contains(" = ", StringComparison.Ordinal) && !l.StartsWith('#'))
            .Select(l => l.Split("  # ")[0])
            .ToList();

        Assert.DoesNotContain("appliance.toml:", fileErrors, StringComparison.Ordinal);
        Assert.True(Values(defaults).Count > 60, defaults);
        Assert.Equal(Values(defaults), Values(withFile));
        Assert.Contains("backend = \"vxlan\"  # " + Path.Combine(RepoRoot, "appliance.toml"), withFile, StringComparison.Ordinal);
    }
}
