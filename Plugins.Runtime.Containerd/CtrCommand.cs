namespace Coracle.Plugins.Runtime.Containerd;

/// <summary>
/// <c>coracle ctr ...</c>: runs containerd's <c>ctr</c> against Coracle's containerd. The socket and the
/// Kubernetes namespace are filled in unless the user gave them.
/// </summary>
public static class CtrCommand
{
    /// <summary>The containerd namespace the CRI plugin (and so Kubernetes) uses.</summary>
    public const string KubernetesNamespace = "k8s.io";

    /// <summary>
    /// The arguments for <c>ctr</c>: <c>--address SOCKET</c> unless the user passed <c>--address</c>/<c>-a</c>,
    /// <c>--namespace k8s.io</c> unless the user passed <c>--namespace</c>/<c>-n</c> (or set CONTAINERD_NAMESPACE,
    /// see <paramref name="environmentNamespace"/>), then the user's arguments unchanged.
    /// </summary>
    /// <param name="socket">containerd's socket (<see cref="RuntimeEndpoint.CriSocket"/>).</param>
    /// <param name="userArgs">Everything after <c>coracle ctr</c>.</param>
    /// <param name="environmentNamespace">The CONTAINERD_NAMESPACE environment variable, if set.</param>
    public static IReadOnlyList<string> BuildArguments(string socket, IReadOnlyList<string> userArgs, string? environmentNamespace = null)
    {
        ArgumentNullException.ThrowIfNull(userArgs);
        var global = GlobalFlags(userArgs);
        bool Has(string longName, string shortName) => global.Any(a =>
            a == longName || a == shortName || a.StartsWith(longName + "=", StringComparison.Ordinal)
            || a.StartsWith(shortName + "=", StringComparison.Ordinal));

        var args = new List<string>();
        if (!Has("--address", "-a"))
        {
            args.Add("--address");
            args.Add(socket);
        }

        if (!Has("--namespace", "-n") && string.IsNullOrEmpty(environmentNamespace))
        {
            args.Add("--namespace");
            args.Add(KubernetesNamespace);
        }

        args.AddRange(userArgs);
        return args;
    }

    // ctr's global flags that take a value; the first other non-flag word is the subcommand.
    private static readonly string[] ValuedGlobalFlags = ["--address", "-a", "--namespace", "-n", "--timeout", "--connect-timeout"];

    private static List<string> GlobalFlags(IReadOnlyList<string> userArgs)
    {
        var flags = new List<string>();
        for (var i = 0; i < userArgs.Count; i++)
        {
            var arg = userArgs[i];
            if (!arg.StartsWith('-'))
            {
                break;
            }

            flags.Add(arg);
            if (ValuedGlobalFlags.Contains(arg))
            {
                i++;
            }
        }

        return flags;
    }

    /// <summary>The ctr binary: <c>ctr-path</c>, else the components folder, else PATH; null when absent.</summary>
    public static string? FindCtr(ContainerdSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        return BinaryLocator.Find("ctr", settings.CtrPath, settings.ComponentsDir, Environment.GetEnvironmentVariable("PATH"), out _);
    }
}
