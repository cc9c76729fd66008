using Microsoft.Extensions.Logging;

namespace Coracle.Core.Logging;

/// <summary>The agent's API server load balancer and its tunnels to every server (event ids 1200-1219).</summary>
internal static partial class Log
{
    [LoggerMessage(1200, LogLevel.Information, "load balancer: API servers through {Listen}; known servers: {Servers}")]
    public static partial void LoadBalancerListening(this ILogger logger, string listen, string servers);

    [LoggerMessage(1201, LogLevel.Information, "load balancer: using API server {Server}")]
    public static partial void LoadBalancerUsing(this ILogger logger, string server);

    [LoggerMessage(1202, LogLevel.Warning, "load balancer: switched to API server {Server} ({Reason})")]
    public static partial void LoadBalancerSwitched(this ILogger logger, string server, string reason);

    [LoggerMessage(1203, LogLevel.Warning, "load balancer: no API server answers ({Reasons}); the connection is closed and the next one tries them all again")]
    public static partial void LoadBalancerNoServer(this ILogger logger, string reasons);

    [LoggerMessage(1204, LogLevel.Information, "load balancer: servers changed from [{Before}] to [{After}]")]
    public static partial void ServerListChanged(this ILogger logger, string before, string after);

    [LoggerMessage(1205, LogLevel.Warning, "load balancer: {File} is unreadable ({Reason}); starting from the server this agent joined only")]
    public static partial void ServerListUnreadable(this ILogger logger, string file, string reason);

    [LoggerMessage(1206, LogLevel.Information, "tunnel: keeping a tunnel to server {Server}")]
    public static partial void AgentTunnelAdded(this ILogger logger, string server);

    [LoggerMessage(1207, LogLevel.Information, "tunnel: server {Server} left the cluster's API servers; its tunnel is closed")]
    public static partial void AgentTunnelDropped(this ILogger logger, string server);

    [LoggerMessage(1208, LogLevel.Warning, "server {Server} does not answer ({Reason}); joining through {Other}, another server of the cluster this agent knows")]
    public static partial void JoiningThroughAnotherServer(this ILogger logger, string server, string reason, string other);
}
