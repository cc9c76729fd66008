namespace Coracle.Plugins;

/// <summary>Names of components the host runs, for <see cref="ComponentSpec.StopsBefore"/> and status lookups.</summary>
public static class WellKnownComponents
{
    /// <summary>kube-apiserver, on a server node that has the binary.</summary>
    public const string KubeApiServer = "kube-apiserver";
}
