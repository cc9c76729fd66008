using System.Diagnostics;
using System.Text;

namespace Coracle.Node.Tests.Support;

/// <summary>Runs a command and returns its exit code and output.</summary>
internal static class Run
{
    public static (int ExitCode, string Stdout, string Stderr) Tool(string file, IEnumerable<string> args, IReadOnlyDictionary<string, string>? env = null, TimeSpan? timeout = null)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        foreach (var (key, value) in env ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout ?? TimeSpan.FromMinutes(3)))
        {
            process.Kill(entireProcessTree: true);
            return (-1, stdout.Result, stderr.Result + "\n(timed out)");
        }

        return (process.ExitCode, stdout.Result, stderr.Result);
    }

    public static string Ok(string file, params string[] args)
    {
        var (code, stdout, stderr) = Tool(file, args);
        Assert.True(code == 0, $"{file} {string.Join(' ', args)} exited {code}: {stdout}{stderr}");
        return stdout;
    }
}

/// <summary>
/// One Coracle node in its own network namespace (a veth pair to the host, which routes for it), run as a real
/// <c>coracle</c> process from the build output of <c>dotnet build Core</c> (plugins included). The node shares the
/// host's mount namespace (<c>nsenter --net</c>, not <c>ip netns exec</c>, which would hide /sys/fs/cgroup from the
/// kubelet), so its data dir, kubelet root dir, flannel files and cgroup root are all private to it.
/// </summary>
internal sealed class NodeHarness : IDisposable
{
    private readonly StringBuilder _log = new();
    private Process? _process;

    public NodeHarness(string root, string image, string name, string netns, string nodeIp)
    {
        Image = image;
        Name = name;
        Netns = netns;
        NodeIp = nodeIp;
        DataDir = Directory.CreateDirectory(Path.Combine(root, name)).FullName;
        ConfigFile = Path.Combine(root, name + ".toml");
        File.WriteAllText(ConfigFile, $"""
            [plugins.flannel]
            subnet-file = "{DataDir}/run/flannel/subnet.env"
            ipam-data-dir = "{DataDir}/agent/cni-ipam"

            """);
    }

    public string Image { get; }

    public string Name { get; }

    public string Netns { get; }

    public string NodeIp { get; }

    public string DataDir { get; }

    public string ConfigFile { get; }

    public string Log
    {
        get
        {
            lock (_log)
            {
                return _log.ToString();
            }
        }
    }

    public int? Pid => _process is { HasExited: false } p ? p.Id : null;

    public string ImagesDir => Directory.CreateDirectory(Path.Combine(DataDir, "agent", "images")).FullName;

    /// <summary>
    /// A third octet N for the test's 10.203-10.212.N.0/24 networks that no network on the host uses now: the node test
    /// classes run in separate processes side by side (scripts/test.sh), each picking its networks at random, and two
    /// picks of the same N would give the host two routes for one /24.
    /// </summary>
    public static int FreeSubnet()
    {
        var routes = Run.Ok("ip", "-4", "route", "show", "table", "all");
        for (var attempt = 0; ; attempt++)
        {
            var subnet = System.Security.Cryptography.RandomNumberGenerator.GetInt32(1, 250);
            if (attempt >= 50 || Enumerable.Range(203, 10).All(second => !routes.Contains($"10.{second}.{subnet}.", StringComparison.Ordinal)))
            {
                return subnet;
            }
        }
    }

    /// <summary>A network namespace with a veth to the host (HOST_IP/24 on the host side) and a default route.</summary>
    public static void CreateNetns(string netns, string hostIp, string nsIp)
    {
        var host = "h-" + netns;
        var inside = "n-" + netns;
        Run.Ok("ip", "netns", "add", netns);
        Run.Ok("ip", "link", "add", host, "type", "veth", "peer", "name", inside);
        Run.Ok("ip", "link", "set", inside, "netns", netns);
        Run.Ok("ip", "addr", "add", hostIp + "/24", "dev", host);
        Run.Ok("ip", "link", "set", host, "up");
        Run.Ok("ip", "-n", netns, "addr", "add", nsIp + "/24", "dev", inside);
        Run.Ok("ip", "-n", netns, "link", "set", "lo", "up");
        Run.Ok("ip", "-n", netns, "link", "set", inside, "up");
        Run.Ok("ip", "-n", netns, "route", "add", "default", "via", hostIp);
    }

