namespace Coracle.Identity.Tests.Support;

/// <summary>A fact that runs only when CORACLE_K8S_BIN names a folder holding the Kubernetes binaries; skipped visibly otherwise.</summary>
public sealed class K8sFactAttribute : FactAttribute
{
    public K8sFactAttribute(string binary = "kube-apiserver")
    {
        var dir = Environment.GetEnvironmentVariable("CORACLE_K8S_BIN");
        if (string.IsNullOrEmpty(dir))
        {
            Skip = "CORACLE_K8S_BIN is not set: set it to a folder holding the Kubernetes 1.26 binaries (../shared/tools/kubernetes/build.sh) to run this test";
        }
        else if (!File.Exists(Path.Combine(dir, binary)))
        {
            Skip = $"CORACLE_K8S_BIN={dir} holds no {binary}; build it with ../shared/tools/kubernetes/build.sh";
        }
    }
}
