using System.Diagnostics;
using System.Net.Sockets;
using Coracle.Core.Configuration;
using Coracle.Core.Identity;

namespace Coracle.Core.Node;

/// <summary>
/// <c>coracle kubectl ...</c> and <c>coracle ctr ...</c>: run the real tool against this node, filling in what K3s fills
/// in (the admin kubeconfig; the container runtime's socket the node recorded and the <c>k8s.io</c> namespace). Every
/// other argument is passed on unchanged, so these verbs bypass the command-line parser.
/// </summary>
internal static class NodeTools
{
    /// <summary>The ctr namespace the runtime's CRI service (and so Kubernetes) uses.</summary>
    public const string KubernetesNamespace = "k8s.io";

    /// <summary>How long <c>coracle ctr</c> waits for the runtime's socket to accept a connection before it gives up.</summary>
    public static readonly TimeSpan SocketTimeout = TimeSpan.FromSeconds(3);

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
    /// ctr's arguments: <c>--address SOCKET</c> unless the user gave <c>--address</c>/<c>-a</c> (or there is no socket),
    /// <c>--namespace k8s.io</c> unless the user gave <c>--namespace</c>/<c>-n</c> or CONTAINERD_NAMESPACE is set, then
    /// the user's arguments.
    /// </summary>
    public static IReadOnlyList<string> CtrArguments(string? socket, IReadOnlyList<string> userArgs, string? environmentNamespace)
    {
        var global = CtrGlobalFlags(userArgs).Select(f => f.Flag).ToList();

        bool Has(string longName, string shortName) => global.Any(a => a == longName || a == shortName
            || a.StartsWith(longName + "=", StringComparison.Ordinal) || a.StartsWith(shortName + "=", StringComparison.Ordinal));

        var args = new List<string>();
        if (socket is not null && !Has("--address", "-a"))
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

    /// <summary>ctr's global flags (before the first sub-command), each with its separate value when it takes one.</summary>
    private static List<(string Flag, string? Value)> CtrGlobalFlags(IReadOnlyList<string> userArgs)
    {
        var global = new List<(string, string?)>();
        for (var i = 0; i < userArgs.Count && userArgs[i].StartsWith('-'); i++)
        {
            if (userArgs[i] is "--address" or "-a" or "--namespace" or "-n" or "--timeout" or "--connect-timeout")
            {
                global.Add((userArgs[i], i + 1 < userArgs.Count ? userArgs[i + 1] : null));
                i++;
            }
            else
            {
                global.Add((userArgs[i], null));
            }
        }

        return global;
    }

    /// <summary>
    /// The socket ctr will dial: the user's <c>--address</c>/<c>-a</c> (a <c>unix://</c> prefix dropped), else
    /// <paramref name="socket"/>. Null when there is nothing to check: ctr only prints help or its version, or the
    /// address is not a unix socket path.
    /// </summary>
    public static string? CtrDialledSocket(string socket, IReadOnlyList<string> userArgs)
    {
        if (CtrPrintsOnly(userArgs))
        {
            return null;
        }

        var address = CtrUserAddress(userArgs) ?? socket;
        if (address.StartsWith("unix://", StringComparison.Ordinal))
        {
            address = address["unix://".Length..];
        }

        return address is { Length: > 0 } && address.StartsWith('/') ? address : null;
    }

    /// <summary>True when ctr dials the socket the node recorded: it runs a command and the user named no address.</summary>
    public static bool CtrDialsRecordedSocket(IReadOnlyList<string> userArgs) => !CtrPrintsOnly(userArgs) && CtrUserAddress(userArgs) is null;

    /// <summary>True when ctr only prints help or its version (or nothing to do), dialling no socket.</summary>
    private static bool CtrPrintsOnly(IReadOnlyList<string> userArgs)
    {
        var global = CtrGlobalFlags(userArgs);
        var command = userArgs.Skip(global.Sum(g => g.Value is null ? 1 : 2)).FirstOrDefault();
        return command is null or "help" or "h" || userArgs.Any(a => a is "--help" or "-h")
            || global.Any(g => g.Flag is "--version" or "-v");
    }

    /// <summary>The user's <c>--address</c>/<c>-a</c> (the last one wins, as in ctr), or null.</summary>
    private static string? CtrUserAddress(IReadOnlyList<string> userArgs)
    {
        string? address = null;
        foreach (var (flag, value) in CtrGlobalFlags(userArgs))
        {
            if (flag is "--address" or "-a")
            {
                address = value;
            }
            else if (flag.StartsWith("--address=", StringComparison.Ordinal) || flag.StartsWith("-a=", StringComparison.Ordinal))
            {
                address = flag[(flag.IndexOf('=', StringComparison.Ordinal) + 1)..];
            }
        }

        return address;
    }

    /// <summary>Null when <paramref name="socket"/> accepts a connection within <paramref name="timeout"/>, else why not.</summary>
    public static async Task<string?> ProbeSocketAsync(string socket, TimeSpan timeout)
    {
        if (!File.Exists(socket))
        {
            return "no such socket";
        }

        using var cts = new CancellationTokenSource(timeout);
        try
        {
            using var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            await client.ConnectAsync(new UnixDomainSocketEndPoint(socket), cts.Token);
            return null;
        }
        catch (SocketException ex)
        {
            return ex.SocketErrorCode switch
            {
                SocketError.ConnectionRefused => "connection refused",
                SocketError.AccessDenied => "permission denied",
                _ => ex.Message,
            };
        }
        catch (OperationCanceledException)
        {
            return $"no answer within {timeout.TotalSeconds:0} s";
        }
        catch (ArgumentException ex)
        {
            return ex.Message;
        }
    }

    /// <summary>The container runtime's socket the node recorded at start (<c>DATA/run/node.json</c>), or null.</summary>
    public static string? RuntimeSocket(CoracleConfig config) =>
        NodeState.Load(config.RunDir)?.CriSocket is { Length: > 0 } socket ? socket : null;

    /// <summary>Runs <c>kubectl</c> or <c>ctr</c> with the terminal's stdin/stdout/stderr; returns its exit code.</summary>
    public static Task<int> RunAsync(string tool, IReadOnlyList<string> userArgs) =>
        RunAsync(tool, userArgs, Cli.Commands.Environ(), Console.Error);

    /// <summary>
    /// <see cref="RunAsync(string, IReadOnlyList{string})"/> with the environment and the error stream given (tests).
    /// The node is the one named by the configuration, else the one running here (<see cref="Status.RunRecord"/>).
    /// </summary>
    internal static async Task<int> RunAsync(string tool, IReadOnlyList<string> userArgs, IReadOnlyDictionary<string, string> env, TextWriter errors)
    {
        if (Cli.Commands.TryLoad("server", null, new Dictionary<Setting, IReadOnlyList<string>>(), env, errors) is not { } loaded)
        {
            return ExitCodes.InvalidConfig;
        }

        var config = Cli.Commands.PreferRunningNode(loaded, env);
        var binary = Find(tool, config.ComponentsDir, env.GetValueOrDefault("PATH"));
        if (binary is null)
        {
            Cli.Commands.WriteErrors([$"{tool} not found in {config.ComponentsDir} or PATH; install it or set components-dir"], errors);
            return ExitCodes.RuntimeFailure;
        }

        var recorded = tool == "ctr" ? RuntimeSocket(config) : null;
        if (tool == "ctr" && recorded is null && CtrDialsRecordedSocket(userArgs))
        {
            Cli.Commands.WriteErrors([$"{NodeState.PathFor(config.RunDir)} records no runtime endpoint; start the node with 'coracle server' first (check it with 'coracle status'), set CORACLE_DATA_DIR to its data dir or pass --address"], errors);
            return ExitCodes.RuntimeFailure;
        }

        // ctr itself would wait a long time for a socket nobody answers on; say so at once.
        if (tool == "ctr" && CtrDialledSocket(recorded ?? "", userArgs) is { } socket
            && await ProbeSocketAsync(socket, SocketTimeout) is { } failure)
        {
            Cli.Commands.WriteErrors([$"{socket}: the container runtime does not accept connections ({failure}); start the node with 'coracle server' (check it with 'coracle status') or set CORACLE_DATA_DIR to its data dir"], errors);
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
            foreach (var arg in CtrArguments(recorded, userArgs, env.GetValueOrDefault("CONTAINERD_NAMESPACE")))
            {
                start.ArgumentList.Add(arg);
            }
        }

        using var process = Process.Start(start)!;
        await process.WaitForExitAsync();
        return process.ExitCode;
    }
}
