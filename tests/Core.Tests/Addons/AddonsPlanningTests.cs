using System.Text.Json.Nodes;
using Coracle.Core.Addons;

namespace Coracle.Core.Tests.Addons;

public sealed class AddonsPlanningTests
{
    private static ManifestObject Object(string apiVersion, string kind, string name) =>
        new(new JsonObject { ["apiVersion"] = apiVersion, ["kind"] = kind, ["metadata"] = new JsonObject { ["name"] = name } }, name);

    [Fact]
    public void Sort_MixedKinds_NamespacesThenCrdsThenTheRestAsWritten()
    {
        var sorted = ApplyOrder.Sort([
            Object("v1", "ConfigMap", "cm"),
            Object("example.com/v1", "Widget", "w"),
            Object("apiextensions.k8s.io/v1", "CustomResourceDefinition", "crd"),
            Object("v1", "Secret", "s"),
            Object("v1", "Namespace", "ns"),
        ]);

        Assert.Equal(["ns", "crd", "cm", "w", "s"], sorted.Select(o => o.Name));
    }

    [Fact]
    public void DeleteOrder_MixedKinds_TheRestLastFirstThenCrdsThenNamespaces()
    {
        var order = ApplyOrder.DeleteOrder([
            new ObjectRef("v1", "Namespace", null, "ns"),
            new ObjectRef("apiextensions.k8s.io/v1", "CustomResourceDefinition", null, "crd"),
            new ObjectRef("v1", "ConfigMap", "ns", "cm"),
            new ObjectRef("example.com/v1", "Widget", "ns", "w"),
        ]);

        Assert.Equal(["w", "cm", "crd", "ns"], order.Select(o => o.Name));
    }

    [Theory]
    [InlineData("traefik.yaml", "traefik")]
    [InlineData("coredns.v1.yml", "coredns.v1")]
    [InlineData("apps/web/Front End.json", "apps-web-front-end")]
    [InlineData("My_App--x.yaml", "my-app-x")]
    [InlineData("-x-.yaml", "x")]
    [InlineData("a..b.yaml", "a.b")]
    [InlineData("a.-b.yaml", "a.b")]
    public void AddonName_FromRelativePath_Dns1123Subdomain(string path, string expected)
    {
        Assert.Equal(expected, AddonNames.For(path));
    }

    [Fact]
    public void AddonName_NothingLeftOrTooLong_HashedAndBounded()
    {
        Assert.Matches("^addon-[0-9a-f]{8}$", AddonNames.For("___.yaml"));
        var name = AddonNames.For(new string('a', 300) + ".yaml");
        Assert.Equal(AddonNames.MaxLength, name.Length);
        Assert.Matches("-[0-9a-f]{8}$", name);
    }

    [Theory]
    [InlineData("a.yaml", true)]
    [InlineData("a.yml", true)]
    [InlineData("a.json", true)]
    [InlineData("a.YAML", false)]
    [InlineData("a.yaml.skip", false)]
    [InlineData(".a.yaml", false)]
    [InlineData(".yaml", false)]
    [InlineData("README.md", false)]
    public void IsManifest_FileName_ByExtension(string name, bool expected)
    {
        Assert.Equal(expected, AddonNames.IsManifest(name));
    }

    [Fact]
    public void Scan_Folder_ManifestsRecursiveSkipsAndConflicts()
    {
        using var dir = new TempDir();
        foreach (var file in new[] { "b.yaml", "a.yaml", "a.yaml.skip", "sub/c.yml", "sub/d.json", "sub-c.yaml", "notes.txt", ".hidden.yaml", ".git/x.yaml", ".b.yaml.1.tmp" })
        {
            var path = Path.Combine(dir.Path, file);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllText(path, "");
        }

        var files = ManifestFolder.Scan(dir.Path);

        Assert.Equal(
            [("a.yaml", "a", true, null), ("b.yaml", "b", false, null), ("sub-c.yaml", "sub-c", false, null), ("sub/c.yml", "sub-c", false, "sub-c.yaml"), ("sub/d.json", "sub-d", false, null)],
            files.Select(f => (f.RelativePath, f.AddonName, f.Skipped, f.Conflict)));
        Assert.Equal(Path.Combine(dir.Path, "sub", "d.json"), files[^1].FullPath);
    }

    [Fact]
    public void Prune_ObjectsDroppedFromTheFile_DeletedInDeleteOrder()
    {
        ObjectRef[] before = [new("v1", "Namespace", null, "ns"), new("v1", "ConfigMap", "ns", "keep"), new("v1", "Secret", "ns", "drop"), new("v1", "ConfigMap", "default", "drop")];
        ObjectRef[] now = [new("v1", "ConfigMap", "ns", "keep")];

        var gone = PrunePlan.Plan(before, now, []);

        Assert.Equal(["ConfigMap default/drop", "Secret ns/drop", "Namespace ns"], gone.Select(o => o.ToString()));
    }

