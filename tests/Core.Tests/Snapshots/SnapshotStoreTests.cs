using System.Globalization;
using Coracle.Core.Cli;
using Coracle.Core.Snapshots;
using Microsoft.Extensions.Time.Testing;

namespace Coracle.Core.Tests.Snapshots;

/// <summary>The snapshot folder: K3s's names, listing with and without sidecars, delete and prune.</summary>
public sealed class SnapshotStoreTests : IDisposable
{
    private readonly TempDir _dir = new("snapstore");

    public void Dispose() => _dir.Dispose();

    private SnapshotStore Store() => new(_dir.Path, "node-a", new FakeTimeProvider());

    private void Put(string name, long unix, string? node = "node-a")
    {
        File.WriteAllText(Path.Combine(_dir.Path, name), "data");
        if (node is not null)
        {
            File.WriteAllText(Path.Combine(_dir.Path, name + ".json"), $$"""
                {"name":"{{name}}","location":"x","size":4,"createdAt":"{{DateTimeOffset.FromUnixTimeSeconds(unix).ToString("O", CultureInfo.InvariantCulture)}}","node":"{{node}}","sha256":"ab","datastore":"sqlite","revision":7}
                """);
        }
    }

    [Theory]
    [InlineData("on-demand", true)]
    [InlineData("nightly_1.x", true)]
    [InlineData("", false)]
    [InlineData("../x", false)]
    [InlineData(".hidden", false)]
    [InlineData("a b", false)]
    public void NameProblem_Name_OnlySafeNames(string name, bool ok)
    {
        var problem = SnapshotStore.NameProblem(name);
        Assert.Equal(ok, problem is null);
        if (!ok)
        {
            Assert.Equal($"'{name}' is not a snapshot name; use letters, digits, '-', '_' and '.' (not first), like on-demand", problem);
        }
    }

    [Fact]
    public void List_SidecarsAndBareFiles_OldestFirstWithNodeAndSha()
    {
        Put("on-demand-node-a-200", 200);
        Put("etcd-snapshot-node-a-100", 100);
        Put("copied-in", 0, node: null);
        File.SetLastWriteTimeUtc(Path.Combine(_dir.Path, "copied-in"), DateTime.UnixEpoch.AddSeconds(150));
        File.WriteAllText(Path.Combine(_dir.Path, "x.part"), "partial");

        var list = Store().List();

        Assert.Equal(["etcd-snapshot-node-a-100", "copied-in", "on-demand-node-a-200"], list.Select(r => r.Name));
        Assert.Equal(Path.Combine(_dir.Path, "on-demand-node-a-200"), list[2].Location);
        Assert.Equal(("node-a", "ab", 7L), (list[2].Node, list[2].Sha256, list[2].Revision));
        var table = SnapshotCommands.Table(list).Split('\n');
        Assert.Matches(@"^NAME\s+LOCATION\s+SIZE\s+CREATED\s+NODE\s+SHA256$", table[0]);
        Assert.Matches($@"^etcd-snapshot-node-a-100\s+file://{_dir.Path}/etcd-snapshot-node-a-100\s+4\s+1970-01-01T00:01:40Z\s+node-a\s+ab$", table[1]);
        Assert.Matches(@"^copied-in\s+\S+\s+4\s+1970-01-01T00:02:30Z\s+-\s+-$", table[2]);
    }

    [Fact]
    public void Prune_Retention_KeepsNewestOfThatNameOnThisNodeOnly()
    {
        foreach (var t in new[] { 100, 300, 200, 400 })
        {
            Put($"on-demand-node-a-{t}", t);
        }

        Put("on-demand-node-b-50", 50, "node-b");
        Put("etcd-snapshot-node-a-10", 10);

        var pruned = Store().Prune("on-demand", 2);

        Assert.Equal(["on-demand-node-a-200", "on-demand-node-a-100"], pruned);
        Assert.Equal(
            ["etcd-snapshot-node-a-10", "etcd-snapshot-node-a-10.json", "on-demand-node-a-300", "on-demand-node-a-300.json", "on-demand-node-a-400",
                "on-demand-node-a-400.json", "on-demand-node-b-50", "on-demand-node-b-50.json"],
            Directory.GetFiles(_dir.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Delete_OneMissing_DeletesNothingAndNamesIt()
    {
        Put("on-demand-node-a-100", 100);

        var e = Assert.Throws<SnapshotException>(() => Store().Delete(["on-demand-node-a-100", "nope"]));

        Assert.Equal($"no snapshot nope in {_dir.Path}; 'coracle etcd-snapshot ls' lists them", e.Message);
        Assert.True(File.Exists(Path.Combine(_dir.Path, "on-demand-node-a-100")));
        Assert.Equal(["on-demand-node-a-100"], Store().Delete(["on-demand-node-a-100"]));
        Assert.Empty(Directory.GetFiles(_dir.Path));
    }
}
