using Coracle.Core.Configuration;

namespace Coracle.Core.Tests.Support;

/// <summary>Configurations for tests: defaults plus flags, with a private data dir.</summary>
internal static class TestConfig
{
    public static CoracleConfig Server(string dataDir, params (Setting Setting, string Value)[] flags) => Load("server", dataDir, flags);

    public static CoracleConfig Load(string role, string dataDir, params (Setting Setting, string Value)[] flags)
    {
        var all = new Dictionary<Setting, IReadOnlyList<string>>
        {
            [Settings.DataDir] = [dataDir],
            [Settings.NodeName] = ["node-a"],
            [Settings.NodeIp] = ["192.168.50.10"],
            [Settings.WriteKubeconfig] = [Path.Combine(dataDir, "admin.yaml")],
        };
        foreach (var group in flags.GroupBy(f => f.Setting))
        {
            all[group.Key] = group.Select(f => f.Value).ToList();
        }

        return ConfigLoader.Load(role, null, new Dictionary<string, string> { ["CORACLE_CONFIG_FILE"] = "", ["HOME"] = "/root" }, all);
    }
}

/// <summary>Runs a command and returns its exit code and output.</summary>
internal static class Run
{
    public static (int ExitCode, string Stdout, string Stderr) Tool(string file, params string[] args)
    {
        var start = new System.Diagnostics.ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = System.Diagnostics.Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, stdout.Result, stderr);
    }

    public static string OpenSsl(params string[] args)
    {
        var (code, stdout, stderr) = Tool("openssl", args);
        Assert.True(code == 0, $"openssl {string.Join(' ', args)} failed: {stdout}{stderr}");
        return stdout;
    }
}
