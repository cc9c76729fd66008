namespace Coracle.Node.Tests.Support;

/// <summary>A fact that runs only when CORACLE_K8S_BIN names a folder holding the Kubernetes binaries; skipped visibly otherwise.</summary>
public sealed class K8sFactAttribute : FactAttribute
{
    public K8sFactAttribute()
    {
        var dir = Environment.GetEnvironmentVariable("CORACLE_K8S_BIN");
        var missing = new[] { "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy" }
            .Where(b => !string.IsNullOrEmpty(dir) && !File.Exists(Path.Combine(dir, b))).ToList();
        if (string.IsNullOrEmpty(dir))
        {
            Skip = "CORACLE_K8S_BIN is not set: set it to a folder holding the Kubernetes 1.26 binaries (../shared/tools/kubernetes/build.sh) to run this test";
        }
        else if (missing.Count > 0)
        {
            Skip = $"CORACLE_K8S_BIN={dir} holds no {string.Join(", ", missing)}; build them with ../shared/tools/kubernetes/build.sh";
        }
        else if (Environment.UserName != "root")
        {
            Skip = "needs root (network namespaces, containerd, cgroups)";
        }
    }
}