    [Fact]
    public void Prune_NewVersionOfTheSameObject_NotDeleted()
    {
        var gone = PrunePlan.Plan(
            [new ObjectRef("example.com/v1beta1", "Widget", "ns", "w"), new ObjectRef("v1", "ConfigMap", "ns", "w")],
            [new ObjectRef("example.com/v1", "Widget", "ns", "w")],
            []);

        Assert.Equal("ConfigMap ns/w", Assert.Single(gone).ToString());
    }

    [Fact]
    public void Prune_ObjectMovedToAnotherFile_NotDeleted()
    {
        var moved = new ObjectRef("v1", "ConfigMap", "default", "moved");

        Assert.Empty(PrunePlan.Plan([moved], [], [moved with { }]));
    }

    [Theory]
    [InlineData(null, "a.yaml", "c1", false, false)]
    [InlineData("c1", "a.yaml", "c1", false, true)]
    [InlineData("c0", "a.yaml", "c1", false, false)]
    [InlineData("c1", "other.yaml", "c1", false, false)]
    public void IsUpToDate_AddonWithoutError_OnlyTheSameSourceAndChecksum(string? knownChecksum, string source, string checksum, bool retryDue, bool expected)
    {
        var known = knownChecksum is null ? null : new AddonState("a", "a.yaml", knownChecksum, [], null, DateTimeOffset.UnixEpoch);

        Assert.Equal(expected, ManifestsController.IsUpToDate(known, source, checksum, retryDue));
    }

    [Theory]
    [InlineData(true, false)]
    [InlineData(false, true)]
    public void IsUpToDate_AddonWithError_TriedAgainWhenTheRetryIsDue(bool retryDue, bool expected)
    {
        var known = new AddonState("a", "a.yaml", "c1", [], "a.yaml:1:1: broken", null);

        Assert.Equal(expected, ManifestsController.IsUpToDate(known, "a.yaml", "c1", retryDue));
    }

    [Fact]
    public void AddonObject_BuiltThenRead_RoundTrips()
    {
        var state = new AddonState("web", "apps/web.yaml", new string('f', 64), [new ObjectRef("v1", "Namespace", null, "web"), new ObjectRef("v1", "ConfigMap", "web", "c")],
            "apps/web.yaml:1:1: oops", DateTimeOffset.Parse("2026-01-02T03:04:05Z", System.Globalization.CultureInfo.InvariantCulture));

        var json = AddonResource.Build("kube-system", state);
        var read = AddonResource.Read(JsonNode.Parse(json.ToJsonString()));

        Assert.Equal("ffffffffffff", json["status"]!["shortChecksum"]!.GetValue<string>());
        Assert.Equal("2026-01-02T03:04:05Z", json["status"]!["appliedAt"]!.GetValue<string>());
        Assert.NotNull(read);
        Assert.Equal((state.Name, state.Source, state.Checksum, state.LastError, state.AppliedAt), (read.Name, read.Source, read.Checksum, read.LastError, read.AppliedAt));
        Assert.Equal(state.Objects, read.Objects);
    }

    [Fact]
    public void Discovery_ResourceList_KindsWithScopeAndNoSubresources()
    {
        var kinds = ApiDiscovery.Parse("v1", JsonNode.Parse("""
            {"kind":"APIResourceList","groupVersion":"v1","resources":[
              {"name":"namespaces","kind":"Namespace","namespaced":false},
              {"name":"namespaces/status","kind":"Namespace","namespaced":false},
              {"name":"configmaps","kind":"ConfigMap","namespaced":true}]}
            """));

        Assert.Equal("/api/v1/namespaces/a", kinds["Namespace"].PathOf(null, "a"));
        Assert.Equal("/api/v1/namespaces/default/configmaps/c", kinds["ConfigMap"].PathOf("default", "c"));
        Assert.Equal("/apis/example.com/v1/namespaces/x/widgets/w", new ApiResource("example.com/v1", "Widget", "widgets", true).PathOf("x", "w"));
    }

    [Theory]
    [InlineData("node-a", "node-a", 0, "Renew")]
    [InlineData(null, "node-a", 0, "TakeOver")]
    [InlineData("", "node-a", 0, "TakeOver")]
    [InlineData("node-b", "node-a", 14, "Wait")]
    [InlineData("node-b", "node-a", 15, "TakeOver")]
    public void LeaseDecide_HolderAndAge_RenewTakeOverOrWait(string? holder, string me, int unchangedSeconds, string expected)
    {
        Assert.Equal(Enum.Parse<LeaseAction>(expected), LeaderLease.Decide(holder, me, TimeSpan.FromSeconds(unchangedSeconds), TimeSpan.FromSeconds(15)));
    }
}
