namespace Coracle.Plugins;

/// <summary>
/// The datastore extension point: serves the etcd v3 API that kube-apiserver stores its state in.
/// Exactly one is active; K3s users pick it with <c>--datastore-endpoint</c>.
/// </summary>
public interface IDatastore
{
    /// <summary>
    /// Validates the settings, registers the components that serve the datastore with
    /// <see cref="IPluginContext.Supervisor"/> and returns where clients reach it.
    /// Nothing may be started here; the supervisor starts what was registered.
    /// </summary>
    DatastoreEndpoint Configure(IPluginContext context);
}

/// <summary>How kube-apiserver (or etcdctl) reaches the datastore.</summary>
/// <param name="Servers">etcd endpoints: <c>unix:///path</c> or <c>https://host:port</c>.</param>
/// <param name="ComponentName">The supervised component to wait for before starting kube-apiserver.</param>
public sealed record DatastoreEndpoint(IReadOnlyList<string> Servers, string ComponentName)
{
    /// <summary>Client TLS material when the endpoint needs it.</summary>
    public TlsFiles? Tls { get; init; }
}
