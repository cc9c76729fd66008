using Coracle.Core.Logging;
using Microsoft.Extensions.Logging;

namespace Coracle.Core.Join;

/// <summary>
/// A server's own node password (component <c>node-password</c>): a server runs a kubelet too, so its node name must be
/// held as an agent's is, or an agent with the agent token could join under a server's name and be handed that
/// server's kubelet certificates. Once kube-apiserver answers, the server checks (and at its first start stores) the
/// password of <c>DATA/agent/node-password</c> for its node name exactly as the join API checks an agent's
/// (<see cref="NodePasswords"/>: Secret <c>kube-system/NAME.node-password.coracle</c>), K3s's behaviour for servers.
/// While kube-apiserver cannot decide it retries every <see cref="RetryInterval"/>; when another machine holds the
/// name the component is degraded (<c>coracle status</c> exits 1) with the fix, and checks again every
/// <see cref="ConflictInterval"/>, so deleting the other machine's Secret is enough.
/// </summary>
internal sealed class ServerNodePassword(NodePasswords passwords, string dataDir, string nodeName, ILogger log, TimeProvider? time = null)
{
    public static readonly TimeSpan RetryInterval = TimeSpan.FromSeconds(2);
    public static readonly TimeSpan ConflictInterval = TimeSpan.FromMinutes(1);

    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private volatile bool _decided;

    /// <summary>True once a check was decided (held by this server, or refused): the component's readiness.</summary>
    public bool Decided => _decided;

    /// <summary>
    /// Checks until this server holds its name, reporting each decision through <paramref name="report"/> (detail,
    /// degraded), then waits for the stop.
    /// </summary>
    public async Task RunAsync(Action<string, bool> report, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(report);
        var password = AgentJoin.EnsureNodePassword(dataDir, nodeName, log);
        var secret = $"{NodePasswords.Namespace}/{NodePasswords.SecretName(nodeName)}";
        string? lastRefusal = null;
        while (true)
        {
            var check = await passwords.CheckAsync(nodeName, password, cancellationToken);
            switch (check.Verdict)
            {
                case NodePasswordVerdict.Accepted:
                    report($"node {nodeName} is held with this server's password (Secret {secret})", false);
                    _decided = true;
                    log.ServerNodePasswordHeld(nodeName, secret);
                    await Task.Delay(Timeout.InfiniteTimeSpan, _time, cancellationToken);
                    return;
                case NodePasswordVerdict.Conflict:
                    var refusal = $"node name {nodeName} is held by another machine: Secret {secret} holds another node password than this server's "
                        + $"({AgentJoin.NodePasswordFile(dataDir)}); if that machine is retired, 'kubectl -n {NodePasswords.Namespace} delete secret {NodePasswords.SecretName(nodeName)}' "
                        + $"and this server takes the name within {ConflictInterval.TotalMinutes:0} minute, otherwise give this server another --node-name";
                    report(refusal, true);
                    _decided = true;
                    if (refusal != lastRefusal)
                    {
                        log.ServerNodePasswordRefused(refusal);
                        lastRefusal = refusal;
                    }

                    await Task.Delay(ConflictInterval, _time, cancellationToken);
                    break;
                default:
                    if (!_decided)
                    {
                        report($"waiting to check node {nodeName}'s password: {check.Message}", false);
                    }

                    await Task.Delay(RetryInterval, _time, cancellationToken);
                    break;
            }
        }
    }
}
