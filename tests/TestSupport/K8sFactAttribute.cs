using Xunit;

namespace Coracle.TestSupport;

/// <summary>
/// A fact that needs the real Kubernetes binaries (<see cref="KubernetesBinaries"/>), and root when
/// <see cref="NeedsRoot"/> is set; skipped, saying why, only where they cannot be found.
/// </summary>
public sealed class K8sFactAttribute : FactAttribute
{
    private string? _skip;

    /// <summary>The binaries the test runs; every node binary by default.</summary>
    public string[] Binaries { get; set; } = [.. KubernetesBinaries.All];

    /// <summary>The test needs root (network namespaces, containerd, cgroups).</summary>
    public bool NeedsRoot { get; set; }

    /// <inheritdoc />
    public override string Skip
    {
        get => _skip ?? KubernetesBinaries.WhyNot(Binaries) ?? (NeedsRoot && Environment.UserName != "root" ? "needs root (network namespaces, containerd, cgroups)" : null)!;
        set => _skip = value;
    }
}
