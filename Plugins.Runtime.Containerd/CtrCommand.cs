namespace Coracle.Plugins.Runtime.Containerd;

/// <summary>
/// Where containerd's <c>ctr</c> is and which namespace Kubernetes uses. The <c>coracle ctr</c> verb itself (socket and
/// namespace filled in unless the user gave them) lives in Core: <c>Coracle.Core.Node.NodeTools.CtrArguments</c>.
/// </summary>
public static class CtrCommand
{
    /// <summary>The containerd namespace the CRI plugin (and so Kubernetes) uses.</summary>
    public const string KubernetesNamespace = "k8s.io";

    /// <summary>The ctr binary: <c>ctr-path</c>, else the components folder, else PATH; null when absent.</summary>
    public static string? FindCtr(ContainerdSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        return BinaryLocator.Find("ctr", settings.CtrPath, settings.ComponentsDir, Environment.GetEnvironmentVariable("PATH"), out _);
    }
}
