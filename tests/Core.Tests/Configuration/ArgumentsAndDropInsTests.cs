using Coracle.Core.Configuration;
using Coracle.Core.Kubernetes;

namespace Coracle.Core.Tests.Configuration;

/// <summary>K3s's argument flags (one NAME=VALUE per occurrence), node labels and taints, and appliance.toml.d drop-ins.</summary>
public sealed class ArgumentsAndDropInsTests : IDisposable
{
    private static readonly Dictionary<string, string> Env = new() { ["HOME"] = "/home/test" };
    private readonly TempDir _dir = new("coracle-args");

    public void Dispose() => _dir.Dispose();

    private (CoracleConfig Config, List<string> Errors) Load(string? file, Dictionary<Setting, IReadOnlyList<string>>? flags = null, Dictionary<string, string>? env = null)
    {
        var (config, errors) = ConfigLoader.LoadAll("server", file, env ?? Env, flags ?? []);
        return (config, errors.Select(e => e.ToString().Replace(_dir.Path + "/", "", StringComparison.Ordinal)).ToList());
    }

    [Fact]
    public void KubeletArg_ValueWithCommas_StaysOneArgumentPerOccurrence()
    {
        var (fromFlags, errors) = Load(null, new() { [Settings.KubeletArg] = ["feature-gates=A=true,B=false", "v=2"] }, new(Env) { ["CORACLE_CONFIG_FILE"] = "" });
        var (fromEnv, _) = Load(null, env: new(Env) { ["CORACLE_CONFIG_FILE"] = "", ["CORACLE_KUBE_APISERVER_ARG"] = "admission-control-config-file=/a,b" });

        Assert.Empty(errors);
        Assert.Equal(["feature-gates=A=true,B=false", "v=2"], fromFlags.KubeletArgs);
        Assert.Equal(["admission-control-config-file=/a,b"], fromEnv.KubeApiserverArgs);
        Assert.Contains("--feature-gates=A=true,B=false", ComponentArgs.Merge(new Dictionary<string, string>(), fromFlags.KubeletArgs));
    }

    [Fact]
    public void NodeLabelsAndTaints_GoodOnesReachTheKubeletBadOnesAreErrors()
    {
        var file = _dir.Combine("appliance.toml");
        File.WriteAllText(file, "[agent]\nnode-label = [\"coracle.dev/site=shop-3\", \"tier=edge\"]\nnode-taint = [\"dedicated=edge:NoSchedule\", \"gpu:PreferNoSchedule\"]\nprotect-kernel-defaults = true\n");

        var (config, errors) = Load(file);
        var (_, bad) = Load(null, new() { [Settings.NodeLabel] = ["=x", "ok=fine"], [Settings.NodeTaint] = ["a=b:Sometimes"] }, new(Env) { ["CORACLE_CONFIG_FILE"] = "" });

        Assert.Empty(errors);
        Assert.Equal("coracle.dev/site=shop-3,tier=edge", NodeRegistration.KubeletNodeLabels(config.NodeLabels));
        Assert.Equal([new NodeTaint("dedicated", "edge", "NoSchedule"), new NodeTaint("gpu", "", "PreferNoSchedule")],
            config.NodeTaints.Select(NodeRegistration.ParseTaint).ToList());
        Assert.True(config.ProtectKernelDefaults);
        Assert.Equal(
        [
            "--node-label: '=x' is not a label; give KEY=VALUE, like topology.kubernetes.io/zone=shop-3",
            "--node-taint: 'a=b:Sometimes' is not a taint; give KEY=VALUE:EFFECT or KEY:EFFECT with EFFECT NoSchedule, PreferNoSchedule or NoExecute, like dedicated=edge:NoSchedule",
        ], bad);
    }

    [Fact]
    public void NodeExternalIp_FlagEnvironmentAndFile_BadAddressNamesTheSettingAndTheFix()
    {
        var noFile = new Dictionary<string, string>(Env) { ["CORACLE_CONFIG_FILE"] = "" };
        var (fromFlags, errors) = Load(null, new() { [Settings.NodeExternalIp] = ["192.0.2.10,2001:db8::10"] }, noFile);
        var (fromEnv, _) = Load(null, env: new(noFile) { ["CORACLE_NODE_EXTERNAL_IP"] = "198.51.100.7" });
        var file = _dir.Combine("appliance.toml");
        File.WriteAllText(file, "node-external-ip = [\"203.0.113.5\"]\n[server]\ndisable-cloud-controller = true\n");
        var (fromFile, fileErrors) = Load(file);
        var (_, badFlag) = Load(null, new() { [Settings.NodeExternalIp] = ["192.0.2.300"] }, noFile);
        File.WriteAllText(file, "node-external-ip = [\"edge.example\"]\n");
        var (_, badFile) = Load(file);

        Assert.Empty(errors);
        Assert.Equal(["192.0.2.10", "2001:db8::10"], fromFlags.NodeExternalIps);
        Assert.Equal(["198.51.100.7"], fromEnv.NodeExternalIps);
        Assert.Empty(fileErrors);
        Assert.Equal(["203.0.113.5"], fromFile.NodeExternalIps);
        Assert.True(fromFile.DisableCloudController);
        Assert.False(fromFlags.DisableCloudController);
        Assert.Equal(["--node-external-ip: '192.0.2.300' is not an IP address; give addresses like 192.168.1.10 or fd00::10"], badFlag);
        Assert.Equal(["appliance.toml:1:20: node-external-ip: 'edge.example' is not an IP address; give addresses like 192.168.1.10 or fd00::10"], badFile);
    }

