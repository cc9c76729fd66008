namespace Coracle.Plugins.Runtime.Containerd;

/// <summary>What goes into an image <see cref="ImageBuilder"/> writes.</summary>
public sealed record ImageLayout
{
    /// <summary>The name <c>ctr images import</c> gives the image, e.g. <c>docker.io/library/busybox:coracle</c>.</summary>
    public required string RepoTag { get; init; }

    /// <summary>The image's entrypoint.</summary>
    public IReadOnlyList<string> Entrypoint { get; init; } = [];

    /// <summary>The image's default command.</summary>
    public IReadOnlyList<string> Cmd { get; init; } = [];

    /// <summary>The environment of the image's processes.</summary>
    public IReadOnlyList<string> Env { get; init; } = ["PATH=/bin:/usr/bin"];

    /// <summary>The static busybox binary that becomes <c>/bin/busybox</c> with its applet links; null leaves it out.</summary>
    public string? Busybox { get; init; } = ImageBuilder.Busybox;

    /// <summary>Host files copied into the image as executables: path in the image (no leading slash) → host path.</summary>
    public IReadOnlyDictionary<string, string> Files { get; init; } = new Dictionary<string, string>();

    /// <summary>The image's labels.</summary>
    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();
}
