using Coracle.Core.Addons;

namespace Coracle.Core.Tests.Addons;

/// <summary>The add-on rows of <c>coracle status</c> built from files, Addons, plugins that are off and workload health.</summary>
public sealed class AddonRowsTests
{
    private static readonly Dictionary<string, AddonHealth> NoHealth = [];
    private static readonly Dictionary<string, string> NoneOff = [];

    private static ManifestFile File(string path, bool skipped = false, string? conflict = null) =>
        new(path, "/m/" + path, AddonNames.For(path), skipped, conflict);

    private static AddonState Addon(string name, string source, int objects, string? error = null) =>
        new(name, source, "sum", Enumerable.Range(0, objects).Select(i => new ObjectRef("v1", "ConfigMap", "default", $"c{i}")).ToList(), error, null);

    private static Dictionary<string, AddonState> Addons(params AddonState[] addons) => addons.ToDictionary(a => a.Name);

    [Fact]
    public void Build_AppliedFileWithHealthyPods_AppliedWithPodsAndNoDetail()
    {
        var rows = AddonRows.Build([File("coredns.yaml")], Addons(Addon("coredns", "coredns.yaml", 8)), NoneOff,
            new Dictionary<string, AddonHealth> { ["coredns"] = new(1, 1, [], null) });

        Assert.Equal([new AddonRow("coredns", "coredns.yaml", "applied", 8, 1, 1, [], "")], rows, RowComparer.Instance);
    }

    [Fact]
    public void Build_PodWaitingForAMissingImage_DetailNamesTheImageAndWhereToPutIt()
    {
        var rows = AddonRows.Build([File("metrics-server.yaml")], Addons(Addon("metrics-server", "metrics-server.yaml", 10)), NoneOff,
            new Dictionary<string, AddonHealth> { ["metrics-server"] = new(0, 1, ["docker.io/rancher/mirrored-metrics-server:v0.6.4"], "CrashLoopBackOff") });

        var row = Assert.Single(rows);
        Assert.Equal("progressing", row.State); // applied, its pods not all ready yet
        Assert.Equal((0, 1), (row.PodsReady, row.PodsWanted));
        Assert.Equal("image missing: docker.io/rancher/mirrored-metrics-server:v0.6.4 (put it in DATA/agent/images or a registry)", row.Detail);
    }

    [Fact]
    public void Build_TwoMissingImages_BothNamed()
    {
        Assert.Equal("images missing: a:1, b:2 (put them in DATA/agent/images or a registry)", AddonRows.ImageMissing(["a:1", "b:2"]));
    }

    [Fact]
    public void Build_PodWaitingForAnotherReason_DetailSaysWhy()
    {
        var rows = AddonRows.Build([File("web.yaml")], Addons(Addon("web", "web.yaml", 1)), NoneOff,
            new Dictionary<string, AddonHealth> { ["web"] = new(0, 2, [], "CrashLoopBackOff: back-off 5m0s restarting failed container") });

        Assert.Equal("waiting: CrashLoopBackOff: back-off 5m0s restarting failed container", Assert.Single(rows).Detail);
    }

    [Fact]
    public void Build_FailedFile_FirstLineOfTheErrorBounded()
    {
        var error = "bad.yaml:4:1: " + new string('x', 400) + "\nsecond line";
        var row = Assert.Single(AddonRows.Build([File("bad.yaml")], Addons(Addon("bad", "bad.yaml", 1, error)), NoneOff, NoHealth));

        Assert.Equal("failed", row.State);
        Assert.Equal(AddonRows.MaxDetail, row.Detail.Length);
        Assert.StartsWith("bad.yaml:4:1: xxx", row.Detail, StringComparison.Ordinal);
        Assert.EndsWith("...", row.Detail, StringComparison.Ordinal);
        Assert.Equal(1, row.Objects);
    }

    [Fact]
    public void Build_SkippedNewAndConflictingFiles_SkippedPendingAndFailed()
    {
        var rows = AddonRows.Build(
            [File("a-b.yaml"), File("a/b.yaml", conflict: "a-b.yaml"), File("new.yaml"), File("traefik.yaml", skipped: true)],
            Addons(Addon("a-b", "a-b.yaml", 1), Addon("traefik", "traefik.yaml", 3)), NoneOff, NoHealth);

        Assert.Equal(
            [
                ("a-b", "a-b.yaml", "applied", 1, ""),
                ("a-b", "a/b.yaml", "failed", 0, "a/b.yaml: Addon name a-b is already a-b.yaml's"),
                ("new", "new.yaml", "pending", 0, "not applied yet"),
                ("traefik", "traefik.yaml", "skipped", 3, "traefik.yaml.skip is present: not applied"),
            ],
            rows.Select(r => (r.Name, r.Source, r.State, r.Objects, r.Detail)));
    }

    [Fact]
    public void Build_PluginOff_DisabledWithWhyAndNoFile()
    {
        var rows = AddonRows.Build([], Addons(), new Dictionary<string, string> { ["coredns"] = "disabled by --disable" }, NoHealth);

        Assert.Equal(("coredns", "", "disabled", 0, "disabled by --disable"), rows.Select(r => (r.Name, r.Source, r.State, r.Objects, r.Detail)).Single());
    }

    [Fact]
    public void Build_RemovedFileWhoseObjectsCouldNotBeDeleted_Failed()
    {
        var rows = AddonRows.Build([], Addons(Addon("old", "old.yaml", 2, "old.yaml was removed, but deleting its objects failed: boom"), Addon("gone", "gone.yaml", 1)), NoneOff, NoHealth);

        var row = Assert.Single(rows);
        Assert.Equal(("old", "failed", 2), (row.Name, row.State, row.Objects));
    }

    [Fact]
    public void OneLine_CarriageReturnAndSpaces_Trimmed()
    {
        Assert.Equal("first", AddonRows.OneLine("  first \r\nsecond"));
    }

    /// <summary>Records compare their lists by reference; this compares them by content.</summary>
    private sealed class RowComparer : IEqualityComparer<AddonRow>
    {
        public static readonly RowComparer Instance = new();

        public bool Equals(AddonRow? x, AddonRow? y) =>
            x is not null && y is not null && x with { MissingImages = [] } == y with { MissingImages = [] } && x.MissingImages.SequenceEqual(y.MissingImages);

        public int GetHashCode(AddonRow obj) => obj.Name.GetHashCode(StringComparison.Ordinal);
    }
}
