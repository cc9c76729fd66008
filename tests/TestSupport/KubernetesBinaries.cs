namespace Coracle.TestSupport;

/// <summary>
/// Where the tests find the real Kubernetes binaries: CORACLE_K8S_BIN (scripts/test.sh sets it, unpacking
/// ../shared/components once), else the newest verified unpack in ~/.cache/coracle-components, so a plain
/// <c>dotnet test</c> after one scripts/test.sh run finds them too.
/// </summary>
public static class KubernetesBinaries
{
    /// <summary>Every binary a node runs.</summary>
    public static IReadOnlyList<string> All { get; } = ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy"];

    /// <summary>The folder, or null when none is known.</summary>
    public static string? Folder { get; } = Find();

    private static string? Find()
    {
        var dir = Environment.GetEnvironmentVariable("CORACLE_K8S_BIN");
        if (!string.IsNullOrEmpty(dir))
        {
            return dir;
        }

        var cache = Environment.GetEnvironmentVariable("CORACLE_COMPONENTS_CACHE") is { Length: > 0 } c
            ? c
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "coracle-components");
        return Directory.Exists(cache)
            ? Directory.GetDirectories(cache, "kubernetes-v*").Where(d => File.Exists(Path.Combine(d, ".verified"))).Order(StringComparer.Ordinal).LastOrDefault()
            : null;
    }

    /// <summary>Why a test that needs <paramref name="binaries"/> cannot run here, or null when it can.</summary>
    public static string? WhyNot(IEnumerable<string> binaries)
    {
        if (Folder is null)
        {
            return "no Kubernetes binaries: CORACLE_K8S_BIN is unset and ../shared/components was never unpacked (scripts/test.sh does it; or set CORACLE_K8S_BIN to a folder of Kubernetes 1.32 binaries)";
        }

        var missing = binaries.Where(b => !File.Exists(Path.Combine(Folder, b))).ToList();
        return missing.Count > 0 ? $"{Folder} holds no {string.Join(", ", missing)}" : null;
    }
}
