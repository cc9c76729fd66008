using Coracle.Plugins;

namespace Coracle.Plugins.Datastore.Etcd;

/// <summary>
/// Embedded etcd (supervised) or external etcd endpoints. Placeholder: the metadata is real (selection, conflicts, listing), the implementation is not
/// there yet, so the host reports it as not implemented and never constructs it.
/// </summary>
[CoraclePlugin("etcd", ExtensionPoints.Datastore, typeof(IDatastore), Description = "Embedded etcd (supervised) or external etcd endpoints", Implemented = false, EndpointSchemes = ["http", "https"])]
public sealed class EtcdPlugin : IDatastore
{
    /// <inheritdoc />
    public DatastoreEndpoint Configure(IPluginContext context) =>
        throw new NotSupportedException("etcd is not implemented in this build");
}
