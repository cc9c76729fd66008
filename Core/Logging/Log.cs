using Microsoft.Extensions.Logging;

namespace Coracle.Core.Logging;

/// <summary>Every log message of the core, source-generated, with its event id kept in this one file.</summary>
internal static partial class Log
{
    // 1xx: start-up and composition
    [LoggerMessage(100, LogLevel.Information, "coracle {Version} {Role} starting (data dir {DataDir}, config {ConfigFile})")]
    public static partial void Starting(this ILogger logger, string version, string role, string dataDir, string configFile);

    [LoggerMessage(101, LogLevel.Information, "plugins composed: {Active} active of {Installed} installed in {Elapsed} ms")]
    public static partial void Composed(this ILogger logger, string active, int installed, long elapsed);

    [LoggerMessage(102, LogLevel.Warning, "{Point}: plugin {Name} is selected but not implemented in this build; it is reported, not started")]
    public static partial void NotImplemented(this ILogger logger, string point, string name);

    [LoggerMessage(109, LogLevel.Information, "{Point}: plugin {Name} is off: the server's {Setting} = {Value}")]
    public static partial void TurnedOffByServer(this ILogger logger, string point, string name, string setting, string value);

    [LoggerMessage(110, LogLevel.Information, "addon {Name} is off ({Why}); its manifest {File} is removed")]
    public static partial void AddonOff(this ILogger logger, string name, string why, string file);

    [LoggerMessage(111, LogLevel.Information, "{Point}: plugin {Name} is off ({Why}); removing what an earlier run set up")]
    public static partial void PluginOffCleanup(this ILogger logger, string point, string name, string why);

    [LoggerMessage(112, LogLevel.Warning, "this agent cannot run every plugin its server runs ({Errors}); those stay off on this node")]
    public static partial void AgentCannotFollow(this ILogger logger, string errors);

    [LoggerMessage(113, LogLevel.Information, "thread pool minimum back to {Workers} workers ({Why}, {Elapsed} ms after the supervisor started)")]
    public static partial void ThreadPoolMinimumRestored(this ILogger logger, int workers, string why, long elapsed);

    [LoggerMessage(103, LogLevel.Information, "{Point}: none active")]
    public static partial void PointEmpty(this ILogger logger, string point);

    [LoggerMessage(104, LogLevel.Information, "supervisor running with {Count} components; node started in {Elapsed} ms")]
    public static partial void SupervisorRunning(this ILogger logger, int count, long elapsed);

    [LoggerMessage(105, LogLevel.Information, "received {Signal}; stopping")]
    public static partial void SignalReceived(this ILogger logger, string signal);

    [LoggerMessage(106, LogLevel.Information, "stopped cleanly")]
    public static partial void Stopped(this ILogger logger);

    [LoggerMessage(107, LogLevel.Warning, "{Component} is not available: {Reason}")]
    public static partial void Unavailable(this ILogger logger, string component, string reason);

    [LoggerMessage(108, LogLevel.Information, "step: {Step}")]
    public static partial void Step(this ILogger logger, string step);

    // 2xx: supervisor
    [LoggerMessage(200, LogLevel.Information, "starting: {CommandLine}")]
    public static partial void ProcessStarting(this ILogger logger, string commandLine);

    [LoggerMessage(201, LogLevel.Information, "started (pid {Pid})")]
    public static partial void ProcessStarted(this ILogger logger, int pid);

    [LoggerMessage(202, LogLevel.Information, "ready after {Elapsed} ms")]
    public static partial void Ready(this ILogger logger, long elapsed);

    [LoggerMessage(203, LogLevel.Warning, "exited ({Reason}); restart {Restart} in {Delay} ms")]
    public static partial void Restarting(this ILogger logger, string reason, int restart, long delay);

    [LoggerMessage(204, LogLevel.Error, "crash loop: {Restarts} restarts within {Window}; giving up (last: {Reason})")]
    public static partial void CrashLoop(this ILogger logger, int restarts, string window, string reason);

