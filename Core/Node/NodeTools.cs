using System.Diagnostics;
using Coracle.Core.Configuration;
using Coracle.Core.Identity;

namespace Coracle.Core.Node;

/// <summary>
/// <c>coracle kubectl ...</c> and <c>coracle ctr ...</c>: run the real tool against this node, filling in what K3s fills
/// in (the admin kubeconfig; containerd's socket and the <c>k8s.io</c> namespace). Every other argument is passed on
/// unchanged, so these verbs bypass the command-line parser.
/// </summary>
internal static class NodeTools
{
    /// <summary>The containerd namespace the CRI plugin (and so Kubernetes) uses.</summary>
    public const string KubernetesNamespace = "k8s.io";

    /// <summary>The first binary named <paramref name="name"/> in the components folder, then PATH; null when absent.</summary>
    public static string? Find(string name, string componentsDir, string? pathVariable)
    {
        var folders = new List<string> { componentsDir };
        folders.AddRange((pathVariable ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries));
        return folders.Select(f => Path.Combine(f, name)).FirstOrDefault(File.Exists);
    }

    /// <summary>
    /// The kubeconfig <c>coracle kubectl</c> uses: none when the user chose one (<c>--kubeconfig</c> or KUBECONFIG), else
    /// <c>DATA/server/cred/admin.kubeconfig</c>, else the written admin kubeconfig (<c>--write-kubeconfig</c>).
    /// </summary>
    public static string? AdminKubeconfig(CoracleConfig config, IReadOnlyList<string> args, string? kubeconfigVariable)
    {
        if (!string.IsNullOrEmpty(kubeconfigVariable) || args.Any(a => a == "--kubeconfig" || a.StartsWith("--kubeconfig=", StringComparison.Ordinal)))
        {
            return null;
        }

        // The data dir's own admin kubeconfig first: the written copy may belong to another data dir on this machine.
        var own = Path.Combine(ServerIdentity.CredDir(config.DataDir), "admin.kubeconfig");
        return File.Exists(own) || config.WriteKubeconfig.Length == 0 ? own : config.WriteKubeconfig;
    }

    /// <summary>
    /// ctr's arguments: <c>--address SOCKET</c> unless the user gave <c>--address</c>/<c>-a</c>, <c>--namespace k8s.io</c>
    /// unless the user gave <c>--namespace</c>/<c>-n</c> or CONTAINERD_NAMESPACE is set, then the user's arguments.
    /// </summary>
    public static IReadOnlyList<string> CtrArguments(string socket, IReadOnlyList<string> userArgs, string? environmentNamespace)
    {
        var global = new List<string>();
        for (var i = 0; i < userArgs.Count && userArgs[i].StartsWith('-'); i++)
        {
            global.Add(userArgs[i]);
            if (userArgs[i] is "--address" or "-a" or "--namespace" or "-n" or "--timeout" or "--connect-timeout")
            {
                i++;
            }
        }

        bool Has(string longName, string shortName) => global.Any(a => a == longName || a == shortName
            || a.StartsWith(longName + "=", StringComparison.Ordinal) || a.StartsWith(shortName + "=", StringComparison.Ordinal));

        var args = new List<string>();
        if (!Has("--address", "-a"))
        {
            args.AddRange(["--address", socket]);
        }

        if (!Has("--namespace", "-n") && string.IsNullOrEmpty(environmentNamespace))
        {
            args.AddRange(["--namespace", KubernetesNamespace]);
        }

        args.AddRange(userArgs);
        return args;
    }

    /// <summary>containerd's socket: what the node recorded at start, else the containerd plugin's default.</summary>
    public static string RuntimeSocket(CoracleConfig config) =>
        NodeState.Load(config.RunDir)?.CriSocket ?? Path.Combine(config.RunDir, "containerd", "containerd.sock");

    /// <summary>Runs <c>kubectl</c> or <c>ctr</c> with the terminal's stdin/stdout/stderr; returns its exit code.</summary>
    public static async Task<int> RunAsync(string tool, IReadOnlyList<string> userArgs)
    {
        var env = Cli.Commands.Environ();
        if (Cli.Commands.TryLoad("server", null, new Dictionary<Setting, IReadOnlyList<string>>()) is not { } config)
        {
            return ExitCodes.InvalidConfig;
        }

        var binary = Find(tool, config.ComponentsDir, env.GetValueOrDefault("PATH"));
        if (binary is null)
        {
            Cli.Commands.WriteErrors([$"{tool} not found in {config.ComponentsDir} or PATH; install it or set components-dir"]);
            return ExitCodes.RuntimeFailure;
        }

        var start = new ProcessStartInfo(binary) { UseShellExecute = false };
        if (tool == "kubectl")
        {
            foreach (var arg in userArgs)
            {
                start.ArgumentList.Add(arg);
            }

            if (AdminKubeconfig(config, userArgs, env.GetValueOrDefault("KUBECONFIG")) is { } kubeconfig)
            {
                start.Environment["KUBECONFIG"] = kubeconfig;
            }
        }
        else
        {
            foreach (var arg in CtrArguments(RuntimeSocket(config), userArgs, env.GetValueOrDefault("CONTAINERD_NAMESPACE")))
            {
                start.ArgumentList.Add(arg);
            }
        }

        using var process = Process.Start(start)!;
        await process.WaitForExitAsync();
        return process.ExitCode;
    }
}