    [Fact]
    public void PodLogsDir_DefaultIsK3sPlaceAFolderReachesTheKubeletARelativeOneIsAnError()
    {
        var (defaults, _) = Load(null, env: new(Env) { ["CORACLE_CONFIG_FILE"] = "" });
        var (moved, errors) = Load(null, new() { [Settings.PodLogsDir] = ["/srv/node-a/pod-logs"] }, new(Env) { ["CORACLE_CONFIG_FILE"] = "" });
        var (_, bad) = Load(null, new() { [Settings.PodLogsDir] = ["pod-logs"] }, new(Env) { ["CORACLE_CONFIG_FILE"] = "" });

        Assert.Equal("/var/log/pods", defaults.PodLogsDir);
        Assert.Empty(errors);
        var yaml = KubeletConfig.Render(new KubeletHost("systemd", "/coracle", "/v") { PodLogsDir = moved.PodLogsDir },
            new KubeletServing("0.0.0.0", "/ca", "/crt", "/key", "10.43.0.10", "cluster.local", "unix:///s", "/etc/resolv.conf"));
        Assert.Contains("podLogsDir: \"/srv/node-a/pod-logs\"\n", yaml, StringComparison.Ordinal);
        Assert.Equal(["--pod-logs-dir: 'pod-logs' is not an absolute path; use a path like /var/log/pods"], bad);
    }

    [Fact]
    public void KubeletConfig_TaintsAndProtectKernelDefaults_AreRendered()
    {
        var host = new KubeletHost("systemd", "/coracle", "/v") { Taints = [new NodeTaint("dedicated", "edge", "NoSchedule"), new NodeTaint("gpu", "", "NoExecute")], ProtectKernelDefaults = true };

        var yaml = KubeletConfig.Render(host, new KubeletServing("0.0.0.0", "/ca", "/crt", "/key", "10.43.0.10", "cluster.local", "unix:///s", "/etc/resolv.conf"));

        Assert.Contains("protectKernelDefaults: true\nregisterWithTaints:\n- key: \"dedicated\"\n  value: \"edge\"\n  effect: \"NoSchedule\"\n- key: \"gpu\"\n  effect: \"NoExecute\"\n", yaml, StringComparison.Ordinal);
    }

    [Fact]
    public void DropIns_ApplyInNameOrderAfterTheFileWithTheirOwnPositions()
    {
        var file = _dir.Combine("appliance.toml");
        File.WriteAllText(file, "log-level = \"debug\"\n[server]\ncluster-dns = \"10.43.0.10\"\n");
        Directory.CreateDirectory(file + ".d");
        File.WriteAllText(Path.Combine(file + ".d", "20-site.toml"), "[server]\ncluster-dns = \"10.43.0.53\"\n");
        File.WriteAllText(Path.Combine(file + ".d", "10-base.toml"), "log-level = \"warn\"\n[server]\ncluster-dns = \"10.43.0.20\"\n");
        File.WriteAllText(Path.Combine(file + ".d", "notes.txt"), "not toml, ignored");

        var (config, errors) = Load(file);

        Assert.Empty(errors);
        Assert.Equal("10.43.0.53", config.ClusterDns.ToString());
        Assert.Equal("appliance.toml.d/20-site.toml:2:1", config.Sources[Settings.ClusterDns].Source.Replace(_dir.Path + "/", "", StringComparison.Ordinal));
        Assert.Equal("warn", config.LogLevel);
    }

    [Fact]
    public void DropIns_ErrorsNameTheDropInFile()
    {
        var file = _dir.Combine("appliance.toml");
        File.WriteAllText(file, "log-level = \"info\"\n");
        Directory.CreateDirectory(file + ".d");
        File.WriteAllText(Path.Combine(file + ".d", "50-bad.toml"), "\n[server]\ncluster-cidr = \"nope\"\n");

        var (_, errors) = Load(file);

        Assert.Equal(["appliance.toml.d/50-bad.toml:3:16: server.cluster-cidr: 'nope' is not a valid CIDR; use a network like 10.42.0.0/16"], errors);
    }
}
