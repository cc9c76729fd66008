using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Coracle.Plugins.Cni.Flannel;
using Coracle.Plugins.Cni.Tests.Support;
using Xunit;

namespace Coracle.Plugins.Cni.Tests.Flannel;

/// <summary>
/// Three hosts as network namespaces on a LAN (a bridge in a fourth namespace), each running the flannel data plane
/// from a static peers file, each with a pod attached by the real <c>bridge</c> CNI plugin using the conflist the
/// plugin wrote. Real kernel: needs root, vxlan and iptables. Everything lives in uniquely named namespaces, which
/// are deleted at the end even when the test fails (deleting a namespace removes its links, routes and rules).
/// </summary>
[Trait("Category", "Integration")]
public sealed class FlannelNamespaceTests : IDisposable
{
    private const string CniBin = "/usr/lib/cni";
    private readonly string _id = Guid.NewGuid().ToString("N")[..6];
    private readonly TempDir _dir = new("flns");
    private readonly List<string> _namespaces = [];
    private readonly Dictionary<int, TestHostProcess> _hosts = [];

    private string Host(int i) => $"fl{_id}-h{i}";

    private string Pod(int i) => $"fl{_id}-p{i}";

    private static string PublicIp(int i) => $"192.168.77.{i}";

    private static string Subnet(int i) => $"10.42.{i}.0/24";

    private static string PodIp(int i) => $"10.42.{i}.2";

    private static string Mac(int i) => $"02:00:00:00:0{i}:01";

