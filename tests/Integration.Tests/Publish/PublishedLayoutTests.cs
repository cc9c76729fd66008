using System.Diagnostics;
using System.Reflection;
using Coracle.Integration.Tests.Support;

namespace Coracle.Integration.Tests.Publish;

/// <summary>
/// Publishes the host for linux-x64 (plugins published per runtime identifier into plugins/) and runs the
/// published <c>coracle</c>: the SQLite datastore plugin must load its native library from its own folder in
/// its own load context (the failure mode of DotNetCorePlugins #84/#214), not from a project reference.
/// </summary>
[Trait("Category", "Integration")]
[Collection(PublishCollection.Name)]
public sealed class PublishedLayoutTests : IDisposable
{
    private readonly TempDir _temp = new("coracle-publish");

    public void Dispose() => _temp.Dispose();

    private static string RepoRoot =>
        typeof(PublishedLayoutTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "RepoRoot").Value!;

    [Fact]
    public async Task PublishedHost_DefaultServer_LoadsSqliteFromThePluginFolderAndServes()
    {
        var publish = _temp.Combine("publish");
        var info = new ProcessStartInfo("dotnet")
        {
            ArgumentList =
            {
                "publish", Path.Combine(RepoRoot, "Core", "Coracle.Core.csproj"), "-c", "Release", "-r", "linux-x64",
                "--self-contained", "false", "-o", publish, "-nologo", "-v:q", "-clp:ErrorsOnly",
                "-p:CoracleExcludePlugins=Plugins.Cni.Flannel", // keep the test host's network untouched
            },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using (var dotnet = Process.Start(info)!)
        {
            var output = dotnet.StandardOutput.ReadToEndAsync();
            var errors = dotnet.StandardError.ReadToEndAsync();
            await dotnet.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(10));
            Assert.True(dotnet.ExitCode == 0, $"dotnet publish failed: {await output}{await errors}");
        }

        var sqlite = Path.Combine(publish, "plugins", "Coracle.Plugins.Datastore.Sql");
        Assert.True(File.Exists(Path.Combine(sqlite, "Coracle.Plugins.Datastore.Sql.dll")));
        Assert.True(File.Exists(Path.Combine(sqlite, "libe_sqlite3.so")) || Directory.Exists(Path.Combine(sqlite, "runtimes")),
            "the SQLite native library is published into the plugin's folder");
        Assert.False(File.Exists(Path.Combine(sqlite, "Coracle.Plugins.dll")), "the contracts must not be copied into a plugin folder");
        Assert.False(Directory.Exists(Path.Combine(publish, "plugins", "Coracle.Plugins.Cni.Flannel")));

        var data = _temp.Combine("data");
        using var server = CoracleProcess.Start(Path.Combine(publish, "coracle"), ["server", "--data-dir", data, "--write-kubeconfig", _temp.Combine("admin.yaml"), "--disable", "traefik,servicelb"]);
        var status = "";
        await Wait.UntilAsync(async () =>
        {
            var (code, stdout, _) = await CoracleProcess.RunAsync(Path.Combine(publish, "coracle"), "status", "--data-dir", data);
            status = stdout;
            return code == 0 && stdout.Split('\n').Any(l => l.StartsWith("datastore ", StringComparison.Ordinal) && l.Contains(" ready ", StringComparison.Ordinal));
        }, "the published sqlite datastore to be ready", 90);

        Assert.True(File.Exists(Path.Combine(data, "server", "db", "state.db")));
        Assert.Contains("datastore serving etcd v3", server.Stderr, StringComparison.Ordinal);
        // `coracle ctr` reaches this node's containerd (its socket and the k8s.io namespace filled in).
        using (var ctr = CoracleProcess.Start(Path.Combine(publish, "coracle"), ["ctr", "version"], new Dictionary<string, string> { ["CORACLE_DATA_DIR"] = data }))
        {
            Assert.Equal(0, await ctr.WaitForExitAsync(TimeSpan.FromSeconds(60)));
            Assert.Contains("Server:", ctr.Stdout, StringComparison.Ordinal);
        }

        using (var ctr = CoracleProcess.Start(Path.Combine(publish, "coracle"), ["ctr", "namespaces", "ls"], new Dictionary<string, string> { ["CORACLE_DATA_DIR"] = data }))
        {
            Assert.Equal(0, await ctr.WaitForExitAsync(TimeSpan.FromSeconds(60)));
            Assert.StartsWith("NAME", ctr.Stdout, StringComparison.Ordinal);
        }

        Supervision.NativeSignals.Terminate(server.Pid);
        Assert.Equal(0, await server.WaitForExitAsync(TimeSpan.FromSeconds(60)));
    }
}

/// <summary>`dotnet publish` rebuilds the host: run it alone, never beside tests that copy the host's build output.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class PublishCollection
{
    public const string Name = "publish";
}