    /// <summary>
    /// A second namespace joined to <paramref name="serverNetns"/> by a veth pair (their LAN, ends named
    /// <paramref name="serverEnd"/>/<paramref name="agentEnd"/>); the agent routes through the server.
    /// </summary>
    public static void CreateLan(string serverNetns, string agentNetns, string serverEnd, string agentEnd, string serverIp, string agentIp)
    {
        Run.Ok("ip", "netns", "add", agentNetns);
        Run.Ok("ip", "link", "add", serverEnd, "netns", serverNetns, "type", "veth", "peer", "name", agentEnd, "netns", agentNetns);
        Run.Ok("ip", "-n", serverNetns, "addr", "add", serverIp + "/24", "dev", serverEnd);
        Run.Ok("ip", "-n", serverNetns, "link", "set", serverEnd, "up");
        Run.Ok("ip", "-n", agentNetns, "addr", "add", agentIp + "/24", "dev", agentEnd);
        Run.Ok("ip", "-n", agentNetns, "link", "set", "lo", "up");
        Run.Ok("ip", "-n", agentNetns, "link", "set", agentEnd, "up");
        Run.Ok("ip", "-n", agentNetns, "route", "add", "default", "via", serverIp);
    }

    /// <summary>A bash script in a network namespace, bounded to 20 s.</summary>
    public static (int ExitCode, string Stdout, string Stderr) Bash(string netns, string script) =>
        Run.Tool("nsenter", [$"--net=/run/netns/{netns}", "timeout", "20", "bash", "-c", script], timeout: TimeSpan.FromSeconds(30));

    public static void DeleteNetns(string netns)
    {
        Run.Tool("ip", ["link", "del", "h-" + netns]);
        Run.Tool("ip", ["netns", "del", netns]);
    }

    /// <summary>
    /// The end of a multi-node test: its helper processes killed, its nodes stopped (agents first: pass them first),
    /// its namespaces deleted and its folder removed (leftover mounts are reported by the real-cluster tests themselves).
    /// </summary>
    public static void TearDown(IEnumerable<System.Diagnostics.Process> helpers, IEnumerable<NodeHarness?> nodes, IEnumerable<string> namespaces, string root)
    {
        foreach (var helper in helpers)
        {
            if (!helper.HasExited)
            {
                helper.Kill(entireProcessTree: true);
            }

            helper.Dispose();
        }

        foreach (var node in nodes)
        {
            node?.Dispose();
        }

        foreach (var netns in namespaces)
        {
            DeleteNetns(netns);
        }

        try
        {
            Directory.Delete(root, recursive: true);
        }
        catch (IOException)
        {
            // Leftover mounts: the real-cluster tests check for them.
        }
    }

    private Dictionary<string, string> Environment() => new()
    {
        ["CORACLE_CONFIG_FILE"] = ConfigFile,
        ["CORACLE_DATA_DIR"] = DataDir,
        ["CORACLE_K8S_BIN"] = KubernetesBinaries.Folder ?? "",
    };

    public void StartServer(params string[] extra) => StartServerDisabling("traefik,servicelb,coredns,local-storage,metrics-server", extra);

    /// <summary>Starts a server with <c>--disable <paramref name="disable"/></c> (the add-ons a test wants stay on).</summary>
    public void StartServerDisabling(string disable, params string[] extra) => Start(
    [
        "server", "--node-name", Name, "--node-ip", NodeIp, "--write-kubeconfig", Path.Combine(DataDir, "admin.yaml"),
        "--disable", disable, "--kubelet-arg", $"root-dir={DataDir}/agent/kubelet", "--pod-logs-dir", $"{DataDir}/pod-logs", .. extra,
    ]);

    /// <summary>Starts <c>coracle agent</c> joining <paramref name="serverUrl"/> (the server's supervisor port) with <paramref name="token"/>.</summary>
    public void StartAgent(string serverUrl, string token, params string[] extra) => Start(
    [
        "agent", "--server", serverUrl, "--token", token, "--node-name", Name, "--node-ip", NodeIp,
        "--kubelet-arg", $"root-dir={DataDir}/agent/kubelet", "--pod-logs-dir", $"{DataDir}/pod-logs", .. extra,
    ]);

    public void Start(IEnumerable<string> args)
    {
        var start = new ProcessStartInfo("nsenter") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { $"--net=/run/netns/{Netns}", Path.Combine(Image, "coracle") }.Concat(args))
        {
            start.ArgumentList.Add(arg);
        }

        foreach (var (key, value) in Environment())
        {
            start.Environment[key] = value;
        }

