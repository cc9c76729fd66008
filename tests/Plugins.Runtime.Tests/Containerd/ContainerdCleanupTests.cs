using Coracle.Plugins.Runtime.Containerd;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;

namespace Coracle.Plugins.Runtime.Tests.Containerd;

/// <summary>
/// Which processes and network namespaces <c>coracle killall</c>'s containerd cleanup takes, on a fake /proc holding
/// two nodes' shims (the way several test nodes share one machine), and which socket it looks for.
/// </summary>
public sealed class ContainerdCleanupTests : IDisposable
{
    private const string Socket = "/d1/run/containerd/containerd.sock";
    private const string OtherSocket = "/d2/run/containerd/containerd.sock";

    private readonly TempDir _dir = new("ccl");

    public void Dispose() => _dir.Dispose();

    private string Proc => _dir.Combine("proc");

    private void Process(int pid, int parent, string[] args, string? netns = null, char state = 'S')
    {
        _dir.Write($"proc/{pid}/stat", $"{pid} ({Path.GetFileName(args[0])}) {state} {parent} {pid} {pid} 0 -1 4194560 0 0 0 0\n");
        _dir.Write($"proc/{pid}/cmdline", string.Join('\0', args) + "\0");
        if (netns is not null)
        {
            Directory.CreateDirectory(_dir.Combine("proc", pid.ToString(System.Globalization.CultureInfo.InvariantCulture), "ns"));
            File.CreateSymbolicLink(_dir.Combine("proc", pid.ToString(System.Globalization.CultureInfo.InvariantCulture), "ns", "net"), netns);
        }
    }

    private static string[] Shim(string id, string socket) =>
        ["/usr/bin/containerd-shim-runc-v2", "-namespace", "k8s.io", "-id", id, "-address", socket];

    private void TwoNodes()
    {
        Process(1, 0, ["/sbin/init"], "net:[4026531840]");
        Process(50, 1, ["/usr/bin/containerd", "--address", Socket], "net:[4026531840]");
        // This node: a shim with a pod (pause, a shell, the shell's child) in net:[111].
        Process(100, 1, Shim("pod-a", Socket), "net:[4026531840]");
        Process(101, 100, ["/pause"], "net:[111]");
        Process(102, 100, ["/bin/sh", "-c", "sleep 3600"], "net:[111]");
        Process(103, 102, ["sleep", "3600"], "net:[111]");
        // This node: a host-network pod.
        Process(110, 1, Shim("pod-b", Socket), "net:[4026531840]");
        Process(111, 110, ["/pause"], "net:[4026531840]");
        // Another node on the same machine: never touched.
        Process(200, 1, Shim("pod-c", OtherSocket), "net:[4026531840]");
        Process(201, 200, ["/pause"], "net:[222]");
        // Not a shim, though it names the socket.
        Process(300, 1, ["/usr/bin/ctr", "-address", Socket, "tasks", "ls"]);
    }