    [Fact]
    public void DataPlane_ThreeHostsInNamespaces_PodsPingOverVxlanAndHostGwPeersRemovedRoutesRestored()
    {
        BuildLan();
        int[] all = [1, 2, 3];

        // VXLAN.
        foreach (var i in all)
        {
            WritePeers(i, all);
            Start(i, "vxlan");
        }

        foreach (var i in all)
        {
            Assert.True(Sh.Eventually(() => RoutesOf(i).Count(r => r.Contains("dev flannel.1 onlink", StringComparison.Ordinal)) == 2, TimeSpan.FromSeconds(30)),
                $"{Host(i)} routes: {string.Join(" | ", RoutesOf(i))}\n{_hosts[i].Log()}");
            AttachPod(i);
        }

        var h1Routes = RoutesOf(1);
        Assert.Contains("10.42.2.0/24 via 10.42.2.0 dev flannel.1 onlink", h1Routes);
        Assert.Contains("10.42.3.0/24 via 10.42.3.0 dev flannel.1 onlink", h1Routes);
        Assert.Contains($"10.42.2.0 lladdr {Mac(2)} PERMANENT", Sh.In(Host(1), "ip", "neigh", "show", "dev", "flannel.1"), StringComparison.Ordinal);
        Assert.Contains($"{Mac(3)} dst {PublicIp(3)} self permanent", Sh.In(Host(1), "bridge", "fdb", "show", "dev", "flannel.1"), StringComparison.Ordinal);
        var link = Sh.In(Host(1), "ip", "-d", "link", "show", "flannel.1");
        Assert.Contains("vxlan id 1 local 192.168.77.1", link, StringComparison.Ordinal);
        Assert.Contains("dstport 8472 nolearning", link, StringComparison.Ordinal);
        Assert.Contains("mtu 1450", link, StringComparison.Ordinal);
        Assert.Contains("inet 10.42.1.0/32", Sh.In(Host(1), "ip", "-4", "addr", "show", "dev", "flannel.1"), StringComparison.Ordinal);
        Assert.Contains("-A POSTROUTING -m comment --comment \"flanneld masq\" -j FLANNEL-POSTRTG", Sh.In(Host(1), "iptables-nft", "-t", "nat", "-S"), StringComparison.Ordinal);

        AssertPing(1, 2);
        AssertPing(1, 3);
        AssertPing(3, 2);

        // A route deleted by hand comes back.
        Sh.In(Host(1), "ip", "route", "del", "10.42.2.0/24");
        Assert.True(Sh.Eventually(() => RoutesOf(1).Contains("10.42.2.0/24 via 10.42.2.0 dev flannel.1 onlink"), TimeSpan.FromSeconds(20)),
            _hosts[1].Log());
        AssertPing(1, 2);

        // Host 3 leaves: it stops, and the others' peer lists no longer hold it.
        Assert.True(_hosts[3].Stop(TimeSpan.FromSeconds(20)), _hosts[3].Log());
        Assert.Empty(Sh.Run("ip", ["netns", "exec", Host(3), "ip", "link", "show", "flannel.1"]).Output);
        WritePeers(1, [1, 2]);
        WritePeers(2, [1, 2]);
        foreach (var i in new[] { 1, 2 })
        {
            Assert.True(Sh.Eventually(() => !RoutesOf(i).Any(r => r.StartsWith("10.42.3.0/24", StringComparison.Ordinal))
                && !Sh.In(Host(i), "bridge", "fdb", "show", "dev", "flannel.1").Contains(Mac(3), StringComparison.Ordinal)
                && !Sh.In(Host(i), "ip", "neigh", "show", "dev", "flannel.1").Contains("10.42.3.0", StringComparison.Ordinal),
                TimeSpan.FromSeconds(20)), _hosts[i].Log());
        }

        AssertPing(1, 2);

        // Graceful stop removes the kernel state.
        foreach (var i in new[] { 1, 2 })
        {
            Assert.True(_hosts[i].Stop(TimeSpan.FromSeconds(20)), _hosts[i].Log());
            Assert.Empty(Sh.Run("ip", ["netns", "exec", Host(i), "ip", "link", "show", "flannel.1"]).Output);
            Assert.DoesNotContain("FLANNEL", Sh.In(Host(i), "iptables-nft", "-t", "nat", "-S"), StringComparison.Ordinal);
            Assert.DoesNotContain("FLANNEL", Sh.In(Host(i), "iptables-nft", "-S"), StringComparison.Ordinal);
            Assert.False(File.Exists(_dir.Combine($"d{i}", "subnet.env")));
        }

        // host-gw, restarted; the pods stay attached to cni0.
        foreach (var i in all)
        {
            _hosts[i].Dispose();
            WritePeers(i, all);
            Start(i, "host-gw");
        }

        foreach (var i in all)
        {
            Assert.True(Sh.Eventually(() => RoutesOf(i).Count(r => r.Contains("dev eth0", StringComparison.Ordinal) && r.Contains(" via 192.168.77.", StringComparison.Ordinal)) == 2,
                TimeSpan.FromSeconds(30)), $"{Host(i)} routes: {string.Join(" | ", RoutesOf(i))}\n{_hosts[i].Log()}");
        }

        Assert.Contains("10.42.2.0/24 via 192.168.77.2 dev eth0", RoutesOf(1));
        Assert.Contains("10.42.3.0/24 via 192.168.77.3 dev eth0", RoutesOf(1));
        Assert.Empty(Sh.Run("ip", ["netns", "exec", Host(1), "ip", "link", "show", "flannel.1"]).Output);
        AssertPing(1, 2);
        AssertPing(2, 3);
        AssertPing(3, 1);

        Sh.In(Host(2), "ip", "route", "del", "10.42.1.0/24");
        Assert.True(Sh.Eventually(() => RoutesOf(2).Contains("10.42.1.0/24 via 192.168.77.1 dev eth0"), TimeSpan.FromSeconds(20)), _hosts[2].Log());

        foreach (var i in all)
        {
            Assert.True(_hosts[i].Stop(TimeSpan.FromSeconds(20)), _hosts[i].Log());
            Assert.DoesNotContain(RoutesOf(i), r => r.Contains(" via 192.168.77.", StringComparison.Ordinal));
        }
    }

    public void Dispose()
    {
        foreach (var host in _hosts.Values)
        {
            host.Dispose();
        }

        foreach (var ns in Enumerable.Reverse(_namespaces))
        {
            Sh.Run("ip", ["netns", "del", ns]);
        }

        _dir.Dispose();
    }

