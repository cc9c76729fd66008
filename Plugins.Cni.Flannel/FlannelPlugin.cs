using Microsoft.Extensions.Logging;

namespace Coracle.Plugins.Cni.Flannel;

/// <summary>
/// Flannel node networking as K3s runs it: the node's subnet is its <c>spec.podCIDR</c>, backend data is published as
/// flannel's Node annotations, and an in-process component named <c>flannel</c> programs VXLAN (default) or host-gw
/// routes per peer, masquerades traffic leaving the cluster CIDR and writes subnet.env and the CNI conflist.
/// </summary>
[CoraclePlugin("flannel", ExtensionPoints.Cni, typeof(ICniPlugin),
    Description = "Flannel node networking: VXLAN (default), host-gw or none", HasCleanup = true, IsDefault = true)]
[PluginSetting("backend", "Flannel backend; none turns flannel off (K3s's --flannel-backend)", Default = "vxlan", Choices = ["vxlan", "host-gw", "none"], TurnsOff = ["none"], ClusterWide = true)]
[PluginSetting("iface", "Interface flannel uses (default: the one holding --node-ip, else the default route's)")]
[PluginSetting("flannel-external-ip", "The public IPv4 address announced to peers (default: the node IP)")]
[PluginSetting("kubeconfig", "API access for the subnet leases (default: the host's coracle-controller kubeconfig)")]
[PluginSetting("static-peers-file", "A static leases file used instead of Kubernetes")]
[PluginSetting("subnet-file", "Where subnet.env is written", Default = "/run/flannel/subnet.env")]
[PluginSetting("conf-dir", "CNI configuration folder (default: DATA/agent/etc/cni/net.d)")]
[PluginSetting("bin-dir", "CNI plugin binaries (default: the first of /usr/lib/cni, /opt/cni/bin holding bridge)")]
[PluginSetting("ipam-data-dir", "host-local's state folder written into the conflist (default: host-local's)")]
[PluginSetting("vni", "VXLAN network identifier (device flannel.VNI)", Type = PluginSettingType.Integer, Default = "1")]
[PluginSetting("port", "VXLAN UDP port", Type = PluginSettingType.Integer, Default = "8472")]
[PluginSetting("mtu", "Pod MTU; 0 derives it from the uplink", Type = PluginSettingType.Integer, Default = "0")]
[PluginSetting("ip-masq", "Masquerade traffic leaving the cluster CIDR", Type = PluginSettingType.Boolean, Default = "true")]
[PluginSetting("reconcile-seconds", "Seconds between reconcile passes", Type = PluginSettingType.Integer, Default = "5")]
[PluginFolder("cni-conf", "agent/etc/cni/net.d")]
public sealed class FlannelPlugin : ICniPlugin, IValidatesOptions, IPluginCleanup
{
    /// <summary>The supervised component's name.</summary>
    public const string ComponentName = "flannel";

    private readonly string _sysClassNet;
    private readonly IReadOnlyList<string>? _cniBinCandidates;
    private readonly Func<ILogger, ICommandRunner> _runnerFactory;

    /// <summary>Probes the real host.</summary>
    public FlannelPlugin()
        : this("/sys/class/net", null, logger => new ProcessCommandRunner(logger))
    {
    }

    /// <summary>Probes a fake interface folder and CNI bin folders (tests), running commands through the given runner.</summary>
    internal FlannelPlugin(string sysClassNet, IReadOnlyList<string>? cniBinCandidates, Func<ILogger, ICommandRunner> runnerFactory)
    {
        _sysClassNet = sysClassNet;
        _cniBinCandidates = cniBinCandidates;
        _runnerFactory = runnerFactory;
    }

    /// <summary>The data plane of the current run (null before the first start); readiness reads it.</summary>
    internal FlannelDataPlane? Current { get; private set; }

    /// <inheritdoc />
    /// <remarks>
    /// The pod veths on the cni0 bridge, flannel.* VXLAN devices, the cni0 bridge, host-gw routes into the cluster CIDR
    /// and the FLANNEL-POSTRTG / FLANNEL-FWD chains in every iptables variant (<see cref="FlannelCleanup"/>). subnet.env
    /// stays: other nodes on the same machine (network namespaces) may share it.
    /// </remarks>
    public Task CleanupAsync(NodeSettings node, IReadOnlyDictionary<string, string> options, ILogger logger, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(node);
        return FlannelCleanup.RunAsync(_runnerFactory(logger), Ipv4Cidr.Parse(node.ClusterCidr), subnetFile: null, conflistFile: null, cancellationToken);
    }

    /// <inheritdoc />
    public void ValidateOptions(NodeSettings node, IReadOnlyDictionary<string, string> options, string pluginDataDir) =>
        _ = FlannelSettings.Resolve(node, options, _sysClassNet, _cniBinCandidates);

    /// <inheritdoc />
    /// <remarks>Validates and registers the component; never touches the kernel.</remarks>
    public CniSettings Configure(IPluginContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var settings = FlannelSettings.Resolve(context.Node, context.Options, _sysClassNet, _cniBinCandidates, context.Folders);
        var cni = new CniSettings(settings.BinDir, settings.ConfDir);
        if (settings.Backend == "none")
        {
            Log.BackendNone(context.Logger);
            return cni;
        }

        var logger = context.LoggerFactory.CreateLogger(ComponentName);
        var supervisor = context.Supervisor;
        supervisor.Add(new InProcessComponent
        {
            Name = ComponentName,
            // Its Node watch would hold kube-apiserver's graceful shutdown for a minute if it outlived it.
            StopsBefore = [WellKnownComponents.KubeApiServer],

            // Its API client loads the kubeconfig's client certificate at start.
            RestartOnCertificateRenewal = true,
            Readiness = new CustomProbe(_ => Task.FromResult(Current?.Ready ?? false)),
            Run = async cancellationToken =>
            {
                var runner = _runnerFactory(logger);
                if (settings.StaticPeersFile is { } file)
                {
                    var source = new StaticLeaseSource(file, settings.ReconcileInterval);
                    var plane = new FlannelDataPlane(settings, source, runner, logger,
                        detail => supervisor.ReportDetail(ComponentName, detail), localVtepMac: source.LocalVtepMac,
                        ipamDataDir: settings.IpamDataDir);
                    Current = plane;
                    await plane.RunAsync(cancellationToken);
                }
                else
                {
                    await FileWait.UntilExistsAsync(settings.Kubeconfig, f => Log.Waiting(logger, $"kubeconfig {f}"), cancellationToken);
                    using var client = new KubernetesNodeClient(settings.Kubeconfig);
                    var source = new KubeLeaseSource(client, settings.NodeName, logger);
                    var plane = new FlannelDataPlane(settings, source, runner, logger,
                        detail => supervisor.ReportDetail(ComponentName, detail), ipamDataDir: settings.IpamDataDir);
                    Current = plane;
                    await plane.RunAsync(cancellationToken);
                }
            },
        });
        supervisor.ReportDetail(ComponentName, FlannelDataPlane.Describe(settings.Backend, null, [], null));
        return cni;
    }
}
