using Coracle.Plugins.Addon.CoreDns;
using Coracle.Plugins.Addon.LocalStorage;
using Coracle.Plugins.Addon.MetricsServer;
using Coracle.Plugins.Runtime.Containerd;

namespace Coracle.Node.Tests.Support;

/// <summary>
/// Images of workloads the node tests run, built here (no registry is reachable): the packaged add-ons (CoreDNS,
/// local-path-provisioner and its busybox helper, metrics-server) from the add-on binaries of ../shared/components
/// (CORACLE_ADDONS_BIN, else ~/.cache/coracle-components/addons), and the test webhook compiled from
/// tests/Node.Tests/Webhook/main.go with Debian's golang-go (cached in the test's bin folder). The add-on images carry the
/// add-on plugins' default references, so an airgap import is all their manifests need.
/// </summary>
internal static partial class AddonImages
{
    public const string MetricsServer = "docker.io/coracle/metrics-server:test";
    public const string Webhook = "docker.io/coracle/egress-webhook:test";

    /// <summary>The coredns add-on's default image.</summary>
    public const string CoreDns = CoreDnsPlugin.DefaultImage;

    /// <summary>The local-storage add-on's default provisioner image.</summary>
    public const string LocalPathProvisioner = LocalStoragePlugin.DefaultImage;

    /// <summary>The local-storage add-on's default helper-pod image.</summary>
    public const string LocalPathHelper = LocalStoragePlugin.DefaultHelperImage;

    /// <summary>The metrics-server add-on's default image (<see cref="WriteMetricsServer"/> with this tag).</summary>
    public const string MetricsServerAddon = MetricsServerPlugin.DefaultImage;

    /// <summary>
    /// Writes the metrics-server image (entrypoint <c>/metrics-server</c>) into <paramref name="imagesDir"/>, tagged
    /// <paramref name="repoTag"/> (<see cref="MetricsServerAddon"/> for the add-on's manifest).
    /// </summary>
    public static void WriteMetricsServer(string imagesDir, string repoTag = MetricsServer) =>
        ImageBuilder.WriteArchive(Path.Combine(imagesDir, "metrics-server.tar"), new ImageLayout
        {
            RepoTag = repoTag,
            Files = new Dictionary<string, string> { ["metrics-server"] = AddonBinary("metrics-server") },
            Entrypoint = ["/metrics-server"],
            Busybox = null,
        });

    /// <summary>
    /// Writes the CoreDNS image (<c>/coredns</c>, its entrypoint) tagged <paramref name="repoTag"/> (the add-on's default,
    /// <see cref="CoreDns"/>, unless given) into <paramref name="imagesDir"/>.
    /// </summary>
    public static void WriteCoreDns(string imagesDir, string repoTag = CoreDns) =>
        ImageBuilder.WriteArchive(Path.Combine(imagesDir, repoTag == CoreDns ? "coredns.tar" : "coredns-" + repoTag.Split('/')[0].Replace(':', '-') + ".tar"), new ImageLayout
        {
            RepoTag = repoTag,
            Files = new Dictionary<string, string> { ["coredns"] = AddonBinary("coredns") },
            Entrypoint = ["/coredns"],
            Busybox = null,
        });

    /// <summary>
    /// Writes the local-path-provisioner image (<c>/usr/bin/local-path-provisioner</c>, on PATH: the manifest runs
    /// <c>local-path-provisioner start</c>) tagged <see cref="LocalPathProvisioner"/> into <paramref name="imagesDir"/>.
    /// </summary>
    public static void WriteLocalPathProvisioner(string imagesDir) =>
        ImageBuilder.WriteArchive(Path.Combine(imagesDir, "local-path-provisioner.tar"), new ImageLayout
        {
            RepoTag = LocalPathProvisioner,
            Files = new Dictionary<string, string> { ["usr/bin/local-path-provisioner"] = AddonBinary("local-path-provisioner") },
            Entrypoint = ["/usr/bin/local-path-provisioner"],
            Busybox = null,
        });

    /// <summary>
    /// Writes the helper pods' busybox image tagged <see cref="LocalPathHelper"/> into <paramref name="imagesDir"/>: the
    /// setup and teardown scripts run <c>/bin/sh</c> with <c>mkdir</c>, <c>chmod</c> and <c>rm</c> (the last two are busybox
    /// copies; the image builder links only its usual applets).
    /// </summary>
    public static void WriteLocalPathHelper(string imagesDir) =>
        ImageBuilder.WriteArchive(Path.Combine(imagesDir, "local-path-helper.tar"), new ImageLayout
        {
            RepoTag = LocalPathHelper,
            Files = new Dictionary<string, string> { ["bin/chmod"] = ImageBuilder.Busybox, ["bin/rm"] = ImageBuilder.Busybox },
            Cmd = ["sh"],
        });

    /// <summary>An add-on binary of ../shared/components, unpacked by scripts/test.sh.</summary>
    private static string AddonBinary(string name)
    {
        var folder = Environment.GetEnvironmentVariable("CORACLE_ADDONS_BIN") is { Length: > 0 } dir
            ? dir
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "coracle-components", "addons");
        var binary = Path.Combine(folder, name);
        return File.Exists(binary)
            ? binary
            : throw new FileNotFoundException($"{binary} is missing: scripts/test.sh unpacks the add-on binaries of ../shared/components (or set CORACLE_ADDONS_BIN)");
    }
}
