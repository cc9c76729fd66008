using Microsoft.Extensions.Logging;

namespace Coracle.Plugins;

/// <summary>
/// A plugin that leaves state on the host outside its data folder (network devices, iptables chains, files in /run).
/// <c>coracle killall</c> calls this for every installed plugin whose metadata says
/// <see cref="CoraclePluginAttribute.HasCleanup"/>, whether or not it was selected in the last run, after the node is stopped.
/// Container runtime plugins' cleanups run first and must stop the node's containers; the others run after the host has
/// killed the data dir's processes, unmounted and removed the KUBE-/CNI- rules. Must be safe to run twice and when the
/// plugin never ran.
/// </summary>
public interface IPluginCleanup
{
    /// <summary>Removes what the plugin may have left.</summary>
    /// <param name="node">The node-wide settings of the data dir being cleaned.</param>
    /// <param name="options">The plugin's <c>[plugins.NAME]</c> table.</param>
    /// <param name="logger">Where to say what was removed.</param>
    /// <param name="cancellationToken">Stops the cleanup.</param>
    Task CleanupAsync(NodeSettings node, IReadOnlyDictionary<string, string> options, ILogger logger, CancellationToken cancellationToken);
}
