using Microsoft.Extensions.Logging;

namespace Coracle.Plugins.LoadBalancer.ServiceLb;

/// <summary>
/// ServiceLB (<c>--disable servicelb</c>): K3s's servicelb without per-service pods. Every node's in-process controller
/// forwards a LoadBalancer Service's ports on that node's own addresses to the Service's endpoints with iptables rules in
/// chains it owns; the server's controller publishes which nodes serve it in <c>status.loadBalancer</c> (docs/services.md).
/// </summary>
[CoraclePlugin("servicelb", ExtensionPoints.LoadBalancer, typeof(IServiceLoadBalancer),
    Description = "ServiceLB: LoadBalancer Services on the nodes' addresses, iptables in-process (--disable servicelb)",
    IsDefault = true, HasCleanup = true)]
[PluginSetting(PortRanges.Key, "Ports a LoadBalancer Service may take on the nodes: ports and ranges, comma-separated; a Service port outside them gets a PortNotAllowed Event and is not served", Default = PortRanges.Default)]
public sealed class ServiceLbPlugin : IServiceLoadBalancer, IPluginCleanup, IValidatesOptions
{
    /// <inheritdoc />
    public void ValidateOptions(NodeSettings node, IReadOnlyDictionary<string, string> options, string pluginDataDir)
    {
        ArgumentNullException.ThrowIfNull(options);
        _ = PortRanges.Parse(options.GetValueOrDefault(PortRanges.Key, PortRanges.Default));
    }

    /// <summary>The component's name in the supervisor and in <c>coracle status</c>.</summary>
    public const string ComponentName = "servicelb";

    /// <inheritdoc />
    /// <remarks>Registers the controller; touches neither the kernel nor Kubernetes.</remarks>
    public void Configure(IPluginContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var node = context.Node;
        if (node.ControllerKubeconfig.Length == 0)
        {
            context.Supervisor.ReportUnavailable(ComponentName, "servicelb needs the node's controller kubeconfig, and the host provides none");
            return;
        }

        var allowed = PortRanges.Parse(context.Options.GetValueOrDefault(PortRanges.Key, PortRanges.Default));
        var logger = context.LoggerFactory.CreateLogger(ComponentName);
        var supervisor = context.Supervisor;
        ServiceLbController? current = null;
        supervisor.Add(new InProcessComponent
        {
            Name = ComponentName,
            // Its API client would otherwise hold kube-apiserver's graceful shutdown.
            StopsBefore = [WellKnownComponents.KubeApiServer],
            // Its API client loads the kubeconfig's client certificate at start.
            RestartOnCertificateRenewal = true,
            Readiness = new CustomProbe(_ => Task.FromResult(current?.Ready ?? false)),
            Run = async cancellationToken =>
            {
                await FileWait.UntilExistsAsync(node.ControllerKubeconfig, f => Log.Waiting(logger, $"kubeconfig {f}"), cancellationToken);
                using var kube = new KubeSource(node.ControllerKubeconfig);
                current = new ServiceLbController(node.NodeName, node.Role == "server", kube, new Iptables(logger), new PortProbe(), logger,
                    detail => supervisor.ReportDetail(ComponentName, detail), allowed);
                await current.RunAsync(cancellationToken);
            },
        });
        supervisor.ReportDetail(ComponentName, "starting");
    }

    /// <inheritdoc />
    /// <remarks>Removes the jumps and the CORACLE-SVCLB chains from every iptables variant present; safe to repeat.</remarks>
    public async Task CleanupAsync(NodeSettings node, IReadOnlyDictionary<string, string> options, ILogger logger, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(logger);
        foreach (var variant in Iptables.VariantsOnPath())
        {
            await new Iptables(logger, variant: variant).RemoveAsync(cancellationToken);
            Log.Removed(logger, variant);
        }
    }
}
