using Microsoft.Extensions.Logging;

namespace Coracle.Plugins.Datastore.Etcd.Logging;

/// <summary>The etcd plugin's log messages, source-generated; event ids 5000-5099 belong to this plugin.</summary>
internal static partial class Log
{
    [LoggerMessage(5000, LogLevel.Information, "embedded etcd member {Name}: clients {ClientUrls}, peers {PeerUrl}, data {DataDir} ({Binary})")]
    public static partial void Embedded(this ILogger logger, string name, string clientUrls, string peerUrl, string dataDir, string binary);

    [LoggerMessage(5001, LogLevel.Information, "joining the etcd cluster as a learner: initial cluster {InitialCluster}")]
    public static partial void Joining(this ILogger logger, string initialCluster);

    [LoggerMessage(5002, LogLevel.Warning, "--cluster-reset: starting etcd once with --force-new-cluster (a one-member cluster of its data)")]
    public static partial void ForceNewCluster(this ILogger logger);

    [LoggerMessage(5003, LogLevel.Information, "external etcd at {Servers}")]
    public static partial void External(this ILogger logger, string servers);

    [LoggerMessage(5004, LogLevel.Information, "etcd member {Name} promoted from learner to voting member")]
    public static partial void Promoted(this ILogger logger, string name);

    [LoggerMessage(5005, LogLevel.Debug, "etcd member {Name} not promoted yet: {Reason}")]
    public static partial void NotPromotedYet(this ILogger logger, string name, string reason);

    [LoggerMessage(5006, LogLevel.Information, "etcd member {Name} added as a learner with peer URLs {PeerUrls}")]
    public static partial void MemberAdded(this ILogger logger, string name, string peerUrls);

    [LoggerMessage(5007, LogLevel.Information, "etcd member {Name} removed")]
    public static partial void MemberRemoved(this ILogger logger, string name);
}
