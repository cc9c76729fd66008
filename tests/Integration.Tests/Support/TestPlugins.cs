using System.Reflection;

namespace Coracle.Integration.Tests.Support;

/// <summary>The purpose-built plugin folders the test build produced, and the host's build output.</summary>
internal static class TestPlugins
{
    public const string Basic = "Coracle.TestPlugins.Basic";
    public const string Calico = "Coracle.TestPlugins.Calico";
    public const string OtherArch = "Coracle.TestPlugins.OtherArch";
    public const string Duplicate = "Coracle.TestPlugins.Duplicate";
    public const string MissingDependency = "Coracle.TestPlugins.MissingDependency";
    public const string Addon = "Coracle.TestPlugins.Addon";

    public static string BuiltDir => Path.Combine(AppContext.BaseDirectory, "testplugins");

    public static string CoreOutputDir =>
        typeof(TestPlugins).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "CoreOutputDir").Value!;

    /// <summary>Copies the named plugin folders into <c>root/NAME/</c> with safe permissions.</summary>
    public static void Install(string root, params string[] plugins)
    {
        Directory.CreateDirectory(root);
        File.SetUnixFileMode(root, (UnixFileMode)0x1ED);
        foreach (var plugin in plugins)
        {
            CopyTree(Path.Combine(BuiltDir, plugin), Path.Combine(root, plugin));
        }
    }

    public static void CopyTree(string from, string to)
    {
        if (!Directory.Exists(from))
        {
            throw new DirectoryNotFoundException($"{from} is missing; build tests/Integration.Tests so the test plugins are copied");
        }

        Directory.CreateDirectory(to);
        File.SetUnixFileMode(to, (UnixFileMode)0x1ED);
        foreach (var file in Directory.EnumerateFiles(from))
        {
            var target = Path.Combine(to, Path.GetFileName(file));
            File.Copy(file, target, overwrite: true);
            File.SetUnixFileMode(target, (File.GetUnixFileMode(file) & ~UnixFileMode.OtherWrite & ~UnixFileMode.GroupWrite) | UnixFileMode.UserRead);
        }

        foreach (var dir in Directory.EnumerateDirectories(from))
        {
            CopyTree(dir, Path.Combine(to, Path.GetFileName(dir)));
        }
    }

    /// <summary>
    /// Lays out an installed coracle: the host's build output without its plugins, plus the given test plugins
    /// in plugins/. Returns the path of the <c>coracle</c> executable.
    /// </summary>
    public static string InstallHost(string dir, params string[] plugins)
    {
        Directory.CreateDirectory(dir);
        foreach (var file in Directory.EnumerateFiles(CoreOutputDir))
        {
            File.Copy(file, Path.Combine(dir, Path.GetFileName(file)), overwrite: true);
            File.SetUnixFileMode(Path.Combine(dir, Path.GetFileName(file)), File.GetUnixFileMode(file) & ~UnixFileMode.OtherWrite);
        }

        foreach (var sub in Directory.EnumerateDirectories(CoreOutputDir))
        {
            // Only what the host needs: not its plugins, and not per-RID publish folders (linux-x64/ ...),
            // which a concurrent `dotnet publish` may be writing.
            if (Path.GetFileName(sub) is not ("plugins" or "linux-x64" or "linux-arm64" or "linux-arm"))
            {
                CopyTree(sub, Path.Combine(dir, Path.GetFileName(sub)));
            }
        }

        Install(Path.Combine(dir, "plugins"), plugins);
        return Path.Combine(dir, "coracle");
    }
}