    [Fact]
    public void Find_TwoNodesShims_TakesOnlyThisSocketsShimsTheirDescendantsAndNamespaces()
    {
        TwoNodes();

        var targets = new ContainerdCleanup(Proc).Find(Socket);

        Assert.Equal([100, 110], targets.Shims);
        Assert.Equal([101, 102, 103, 111], targets.Containers.Order());
        Assert.Equal(["net:[111]", "net:[4026531840]"], targets.PodNetworkNamespaces.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Find_NoShimOfTheSocket_FindsNothing()
    {
        TwoNodes();

        var targets = new ContainerdCleanup(Proc).Find("/d3/run/containerd/containerd.sock");

        Assert.Empty(targets.Shims);
        Assert.Empty(targets.Containers);
        Assert.Empty(targets.PodNetworkNamespaces);
    }

    [Fact]
    public void Exists_ZombieOrMissing_CountsAsGone()
    {
        Process(10, 1, ["sleep"]);
        Process(11, 1, ["sleep"], state: 'Z');

        Assert.True(ProcessTable.Exists(Proc, 10));
        Assert.False(ProcessTable.Exists(Proc, 11));
        Assert.False(ProcessTable.Exists(Proc, 12));
    }

    [Fact]
    public void NetworkNamespaceMounts_Mountinfo_OnlyPodNamespacesOfTheGivenNamespaces()
    {
        string[] mountinfo =
        [
            "44 26 254:0 /run/netns /run/netns rw,relatime shared:1 - ext4 /dev/vda rw",
            "46 44 0:4 net:[111] /run/netns/cni-aaaa rw shared:3 - nsfs nsfs rw",
            "47 44 0:4 net:[111] /run/netns/cni-aaaa rw shared:3 - nsfs nsfs rw",
            "48 44 0:4 net:[222] /run/netns/cni-bbbb rw shared:3 - nsfs nsfs rw",
            "49 44 0:4 net:[333] /var/run/netns/cni-cc\\040cc rw shared:3 - nsfs nsfs rw",
            "50 44 0:4 net:[111] /run/netns/node-1 rw shared:3 - nsfs nsfs rw",
            "51 26 0:45 / /d1/data/agent/containerd/x rw - overlay overlay rw",
        ];

        var mounts = ContainerdCleanup.NetworkNamespaceMounts(mountinfo, new HashSet<string>(["net:[111]", "net:[333]"], StringComparer.Ordinal));

        Assert.Equal(["/run/netns/cni-aaaa", "/var/run/netns/cni-cc cc"], mounts);
    }

    [Theory]
    [InlineData(new[] { "containerd-shim-runc-v2", "-namespace", "k8s.io", "-id", "a", "-address", "/s.sock" }, "/s.sock")]
    [InlineData(new[] { "containerd-shim", "--address", "/s.sock", "-namespace", "moby" }, "/s.sock")]
    [InlineData(new[] { "containerd-shim-runc-v2", "-namespace", "k8s.io", "-address" }, null)]
    [InlineData(new[] { "containerd-shim-runc-v2", "-namespace", "k8s.io" }, null)]
    public void ArgumentAfter_ShimArguments_TheAddress(string[] args, string? expected) =>
        Assert.Equal(expected, ContainerdCleanup.ArgumentAfter(args, "-address"));

    [Fact]
    public void SocketOf_NoOption_IsTheSocketConfigureGivesTheNode()
    {
        var node = FakePluginContext.Settings(_dir.Path);
        var plugin = new ContainerdPlugin(_dir.Combine("fakeroot"), probeOverlayMount: false, pathVariable: _dir.Combine("emptybin"));
        var endpoint = plugin.Configure(new FakePluginContext(node, plugin: typeof(ContainerdPlugin)), new RuntimeOptions());

        Assert.Equal(endpoint.CriSocket, ContainerdPlugin.SocketOf(node, new Dictionary<string, string>()));
    }

    [Fact]
    public void SocketOf_SocketOptionBesideAnOptionNoLongerValid_TheOptionsSocket()
    {
        var node = FakePluginContext.Settings(_dir.Path);

        var socket = ContainerdPlugin.SocketOf(node, new Dictionary<string, string> { ["Socket"] = "/run/k3s/containerd/containerd.sock", ["snapshotter"] = "aufs", ["bogus"] = "1" });

        Assert.Equal("/run/k3s/containerd/containerd.sock", socket);
    }

    [Fact]
    public void SocketOf_RelativeSocket_ThrowsNamingTheOption()
    {
        var ex = Assert.Throws<PluginConfigException>(() =>
            ContainerdPlugin.SocketOf(FakePluginContext.Settings(_dir.Path), new Dictionary<string, string> { ["socket"] = "containerd.sock" }));

        Assert.Equal("socket", ex.Key);
    }

    [Fact]
    public async Task CleanupAsync_NothingOfThisNodeRuns_DoesNothing()
    {
        TwoNodes();
        _dir.Write("proc/self/mountinfo", "46 44 0:4 net:[222] /run/netns/cni-bbbb rw shared:3 - nsfs nsfs rw\n");
        var plugin = new ContainerdPlugin(_dir.Path, probeOverlayMount: false, pathVariable: null);
        var attribute = (CoraclePluginAttribute)Attribute.GetCustomAttribute(typeof(ContainerdPlugin), typeof(CoraclePluginAttribute))!;

        await plugin.CleanupAsync(FakePluginContext.Settings(_dir.Combine("elsewhere")), new Dictionary<string, string>(), NullLogger.Instance, CancellationToken.None);

        Assert.True(attribute.HasCleanup);
        Assert.True(File.Exists(_dir.Combine("proc", "100", "stat")));
    }
}
