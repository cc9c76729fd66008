using Coracle.Core.Kubernetes;
using Coracle.Core.Node;

namespace Coracle.Node.Tests.Node;

/// <summary>Host detection, the kubelet's cgroup root and configuration file, and the node tools' argument handling, on fake roots.</summary>
public sealed class HostTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("coracle-host-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private string Write(string relative, string content)
    {
        var path = Path.Combine(_root, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, content);
        return path;
    }

    private void FakeV1Host()
    {
        Write("proc/1/comm", "process_api\n");
        Write("proc/swaps", "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n");
        Write("proc/self/mountinfo", """
            31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
            32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
            34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
            35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
            40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
            41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw

            """);
        Write("sys/fs/cgroup/cpuset/cpuset.cpus", "0-1\n");
        Write("sys/fs/cgroup/cpuset/cpuset.mems", "0\n");
    }

    [Fact]
    public void Detect_CgroupV1HybridWithoutSystemd_CgroupfsAndEveryV1Hierarchy()
    {
        FakeV1Host();
        var facts = HostFacts.Detect(_root);

        Assert.False(facts.CgroupV2Unified);
        Assert.False(facts.SwapOn);
        Assert.Equal("cgroupfs", facts.CgroupDriver);
        Assert.Equal(["cpu", "cpuset", "memory", "name=systemd"], facts.V1Controllers.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(Path.Combine(_root, "sys/fs/cgroup/cpuset"), facts.V1Controllers["cpuset"]);
        Assert.Equal("/coracle/edge-1", CgroupRoot.For(facts, "edge-1"));
    }

    [Fact]
    public void Detect_CgroupV2WithSystemdAndSwap_SystemdDriverAndRootCgroup()
    {
        Write("proc/1/comm", "systemd\n");
        Write("sys/fs/cgroup/cgroup.controllers", "cpuset cpu io memory pids\n");
        Write("proc/swaps", "Filename\tType\tSize\tUsed\tPriority\n/swapfile file 102396 0 -2\n");
        var facts = HostFacts.Detect(_root);

        Assert.True(facts.CgroupV2Unified);
        Assert.True(facts.SwapOn);
        Assert.Equal("systemd", facts.CgroupDriver);
        Assert.Equal("/", CgroupRoot.For(facts, "pi"));
        Assert.Empty(CgroupRoot.Ensure(facts, "/"));
    }

    [Fact]
    public void Ensure_CgroupV1_CreatesTheRootInEveryHierarchyWithCpusetFilledFromTheParent()
    {
        FakeV1Host();
        var facts = HostFacts.Detect(_root);
        var created = CgroupRoot.Ensure(facts, "/coracle/edge-1", _root);

        Assert.Equal(8, created.Count);
        Assert.True(Directory.Exists(Path.Combine(_root, "sys/fs/cgroup/memory/coracle/edge-1")));
        Assert.True(Directory.Exists(Path.Combine(_root, "sys/fs/cgroup/systemd/coracle/edge-1")));

        // A real cpuset folder starts with empty files; the fake one has none, so none are invented.
        Assert.False(File.Exists(Path.Combine(_root, "sys/fs/cgroup/cpuset/coracle/edge-1/cpuset.cpus")));
        Write("sys/fs/cgroup/cpuset/coracle/cpuset.cpus", "");
        Write("sys/fs/cgroup/cpuset/coracle/cpuset.mems", "");
        Write("sys/fs/cgroup/cpuset/coracle/edge-1/cpuset.cpus", "");
        Write("sys/fs/cgroup/cpuset/coracle/edge-1/cpuset.mems", "");
        Assert.Empty(CgroupRoot.Ensure(facts, "/coracle/edge-1", _root));
        Assert.Equal("0-1", File.ReadAllText(Path.Combine(_root, "sys/fs/cgroup/cpuset/coracle/edge-1/cpuset.cpus")));
        Assert.Equal("0", File.ReadAllText(Path.Combine(_root, "sys/fs/cgroup/cpuset/coracle/edge-1/cpuset.mems")));
    }

    [Fact]
    public void Remove_EmptyCgroupRoot_RemovesItAndTheSharedParent()
    {
        FakeV1Host();
        var facts = HostFacts.Detect(_root);
        CgroupRoot.Ensure(facts, "/coracle/edge-1", _root);
        Directory.CreateDirectory(Path.Combine(_root, "sys/fs/cgroup/memory/coracle/edge-1/kubepods/besteffort"));

        Assert.Empty(CgroupRoot.Remove(facts, "/coracle/edge-1", _root));
        Assert.False(Directory.Exists(Path.Combine(_root, "sys/fs/cgroup/memory/coracle")));
    }

    [Fact]
    public void Render_CgroupfsHost_WritesTheKubeletConfiguration()
    {
        var yaml = KubeletConfig.Render(
            new KubeletHost("cgroupfs", "/coracle/edge-1", "/var/lib/coracle/agent/libexec/kubernetes/kubelet-plugins/volume/exec"),
            new KubeletServing("127.0.0.1", "/d/agent/client-ca.crt", "/d/agent/serving-kubelet.crt", "/d/agent/serving-kubelet.key",
                "10.43.0.10", "cluster.local", "unix:///d/run/containerd/containerd.sock", "/etc/resolv.conf"));

        Assert.Equal("""
            apiVersion: kubelet.config.k8s.io/v1beta1
            kind: KubeletConfiguration
            address: "127.0.0.1"
            readOnlyPort: 0
            tlsCertFile: "/d/agent/serving-kubelet.crt"
            tlsPrivateKeyFile: "/d/agent/serving-kubelet.key"
            authentication:
              anonymous:
                enabled: false
              webhook:
                enabled: true
              x509:
                clientCAFile: "/d/agent/client-ca.crt"
            authorization:
              mode: Webhook
            clusterDNS: ["10.43.0.10"]
            clusterDomain: "cluster.local"
            containerRuntimeEndpoint: "unix:///d/run/containerd/containerd.sock"
            resolvConf: "/etc/resolv.conf"
            cgroupDriver: cgroupfs
            cgroupRoot: "/coracle/edge-1"
            failSwapOn: false
            evictionHard:
              imagefs.available: "5%"
              memory.available: "50Mi"
              nodefs.available: "5%"
              nodefs.inodesFree: "5%"
            evictionMinimumReclaim:
              imagefs.available: "10%"
              nodefs.available: "10%"
            imageGCHighThresholdPercent: 90
            imageGCLowThresholdPercent: 80
            volumePluginDir: "/var/lib/coracle/agent/libexec/kubernetes/kubelet-plugins/volume/exec"
            healthzBindAddress: 127.0.0.1
            healthzPort: 10248
            serializeImagePulls: false
            podLogsDir: "/var/log/pods"

            """, yaml);
    }

    [Fact]
    public void ResolvConf_LoopbackOnlyWithSystemdResolved_UsesTheUpstreamFile()
    {
        var root = Directory.CreateTempSubdirectory("coracle-resolv-").FullName;
        try
        {
            Directory.CreateDirectory(Path.Combine(root, "etc"));
            File.WriteAllText(Path.Combine(root, "etc/resolv.conf"), "nameserver 127.0.0.53\noptions edns0\n");
            Assert.Equal("/etc/resolv.conf", KubeletConfig.ResolvConf(root));

            Directory.CreateDirectory(Path.Combine(root, "run/systemd/resolve"));
            File.WriteAllText(Path.Combine(root, "run/systemd/resolve/resolv.conf"), "nameserver 192.0.2.53\n");
            Assert.Equal("/run/systemd/resolve/resolv.conf", KubeletConfig.ResolvConf(root));

            File.WriteAllText(Path.Combine(root, "etc/resolv.conf"), "nameserver 127.0.0.53\nnameserver 192.0.2.1\n");
            Assert.Equal("/etc/resolv.conf", KubeletConfig.ResolvConf(root));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public void CtrArguments_UserGaveNothingOrTheirOwn_AddsOnlyWhatIsMissing()
    {
        Assert.Equal(["--address", "/d/run/containerd/containerd.sock", "--namespace", "k8s.io", "images", "ls"],
            NodeTools.CtrArguments("/d/run/containerd/containerd.sock", ["images", "ls"], null));
        Assert.Equal(["--address", "/s", "-n", "default", "tasks", "ls"], NodeTools.CtrArguments("/s", ["-n", "default", "tasks", "ls"], null));
        Assert.Equal(["--namespace", "k8s.io", "--address=/other", "c", "ls"], NodeTools.CtrArguments("/s", ["--address=/other", "c", "ls"], null));
        Assert.Equal(["--address", "/s", "images", "ls"], NodeTools.CtrArguments("/s", ["images", "ls"], "moby"));
    }

    [Fact]
    public void Killall_RuleFilter_MatchesOnlyNodeRules()
    {
        Assert.True(Killall.IsNodeRule("-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING"));
        Assert.False(Killall.IsNodeRule(":FLANNEL-FWD - [0:0]")); // flannel's chains are its own cleanup (IPluginCleanup)
        Assert.True(Killall.IsNodeRule("-A CNI-HOSTPORT-DNAT -j CNI-DN-1234"));
        Assert.False(Killall.IsNodeRule("-A INPUT -p tcp --dport 22 -j ACCEPT"));
    }
}
