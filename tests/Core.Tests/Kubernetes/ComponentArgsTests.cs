using Coracle.Core.Configuration;
using Coracle.Core.Kubernetes;
using Coracle.Core.Tests.Support;
using Coracle.Plugins;

namespace Coracle.Core.Tests.Kubernetes;

public sealed class ComponentArgsTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private KubernetesPaths Paths() => new()
    {
        TlsDir = "/d/server/tls",
        CredDir = "/d/server/cred",
        DatastoreServers = ["unix:///d/run/kine.sock"],
        EgressSelectorConfigFile = "/d/server/etc/egress-selector-config.yaml",
        CriSocket = "/run/k3s/containerd.sock",
        AdvertiseAddress = "192.168.50.10",
        NodeIp = "192.168.50.10",
    };

    private static string Arg(IReadOnlyList<string> args, string name) =>
        args.Single(a => a.StartsWith($"--{name}=", StringComparison.Ordinal))[(name.Length + 3)..];

    [Fact]
    public void Merge_ExtraArgs_OverrideDefaultsAndAddNewFlagsInNameOrder()
    {
        var merged = ComponentArgs.Merge(
            new Dictionary<string, string> { ["b"] = "1", ["a"] = "2" },
            ["--b=9", "v=4", "enable-feature"]);

        Assert.Equal(["--a=2", "--b=9", "--enable-feature=true", "--v=4"], merged);
    }

    [Fact]
    public void ApiServer_Defaults_UseTheCertificatesDatastoreAndServiceNetwork()
    {
        var config = TestConfig.Server(_dir.Path, (Settings.KubeApiserverArg, "v=2"), (Settings.KubeApiserverArg, "anonymous-auth=true"));
        var args = ComponentArgs.Merge(ComponentArgs.ApiServerDefaults(config, Paths()), config.KubeApiserverArgs);

        Assert.Equal("unix:///d/run/kine.sock", Arg(args, "etcd-servers"));
        Assert.Equal("10.43.0.0/16", Arg(args, "service-cluster-ip-range"));
        Assert.Equal("/d/server/tls/client-ca.crt", Arg(args, "client-ca-file"));
        Assert.Equal("/d/server/tls/serving-kube-apiserver.crt", Arg(args, "tls-cert-file"));
        Assert.Equal("/d/server/tls/client-kube-apiserver.crt", Arg(args, "kubelet-client-certificate"));
        Assert.Equal("/d/server/tls/service.key", Arg(args, "service-account-signing-key-file"));
        Assert.Equal("https://kubernetes.default.svc.cluster.local", Arg(args, "service-account-issuer"));
        Assert.Equal("/d/server/etc/egress-selector-config.yaml", Arg(args, "egress-selector-config-file"));
        Assert.Equal("6443", Arg(args, "secure-port"));
        Assert.Equal("Node,RBAC", Arg(args, "authorization-mode"));
        Assert.Equal("true", Arg(args, "anonymous-auth"));
        Assert.Equal("2", Arg(args, "v"));
        Assert.DoesNotContain(args, a => a.StartsWith("--etcd-cafile", StringComparison.Ordinal));
    }

    [Fact]
    public void ApiServer_TlsDatastore_PassesEtcdClientFiles()
    {
        var config = TestConfig.Server(_dir.Path);
        var args = ComponentArgs.Merge(ComponentArgs.ApiServerDefaults(config, Paths() with { DatastoreTls = new TlsFiles("/c.crt", "/c.key", "/ca.crt") }), []);

        Assert.Equal("/ca.crt", Arg(args, "etcd-cafile"));
        Assert.Equal("/c.crt", Arg(args, "etcd-certfile"));
        Assert.Equal("/c.key", Arg(args, "etcd-keyfile"));
    }

    [Fact]
    public void ControllerManagerAndScheduler_Defaults_UseTheirKubeconfigsAndCidrs()
    {
        var config = TestConfig.Server(_dir.Path, (Settings.ClusterCidr, "10.52.0.0/16"), (Settings.KubeControllerManagerArg, "node-cidr-mask-size=25"));
        var cm = ComponentArgs.Merge(ComponentArgs.ControllerManagerDefaults(config, Paths()), config.KubeControllerManagerArgs);
        var scheduler = ComponentArgs.Merge(ComponentArgs.SchedulerDefaults(Paths()), config.KubeSchedulerArgs);

        Assert.Equal("10.52.0.0/16", Arg(cm, "cluster-cidr"));
        Assert.Equal("25", Arg(cm, "node-cidr-mask-size"));
        Assert.Equal("/d/server/cred/controller.kubeconfig", Arg(cm, "kubeconfig"));
        Assert.Equal("/d/server/tls/service.key", Arg(cm, "service-account-private-key-file"));
        Assert.Equal("/d/server/tls/server-ca.key", Arg(cm, "cluster-signing-kubelet-serving-key-file"));
        Assert.Equal("/d/server/cred/scheduler.kubeconfig", Arg(scheduler, "kubeconfig"));
        Assert.Equal("127.0.0.1", Arg(scheduler, "bind-address"));
    }

    [Fact]
    public void ControllerManager_ClientRateLimit_RaisedForTheStartAndTheUsersValueWins()
    {
        var config = TestConfig.Server(_dir.Path);
        var cm = ComponentArgs.Merge(ComponentArgs.ControllerManagerDefaults(config, Paths()), config.KubeControllerManagerArgs);
        Assert.Equal("200", Arg(cm, "kube-api-burst"));
        Assert.Equal("50", Arg(cm, "kube-api-qps"));
        Assert.Equal("true", Arg(cm, "use-service-account-credentials"));

        var mine = TestConfig.Server(_dir.Path, (Settings.KubeControllerManagerArg, "kube-api-qps=20"));
        var merged = ComponentArgs.Merge(ComponentArgs.ControllerManagerDefaults(mine, Paths()), mine.KubeControllerManagerArgs);
        Assert.Equal("20", Arg(merged, "kube-api-qps"));
        Assert.Single(merged, a => a.StartsWith("--kube-api-qps=", StringComparison.Ordinal));
        Assert.Equal("200", Arg(merged, "kube-api-burst"));
    }

    [Fact]
    public void KubeletAndProxy_OnAgent_UseTheAgentFolderAndServerClusterValues()
    {
        var paths = Paths() with { NodeCredDir = "/d/agent" };
        var kubelet = ComponentArgs.Merge(ComponentArgs.KubeletDefaults("edge-1", "pause:3.6", paths with { KubeletConfigFile = "/d/agent/etc/kubelet.conf.yaml" }), ["max-pods=50", "cluster-dns=10.43.0.99"]);
        var proxy = ComponentArgs.Merge(ComponentArgs.KubeProxyDefaults("edge-1", "10.42.0.0/16", paths), ["proxy-mode=ipvs"]);
        var serving = KubeletServing.For(paths, "10.43.0.10", "cluster.local", "/etc/resolv.conf");

        // 1.32: only what is still a flag is a flag; the rest is in the configuration file, and user flags still win.
        Assert.Equal(
            ["--cluster-dns=10.43.0.99", "--config=/d/agent/etc/kubelet.conf.yaml", "--hostname-override=edge-1", "--kubeconfig=/d/agent/kubelet.kubeconfig",
             "--max-pods=50", "--pod-infra-container-image=pause:3.6"],
            kubelet.Where(a => !a.StartsWith("--node-ip=", StringComparison.Ordinal)));
        Assert.Equal("/d/agent/serving-kubelet.crt", serving.TlsCertFile);
        Assert.Equal("/d/agent/client-ca.crt", serving.ClientCaFile);
        Assert.Equal("unix:///run/k3s/containerd.sock", serving.RuntimeEndpoint);
        Assert.Equal("10.43.0.10", serving.ClusterDns);
        Assert.Equal("/d/agent/kubeproxy.kubeconfig", Arg(proxy, "kubeconfig"));
        Assert.Equal("ipvs", Arg(proxy, "proxy-mode"));
    }

    [Fact]
    public void Build_BinariesPresentOrMissing_RegistersOrReportsEach()
    {
        var config = TestConfig.Server(_dir.Path, (Settings.ComponentsDir, "/k8s"));
        var unavailable = new Dictionary<string, string>();
        var specs = KubernetesComponents.Build(config, Paths(), "datastore", "containerd",
            path => path is "/k8s/kube-apiserver" or "/k8s/kubelet", (name, why) => unavailable[name] = why);

        Assert.Equal(["kube-apiserver", "kubelet"], specs.Select(s => s.Name));
        Assert.Equal(["datastore"], specs[0].DependsOn);
        Assert.Equal(["containerd", "kube-apiserver"], specs[1].DependsOn);
        var probe = Assert.IsType<HttpProbe>(specs[0].Readiness);
        Assert.Equal(new Uri("https://127.0.0.1:6443/readyz"), probe.Url);
        Assert.Equal("/d/server/tls/client-admin.crt", probe.ClientCertFile);
        Assert.Equal("binary not found in /k8s (set components-dir or CORACLE_K8S_BIN)", unavailable["kube-scheduler"]);
        Assert.Equal(["kube-controller-manager", "kube-proxy", "kube-scheduler"], unavailable.Keys.Order());
    }

    [Fact]
    public void EgressSelectorConfiguration_RoutesClusterTrafficThroughTheUnixSocket()
    {
        Assert.Equal(
            "apiVersion: apiserver.k8s.io/v1beta1\nkind: EgressSelectorConfiguration\negressSelections:\n- name: cluster\n  connection:\n    proxyProtocol: HTTPConnect\n    transport:\n      uds:\n        udsName: \"/d/server/egress.sock\"\n",
            KubernetesComponents.EgressSelectorConfiguration("/d/server/egress.sock"));
    }
}
