using System.Security.Cryptography;
using Coracle.Core.Hosting;
using Coracle.Core.Tests.Support;
using static Coracle.Core.Hosting.DatastoreMigration;

namespace Coracle.Core.Tests.Hosting;

/// <summary>
/// The SQLite → embedded etcd migration's decision (<see cref="DatastoreMigration.Decide"/>, every case) and the real
/// <c>coracle server --cluster-init</c> over an unreadable <c>state.db</c>: one error line naming the file, exit 1, no etcd
/// data, no marker and the file byte for byte as it was. The copy itself: ImportTests (plugins) and EmbeddedEtcdNodeTests.
/// </summary>
public sealed class DatastoreMigrationTests : IDisposable
{
    private readonly TempDir _temp = new("migr");

    public void Dispose() => _temp.Dispose();

    public static TheoryData<bool, string?, bool, string?, bool, string> Cases => new()
    {
        // joins, selected (null: cannot import), selected empty, marker's target, old data present → action
        { false, "etcd", true, null, true, nameof(Decision.Migrate) },
        { false, "etcd", true, null, false, nameof(Decision.None) },
        { false, "etcd", false, null, true, nameof(Decision.None) },
        { false, null, false, null, true, nameof(Decision.None) },
        { false, "etcd", false, "etcd", true, nameof(Decision.Resume) },
        { false, "etcd", false, "etcd", false, nameof(Decision.Finish) },
        { false, null, false, "etcd", true, nameof(Decision.Pending) },
        { false, "other", false, "etcd", true, nameof(Decision.Pending) },
        { true, "etcd", true, null, true, nameof(Decision.IgnoreJoined) },
        { true, "etcd", true, "etcd", true, nameof(Decision.IgnoreJoined) },
        { true, "etcd", false, null, true, nameof(Decision.None) },
        { true, "etcd", true, null, false, nameof(Decision.None) },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Decide_EveryCase_ExpectedAction(bool joins, string? selected, bool selectedIsEmpty, string? markerTo, bool oldDataPresent, string expected) =>
        Assert.Equal(Enum.Parse<Decision>(expected), Decide(joins, selected, selectedIsEmpty, markerTo, oldDataPresent));

    [Fact]
    public void CoracleServer_ClusterInitOverCorruptStateDb_Exit1OneLineNamingTheFileAndNothingChanged()
    {
        var dataDir = _temp.Combine("data");
        var db = Path.Combine(dataDir, "server", "db");
        Directory.CreateDirectory(db);
        var stateDb = Path.Combine(db, "state.db");
        var bytes = RandomNumberGenerator.GetBytes(16384);
        File.WriteAllBytes(stateDb, bytes);

        var (code, _, stderr) = Run.Tool(Executable, "server", "--data-dir", dataDir, "--cluster-init", "--node-name", "migr-1", "--node-ip", "127.0.0.1");

        Assert.True(code == 1, $"exit {code}: {stderr}");
        Assert.Equal(
            [$"coracle: error: datastore migration: the SQLite database {stateDb} cannot be read: SQLite Error 26: 'file is not a database'; this server copies it into the etcd datastore before it starts: restore it from a snapshot, or move it aside to start etcd empty (nothing was changed)"],
            stderr.Split('\n').Where(l => l.StartsWith("coracle: error:", StringComparison.Ordinal)));
        Assert.Equal(bytes, File.ReadAllBytes(stateDb));
        Assert.Equal([stateDb], Directory.GetFiles(db));
        Assert.Empty(Directory.GetDirectories(db));
        Assert.False(File.Exists(MarkerPath(dataDir)));
        Assert.False(Directory.Exists(Path.Combine(dataDir, "server", "tls")));
    }

    private static string Executable
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Directory.Packages.props")))
            {
                dir = dir.Parent;
            }

            return Path.Combine(dir!.FullName, "Core", "bin", new DirectoryInfo(AppContext.BaseDirectory).Parent!.Name, "net10.0", "coracle");
        }
    }
}
