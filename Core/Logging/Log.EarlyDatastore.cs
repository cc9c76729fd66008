using Microsoft.Extensions.Logging;

namespace Coracle.Core.Logging;

/// <summary>The datastore's start before the certificates (Core/Hosting/NodeSteps.cs): event ids 1209-1239.</summary>
internal static partial class Log
{
    [LoggerMessage(1209, LogLevel.Information, "datastore plugin {Plugin} reads the node's certificates; it is configured and started after step certificates, token and kubeconfigs")]
    public static partial void DatastoreAfterCertificates(this ILogger logger, string plugin);
}