    [LoggerMessage(205, LogLevel.Information, "waiting for {What} ({Elapsed} s)")]
    public static partial void Waiting(this ILogger logger, string what, long elapsed);

    [LoggerMessage(206, LogLevel.Information, "stopping (SIGTERM, up to {Timeout} ms)")]
    public static partial void Stopping(this ILogger logger, long timeout);

    [LoggerMessage(207, LogLevel.Warning, "did not stop within {Timeout} ms; killing")]
    public static partial void Killing(this ILogger logger, long timeout);

    [LoggerMessage(208, LogLevel.Information, "stopped")]
    public static partial void ComponentStopped(this ILogger logger);

    [LoggerMessage(209, LogLevel.Error, "failed to start: {Reason}")]
    public static partial void StartFailed(this ILogger logger, string reason);

    [LoggerMessage(210, LogLevel.Information, "{Line}")]
    public static partial void Output(this ILogger logger, string line);

    [LoggerMessage(211, LogLevel.Information, "exited with code 0; not restarted")]
    public static partial void Completed(this ILogger logger);

    [LoggerMessage(212, LogLevel.Warning, "setpriv not found: child processes may outlive coracle if it is killed; install util-linux")]
    public static partial void NoSetpriv(this ILogger logger);

    [LoggerMessage(213, LogLevel.Information, "output to {File}")]
    public static partial void OutputTo(this ILogger logger, string file);

    [LoggerMessage(214, LogLevel.Warning, "{Line}")]
    public static partial void OutputError(this ILogger logger, string line);

    [LoggerMessage(215, LogLevel.Warning, "{Count} more error lines in {File}")]
    public static partial void MoreErrorLines(this ILogger logger, int count, string file);

    [LoggerMessage(220, LogLevel.Information, "stopping; {Count} more error lines since the last report are in {File}")]
    public static partial void MoreErrorLinesAtStop(this ILogger logger, int count, string file);

    [LoggerMessage(216, LogLevel.Warning, "exited ({Reason}); its last {Count} lines follow, all of its output is in {File}")]
    public static partial void ExitTail(this ILogger logger, string reason, int count, string file);

    [LoggerMessage(217, LogLevel.Warning, "| {Line}")]
    public static partial void ExitTailLine(this ILogger logger, string line);

    [LoggerMessage(218, LogLevel.Debug, "while stopping: {Line}")]
    public static partial void OutputWhileStopping(this ILogger logger, string line);

    [LoggerMessage(219, LogLevel.Information, "exited while the node stops ({Reason}); not restarted")]
    public static partial void ExitedWhileStopping(this ILogger logger, string reason);

    [LoggerMessage(221, LogLevel.Information, "restarting now: {Reason}")]
    public static partial void PlannedRestart(this ILogger logger, string reason);

    // 3xx: status
    [LoggerMessage(300, LogLevel.Information, "status socket listening on {Path}")]
    public static partial void StatusListening(this ILogger logger, string path);

    [LoggerMessage(301, LogLevel.Debug, "status request failed: {Reason}")]
    public static partial void StatusFailed(this ILogger logger, string reason);

    [LoggerMessage(302, LogLevel.Debug, "data dir recorded in {Path}")]
    public static partial void RunRecordWritten(this ILogger logger, string path);

    [LoggerMessage(303, LogLevel.Warning, "could not record the data dir in {Path} ({Reason}); 'coracle status', 'kubectl' and 'ctr' will need --data-dir or CORACLE_DATA_DIR")]
    public static partial void RunRecordFailed(this ILogger logger, string path, string reason);

    // 4xx: cluster identity (certificates, tokens, kubeconfigs)
    [LoggerMessage(400, LogLevel.Information, "certificates in {Directory}: {Created} created, {Renewed} renewed, {Reused} reused")]
    public static partial void CertificatesReady(this ILogger logger, string directory, int created, int renewed, int reused);

    [LoggerMessage(401, LogLevel.Information, "certificate {Name}: {Action} (valid until {NotAfter:u})")]
    public static partial void CertificateAction(this ILogger logger, string name, string action, DateTimeOffset notAfter);