    private void BuildLan()
    {
        var lan = $"fl{_id}-lan";
        AddNamespace(lan);
        Sh.In(lan, "ip", "link", "add", "br0", "type", "bridge");
        Sh.In(lan, "ip", "link", "set", "br0", "up");
        for (var i = 1; i <= 3; i++)
        {
            AddNamespace(Host(i));
            AddNamespace(Pod(i));
            var hostEnd = $"fl{_id}h{i}";
            var lanEnd = $"fl{_id}l{i}";
            Sh.Must("ip", "link", "add", hostEnd, "type", "veth", "peer", "name", lanEnd);
            Sh.Must("ip", "link", "set", hostEnd, "netns", Host(i));
            Sh.Must("ip", "link", "set", lanEnd, "netns", lan);
            Sh.In(lan, "ip", "link", "set", lanEnd, "master", "br0", "up");
            Sh.In(Host(i), "ip", "link", "set", hostEnd, "name", "eth0");
            Sh.In(Host(i), "ip", "addr", "add", $"{PublicIp(i)}/24", "dev", "eth0");
            Sh.In(Host(i), "ip", "link", "set", "eth0", "up");
            Sh.In(Host(i), "ip", "link", "set", "lo", "up");
        }
    }

    private void AddNamespace(string name)
    {
        Sh.Must("ip", "netns", "add", name);
        _namespaces.Add(name);
    }

    private void WritePeers(int self, int[] members)
    {
        var peers = new JsonArray(members.Where(m => m != self).Select(m => (JsonNode)new JsonObject
        {
            ["name"] = $"h{m}",
            ["public-ip"] = PublicIp(m),
            ["subnet"] = Subnet(m),
            ["vtep-mac"] = Mac(m),
        }).ToArray());
        var file = new JsonObject { ["subnet"] = Subnet(self), ["vtep-mac"] = Mac(self), ["peers"] = peers };
        var path = _dir.Combine($"peers{self}.json");
        File.WriteAllText(path + ".tmp", file.ToJsonString());
        File.Move(path + ".tmp", path, overwrite: true);
    }

    private void Start(int i, string backend)
    {
        var data = _dir.Combine($"d{i}");
        var host = new TestHostProcess(Host(i),
        [
            "--node", $"h{i}", "--backend", backend, "--iface", "eth0", "--cluster-cidr", "10.42.0.0/16", "--data-dir", data,
            $"static-peers-file={_dir.Combine($"peers{i}.json")}", $"subnet-file={Path.Combine(data, "subnet.env")}",
            $"conf-dir={Path.Combine(data, "net.d")}", $"ipam-data-dir={Path.Combine(data, "ipam")}", "reconcile-seconds=1",
        ]);
        _hosts[i] = host;
        Assert.True(host.WaitReady(TimeSpan.FromSeconds(60)), host.Log());
        var env = SubnetEnv.Parse(File.ReadAllText(Path.Combine(data, "subnet.env")));
        Assert.Equal($"10.42.{i}.1/24", env["FLANNEL_SUBNET"]);
    }

    private void AttachPod(int i)
    {
        var conflist = JsonNode.Parse(File.ReadAllText(_dir.Combine($"d{i}", "net.d", CniConflist.FileName)))!;
        var bridge = conflist["plugins"]![0]!.DeepClone();
        bridge["name"] = conflist["name"]!.GetValue<string>();
        bridge["cniVersion"] = conflist["cniVersion"]!.GetValue<string>();
        var (code, output, error) = Sh.Run("ip", ["netns", "exec", Host(i), Path.Combine(CniBin, "bridge")], bridge.ToJsonString(),
            new Dictionary<string, string>
            {
                ["CNI_COMMAND"] = "ADD",
                ["CNI_CONTAINERID"] = $"fl{_id}c{i}",
                ["CNI_NETNS"] = $"/var/run/netns/{Pod(i)}",
                ["CNI_IFNAME"] = "eth0",
                ["CNI_PATH"] = CniBin,
            });
        Assert.True(code == 0, $"bridge ADD failed ({code}): {output} {error}");
        using var result = JsonDocument.Parse(output);
        Assert.Equal($"{PodIp(i)}/24", result.RootElement.GetProperty("ips")[0].GetProperty("address").GetString());
        Assert.Contains("mtu 1450", Sh.In(Pod(i), "ip", "link", "show", "eth0"), StringComparison.Ordinal);
    }

    private void AssertPing(int from, int to)
    {
        var (code, output, error) = Sh.Run("ip", ["netns", "exec", Pod(from), "dotnet", TestHostProcess.DllPath, "ping", PodIp(to), "10"]);
        Assert.True(code == 0, $"pod {from} -> pod {to} ({PodIp(to)}): {output} {error}\n{_hosts[from].Log()}");
    }

    private List<string> RoutesOf(int i) =>
        Sh.In(Host(i), "ip", "-4", "route", "show").Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
}