        var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _process = process;
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_log)
        {
            _log.AppendLine(line);
        }
    }

    /// <summary>Sends a signal to coracle and waits for it to exit.</summary>
    public void Signal(int signal)
    {
        var process = _process!;
        Run.Ok("kill", "-" + signal.ToString(System.Globalization.CultureInfo.InvariantCulture), process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.True(process.WaitForExit(TimeSpan.FromSeconds(90)), $"coracle did not exit after signal {signal}; log:\n{Tail()}");
        process.WaitForExit();
    }

    /// <summary>Runs <c>coracle ARGS</c> (kubectl, ctr, status, killall) in the node's namespace.</summary>
    public (int ExitCode, string Stdout, string Stderr) Coracle(params string[] args) =>
        Run.Tool("nsenter", [$"--net=/run/netns/{Netns}", Path.Combine(Image, "coracle"), .. args], Environment());

    public string Kubectl(params string[] args)
    {
        var (code, stdout, stderr) = Coracle(["kubectl", .. args]);
        Assert.True(code == 0, $"kubectl {string.Join(' ', args)} exited {code}: {stdout}{stderr}");
        return stdout;
    }

    public (int ExitCode, string Output) TryKubectl(params string[] args)
    {
        var (code, stdout, stderr) = Coracle(["kubectl", .. args]);
        return (code, stdout + stderr);
    }

    public void Apply(string yaml)
    {
        var file = Path.Combine(DataDir, $"manifest-{Guid.NewGuid():N}.yaml");
        File.WriteAllText(file, yaml);
        Kubectl("apply", "-f", file);
    }

    /// <summary>The PID and restart count of a component from <c>coracle status</c>.</summary>
    public (string State, int? Pid, int Restarts) Component(string name)
    {
        // Exit 1 with the table printed: a component is failed or degraded (the table still says which).
        var (code, stdout, _) = Coracle("status", "--data-dir", DataDir);
        if (code != 0 && !stdout.Contains("COMPONENT", StringComparison.Ordinal))
        {
            return ("unreachable", null, 0);
        }

        var row = stdout.Split('\n').Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)).FirstOrDefault(f => f.Length >= 4 && f[0] == name);
        return row is null
            ? ("missing", null, 0)
            : (row[1], int.TryParse(row[2], out var pid) ? pid : null, int.Parse(row[3], System.Globalization.CultureInfo.InvariantCulture));
    }

    public string Tail(int lines = 80) => string.Join('\n', Log.Split('\n').TakeLast(lines));

    public Task WaitForAsync(Func<bool> condition, string what, TimeSpan? timeout = null) => WaitForAsync(condition, () => what, timeout);

    /// <summary>Waits for <paramref name="condition"/>; <paramref name="what"/> is asked when it times out (it may say what was last seen).</summary>
    public async Task WaitForAsync(Func<bool> condition, Func<string> what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromMinutes(2));
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"timed out waiting for {what()}; coracle log tail:\n{Tail()}");
            }

            await Task.Delay(500);
        }
    }

    public bool NodeReady(string node) =>
        TryKubectl("get", "node", node, "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}") is (0, "True");

    public string Jsonpath(string kind, string name, string path) =>
        TryKubectl("get", kind, name, "-o", $"jsonpath={path}") is (0, var output) ? output.Trim() : "";

    /// <summary>
    /// A private copy of Core's build output with its plugins under <paramref name="root"/> (so a concurrent build
    /// cannot change it under the test).
    /// </summary>
    public static string LayOutImage(string root)
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Directory.Packages.props")))
        {
            dir = dir.Parent;
        }

        var built = Path.Combine(dir!.FullName, "Core", "bin", BuildConfiguration, "net10.0");
        Assert.True(Directory.Exists(Path.Combine(built, "plugins", "Coracle.Plugins.Runtime.Containerd"))
            && Directory.Exists(Path.Combine(built, "plugins", "Coracle.Plugins.Cni.Flannel")),
            $"{built} has no plugins/: run 'dotnet build Core' first");
        var image = Path.Combine(root, "image");
        foreach (var file in Directory.GetFiles(built, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(image, Path.GetRelativePath(built, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }

        File.SetUnixFileMode(Path.Combine(image, "coracle"), File.GetUnixFileMode(Path.Combine(built, "coracle")));
        return image;
    }

    /// <summary>Command lines of live processes that name <paramref name="text"/> (a data dir) in their arguments.</summary>
    public static List<string> ProcessesNaming(string text) =>
        Directory.GetDirectories("/proc").Where(d => int.TryParse(Path.GetFileName(d), out _)).Select(d =>
        {
            try
            {
                return File.ReadAllText(Path.Combine(d, "cmdline")).Replace('\0', ' ');
            }
            catch (IOException)
            {
                return "";
            }
            catch (UnauthorizedAccessException)
            {
                return "";
            }
        }).Where(c => c.Contains(text, StringComparison.Ordinal)).ToList();

    /// <summary>Always runs <c>coracle killall</c> (idempotent): pods and shims outlive a coracle that already exited.</summary>
    public void Dispose()
    {
        if (_process is not null)
        {
            Coracle("killall", "--data-dir", DataDir);
        }

        _process?.Dispose();
    }

    /// <summary>Debug or Release: whatever this test assembly was built as (the CI script builds Release).</summary>
    private static string BuildConfiguration => new DirectoryInfo(AppContext.BaseDirectory).Parent!.Name;
}