    [LoggerMessage(404, LogLevel.Warning, "renewing certificates failed ({Reason}); the current ones stay in use, next try in {Minutes} min")]
    public static partial void CertificateRenewalFailed(this ILogger logger, string reason, double minutes);

    [LoggerMessage(405, LogLevel.Information, "new certificates ({Names}) loaded by restarting {Components}")]
    public static partial void CertificatesReloaded(this ILogger logger, string names, string components);

    [LoggerMessage(406, LogLevel.Information, "certificates due for renewal ({Names}): joining the server again for new ones")]
    public static partial void AgentCertificatesDue(this ILogger logger, string names);

    [LoggerMessage(402, LogLevel.Information, "kubeconfig written: {Path}")]
    public static partial void KubeconfigWritten(this ILogger logger, string path);

    [LoggerMessage(403, LogLevel.Information, "server token ready in {Path} (show it with 'coracle token show')")]
    public static partial void TokenReady(this ILogger logger, string path);

    // 5xx: join API, agent, tunnel, egress
    [LoggerMessage(500, LogLevel.Information, "join API listening on :{Port} (HTTPS)")]
    public static partial void JoinListening(this ILogger logger, int port);

    [LoggerMessage(501, LogLevel.Warning, "join API rejected {Remote} on {Path}: {Reason}")]
    public static partial void JoinRejected(this ILogger logger, string remote, string path, string reason);

    [LoggerMessage(502, LogLevel.Information, "signed certificates for node {Node} (addresses {Addresses}) requested from {Remote}")]
    public static partial void JoinSigned(this ILogger logger, string node, string addresses, string remote);

    [LoggerMessage(503, LogLevel.Information, "tunnel from node {Node} connected (addresses {Addresses})")]
    public static partial void TunnelConnected(this ILogger logger, string node, string addresses);

    [LoggerMessage(504, LogLevel.Information, "tunnel from node {Node} disconnected")]
    public static partial void TunnelDisconnected(this ILogger logger, string node);

    [LoggerMessage(510, LogLevel.Information, "egress proxy listening on {Path}")]
    public static partial void EgressListening(this ILogger logger, string path);

    [LoggerMessage(511, LogLevel.Debug, "egress CONNECT {Target} through the tunnel of node {Node}")]
    public static partial void EgressTunnel(this ILogger logger, string target, string node);

    [LoggerMessage(512, LogLevel.Debug, "egress CONNECT {Target} dialled directly (this node)")]
    public static partial void EgressDirect(this ILogger logger, string target);

    [LoggerMessage(513, LogLevel.Debug, "egress CONNECT {Target} failed: {Reason}")]
    public static partial void EgressFailed(this ILogger logger, string target, string reason);

    [LoggerMessage(514, LogLevel.Warning, "egress CONNECT {Target} answered 502: {Reason}")]
    public static partial void EgressRefused(this ILogger logger, string target, string reason);

    [LoggerMessage(520, LogLevel.Information, "waiting for server {Server}: {Reason}; retrying in {Delay} s")]
    public static partial void WaitingForServer(this ILogger logger, string server, string reason, long delay);

    [LoggerMessage(521, LogLevel.Information, "joined {Server} as node {Node}; certificates and kubeconfigs in {Directory}")]
    public static partial void AgentJoined(this ILogger logger, string server, string node, string directory);

    [LoggerMessage(522, LogLevel.Information, "tunnel to {Url} connected")]
    public static partial void AgentTunnelConnected(this ILogger logger, string url);

    [LoggerMessage(523, LogLevel.Warning, "tunnel to {Url} lost ({Reason}); waiting for server, reconnecting in {Delay} ms")]
    public static partial void AgentTunnelLost(this ILogger logger, string url, string reason, long delay);

    [LoggerMessage(524, LogLevel.Warning, "tunnel stream to {Target} refused: {Reason}")]
    public static partial void TunnelStreamRefused(this ILogger logger, string target, string reason);

