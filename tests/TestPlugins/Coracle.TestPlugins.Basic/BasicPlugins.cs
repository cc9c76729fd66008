using Coracle.Plugins;

namespace Coracle.TestPlugins.Basic;

/// <summary>A datastore that serves nothing but runs as a real in-process component with a socket probe.</summary>
[CoraclePlugin("sqlite", ExtensionPoints.Datastore, typeof(IDatastore), Description = "test datastore", EndpointSchemes = ["", "sqlite"])]
public sealed class TestDatastore : IDatastore
{
    /// <inheritdoc />
    public DatastoreEndpoint Configure(IPluginContext context)
    {
        var socket = Path.Combine(context.Node.RunDir, "test-datastore.sock");
        context.Supervisor.Add(new InProcessComponent
        {
            Name = "datastore",
            Readiness = new UnixSocketProbe(socket),
            Run = async ct =>
            {
                using var listener = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
                File.Delete(socket);
                listener.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(socket));
                listener.Listen(4);
                await Task.Delay(Timeout.Infinite, ct).ContinueWith(_ => { }, TaskScheduler.Default);
            },
        });
        return new DatastoreEndpoint(["unix://" + socket], "datastore");
    }
}

/// <summary>
/// A datastore of its own URL scheme (<c>--datastore-endpoint memdb://NAME</c>), chosen by the scheme it declares alone;
/// option <c>size</c> must be a number.
/// </summary>
[CoraclePlugin("memdb", ExtensionPoints.Datastore, typeof(IDatastore), Description = "test datastore with its own scheme", EndpointSchemes = ["memdb"], HasCleanup = true)]
[PluginSetting("size", "Megabytes of memory for the store (checked by the plugin)", Default = "32")]
[PluginSetting("journal", "Keep a journal (checked by the host)", Default = "on", Choices = ["on", "off"])]
public sealed class MemDatastore : IDatastore, IValidatesOptions, IPluginCleanup
{
    /// <inheritdoc />
    public Task CleanupAsync(NodeSettings node, IReadOnlyDictionary<string, string> options, Microsoft.Extensions.Logging.ILogger logger, CancellationToken cancellationToken) =>
        File.WriteAllTextAsync(Path.Combine(node.DataDir, "cleanup-memdb"), $"size={options.GetValueOrDefault("size", "(none)")} journal={options.GetValueOrDefault("journal", "(none)")}", cancellationToken);

    /// <inheritdoc />
    public void ValidateOptions(NodeSettings node, IReadOnlyDictionary<string, string> options, string pluginDataDir)
    {
        if (options.TryGetValue("size", out var size) && !int.TryParse(size, System.Globalization.CultureInfo.InvariantCulture, out _))
        {
            throw new PluginConfigException("size", $"'{size}' is not a number of megabytes; write for example size = \"64\"");
        }
    }

    /// <inheritdoc />
    public DatastoreEndpoint Configure(IPluginContext context) => new TestDatastore().Configure(context);
}

/// <summary>A runtime that runs `sleep` as its process; option mode other than "sleep" is a config error.</summary>
[CoraclePlugin("containerd", ExtensionPoints.ContainerRuntime, typeof(IContainerRuntime), Description = "test runtime", IsDefault = true)]
[PluginSetting("mode", "Test mode (checked by the plugin)", Default = "sleep")]
public sealed class TestRuntime : IContainerRuntime, IValidatesOptions
{
    /// <inheritdoc />
    public void ValidateOptions(NodeSettings node, IReadOnlyDictionary<string, string> options, string pluginDataDir)
    {
        if (options.TryGetValue("mode", out var mode) && mode != "sleep")
        {
            throw new PluginConfigException("mode", $"'{mode}' is not a mode; use mode = \"sleep\"");
        }
    }

    /// <inheritdoc />
    public RuntimeEndpoint Configure(IPluginContext context, RuntimeOptions options)
    {
        ValidateOptions(context.Node, context.Options, context.PluginDataDir);

        File.WriteAllText(Path.Combine(context.PluginDataDir, "handlers.txt"), string.Join(",", options.Handlers.Select(h => h.Name)));
        context.Supervisor.Add(new ProcessComponent
        {
            Name = "runtime",
            FileName = "/bin/sleep",
            Arguments = ["3600"],
            DependsOn = context.Node.Role == "server" ? ["datastore"] : [],
        });
        return new RuntimeEndpoint("/dev/null", "runtime");
    }
}

/// <summary>A CNI that only returns folders; its cleanup leaves a marker in the data dir.</summary>
[CoraclePlugin("flannel", ExtensionPoints.Cni, typeof(ICniPlugin), Description = "test cni", HasCleanup = true, IsDefault = true)]
[PluginSetting("backend", "Test backend; none turns the plugin off", Default = "vxlan", Choices = ["vxlan", "none"], TurnsOff = ["none"], ClusterWide = true)]
public sealed class TestCni : ICniPlugin, IPluginCleanup
{
    /// <inheritdoc />
    public Task CleanupAsync(NodeSettings node, IReadOnlyDictionary<string, string> options, Microsoft.Extensions.Logging.ILogger logger, CancellationToken cancellationToken) =>
        File.WriteAllTextAsync(Path.Combine(node.DataDir, "cleanup-flannel"), node.ClusterCidr, cancellationToken);

    /// <inheritdoc />
    public CniSettings Configure(IPluginContext context) => new("/opt/cni/bin", Path.Combine(context.PluginDataDir, "net.d"));
}

/// <summary>An ingress that writes a manifest; its cleanup leaves a marker in the data dir.</summary>
[CoraclePlugin("traefik", ExtensionPoints.Ingress, typeof(IIngressController), Description = "test ingress", IsDefault = true, HasCleanup = true)]
public sealed class TestIngress : IIngressController, IPluginCleanup
{
    /// <inheritdoc />
    public void Configure(IPluginContext context) => context.Manifests.Write("traefik.yaml", "kind: Test\n");

    /// <inheritdoc />
    public Task CleanupAsync(NodeSettings node, IReadOnlyDictionary<string, string> options, Microsoft.Extensions.Logging.ILogger logger, CancellationToken cancellationToken) =>
        File.WriteAllTextAsync(Path.Combine(node.DataDir, "cleanup-traefik"), node.Role, cancellationToken);
}

/// <summary>A load balancer that is declared but not implemented.</summary>
[CoraclePlugin("servicelb", ExtensionPoints.LoadBalancer, typeof(IServiceLoadBalancer), Description = "test lb", Implemented = false, IsDefault = true)]
public sealed class TestLoadBalancer : IServiceLoadBalancer
{
    /// <inheritdoc />
    public void Configure(IPluginContext context) => throw new NotSupportedException("never constructed");
}

/// <summary>A runtime handler found on every host.</summary>
[CoraclePlugin("test-handler", ExtensionPoints.RuntimeHandler, typeof(IRuntimeHandlerProvider), Description = "test handler")]
public sealed class TestHandler : IRuntimeHandlerProvider
{
    /// <inheritdoc />
    public IReadOnlyList<RuntimeHandler> Discover(IPluginContext context) => [new RuntimeHandler("test", "/bin/true")];
}