    // 6xx: Kubernetes components
    [LoggerMessage(600, LogLevel.Information, "{Component} arguments: {Arguments}")]
    public static partial void KubernetesArguments(this ILogger logger, string component, string arguments);

    [LoggerMessage(601, LogLevel.Information, "sysctl {Key}={Value} (was {Original}; coracle killall restores it)")]
    public static partial void SysctlSet(this ILogger logger, string key, string value, string original);

    [LoggerMessage(602, LogLevel.Information, "host: cgroup {Version}, driver {Driver}, kubelet cgroup root {CgroupRoot} ({Created} folders created), swap on: {Swap}")]
    public static partial void HostDetected(this ILogger logger, string version, string driver, string cgroupRoot, int created, bool swap);

    [LoggerMessage(700, LogLevel.Information, "cluster RBAC: {Kind} {Name} applied")]
    public static partial void RbacApplied(this ILogger logger, string kind, string name);

    [LoggerMessage(701, LogLevel.Warning, "cluster RBAC: applying {Kind} {Name} failed ({Reason}); retrying in {Seconds} s")]
    public static partial void RbacRetry(this ILogger logger, string kind, string name, string reason, int seconds);

    // 800-849: egress selector modes, the egress proxy's routes and the agent's pod network
    [LoggerMessage(800, LogLevel.Information, "egress selector mode {Mode}: {Description}")]
    public static partial void EgressMode(this ILogger logger, string mode, string description);

    [LoggerMessage(801, LogLevel.Information, "egress routes listed: {Nodes} nodes, {Services} services, {Slices} endpoint slices; watching for changes")]
    public static partial void EgressTableSynced(this ILogger logger, int nodes, int services, int slices);

    [LoggerMessage(802, LogLevel.Warning, "watching {Resource} failed ({Reason}); retrying in {Seconds} s")]
    public static partial void ClusterWatchFailed(this ILogger logger, string resource, string reason, double seconds);

    [LoggerMessage(803, LogLevel.Debug, "watching {Resource}: {Reason}; retrying in {Seconds} s")]
    public static partial void ClusterWatchWaiting(this ILogger logger, string resource, string reason, double seconds);

    [LoggerMessage(804, LogLevel.Debug, "egress CONNECT {Target} {How}: {Reason}")]
    public static partial void EgressRouted(this ILogger logger, string target, string how, string reason);

    [LoggerMessage(805, LogLevel.Warning, "egress CONNECT {Target} refused with {Status}: {Reason}")]
    public static partial void EgressRefusedRated(this ILogger logger, string target, int status, string reason);

    [LoggerMessage(806, LogLevel.Warning, "egress CONNECT {Target} refused with {Status}: {Reason} ({Suppressed} more refusals of this target since the last line)")]
    public static partial void EgressRefusedAgain(this ILogger logger, string target, int status, string reason, int suppressed);

    [LoggerMessage(810, LogLevel.Information, "tunnel: pod network of node {Node} is {PodCidrs}; the server may open streams to addresses in it")]
    public static partial void TunnelPodNetwork(this ILogger logger, string node, string podCidrs);

    [LoggerMessage(811, LogLevel.Debug, "tunnel stream to {Target} connected to {Upstream}")]
    public static partial void TunnelStreamOpened(this ILogger logger, string target, string upstream);

    [LoggerMessage(812, LogLevel.Warning, "tunnel stream to {Target} refused: {Reason} ({Suppressed} more refusals of this target since the last line)")]
    public static partial void TunnelStreamRefusedAgain(this ILogger logger, string target, string reason, int suppressed);

    // 900-949: the manifests controller (DATA/server/manifests applied as Addons)
    [LoggerMessage(900, LogLevel.Information, "manifests: leading (Lease {Namespace}/{Lease}); applying {Folder}")]
    public static partial void ManifestsLeading(this ILogger logger, string @namespace, string lease, string folder);

    [LoggerMessage(901, LogLevel.Warning, "manifests: lost the Lease {Namespace}/{Lease} ({Reason}); stopped applying")]
    public static partial void ManifestsLeaseLost(this ILogger logger, string @namespace, string lease, string reason);

    [LoggerMessage(902, LogLevel.Information, "manifests: standing by; Lease {Namespace}/{Lease} is held by {Holder}")]
    public static partial void ManifestsStandby(this ILogger logger, string @namespace, string lease, string holder);

    [LoggerMessage(903, LogLevel.Warning, "manifests: Lease {Namespace}/{Lease}: {Reason}; retrying")]
    public static partial void ManifestsLeaseProblem(this ILogger logger, string @namespace, string lease, string reason);

    [LoggerMessage(904, LogLevel.Information, "manifests: CustomResourceDefinition {Name} established")]
    public static partial void ManifestsCrdEstablished(this ILogger logger, string name);

    [LoggerMessage(905, LogLevel.Information, "manifests: {Source} applied as Addon {Addon} (objects: {Objects}, deleted: {Pruned})")]
    public static partial void ManifestApplied(this ILogger logger, string source, string addon, int objects, int pruned);

    [LoggerMessage(906, LogLevel.Warning, "manifests: {Source} (Addon {Addon}) failed: {Error}; trying again in {Seconds} s or when it changes")]
    public static partial void ManifestFailed(this ILogger logger, string source, string addon, string error, double seconds);

    [LoggerMessage(907, LogLevel.Information, "manifests: {Object} deleted (no longer in {Source})")]
    public static partial void ManifestPruned(this ILogger logger, string @object, string source);

    [LoggerMessage(908, LogLevel.Information, "manifests: {Source} removed; Addon {Addon} deleted with its objects ({Objects})")]
    public static partial void ManifestRemoved(this ILogger logger, string source, string addon, int objects);

    [LoggerMessage(909, LogLevel.Information, "manifests: {Source} is skipped (a .skip file beside it); its objects stay as they are")]
    public static partial void ManifestSkipped(this ILogger logger, string source);

    [LoggerMessage(910, LogLevel.Warning, "manifests: {Source} is not applied: its Addon name {Addon} is already {Other}'s; rename one of them")]
    public static partial void ManifestNameConflict(this ILogger logger, string source, string addon, string other);

    [LoggerMessage(911, LogLevel.Information, "manifests: unchanged since their last apply (same checksum), not applied again: {Count} files")]
    public static partial void ManifestsUnchanged(this ILogger logger, int count);

    [LoggerMessage(912, LogLevel.Warning, "manifests: kube-apiserver did not answer ({Reason}); trying again in {Seconds} s")]
    public static partial void ManifestsApiUnavailable(this ILogger logger, string reason, double seconds);

    [LoggerMessage(913, LogLevel.Warning, "manifests: watching {Folder} failed ({Reason}); the rescan every {Seconds} s still finds changes")]
    public static partial void ManifestsWatchFailed(this ILogger logger, string folder, string reason, double seconds);

    [LoggerMessage(914, LogLevel.Warning, "manifests: the folder {Folder} is missing; nothing is applied or deleted until it exists again")]
    public static partial void ManifestsFolderMissing(this ILogger logger, string folder);

    [LoggerMessage(915, LogLevel.Debug, "manifests: posting the {Reason} event for Addon {Addon} failed: {Error}")]
    public static partial void ManifestsEventFailed(this ILogger logger, string reason, string addon, string error);

    [LoggerMessage(916, LogLevel.Warning, "manifests: {Error}; trying again in {Seconds} s")]
    public static partial void ManifestsPassFailed(this ILogger logger, string error, double seconds);

    [LoggerMessage(917, LogLevel.Warning, "manifests: {Source} (Addon {Addon}) cannot be read: {Error}; it is read again when it changes")]
    public static partial void ManifestUnreadable(this ILogger logger, string source, string addon, string error);

    [LoggerMessage(918, LogLevel.Debug, "manifests: {Source} still fails the same way; next try in {Seconds} s or when it changes")]
    public static partial void ManifestStillFailing(this ILogger logger, string source, double seconds);
}
