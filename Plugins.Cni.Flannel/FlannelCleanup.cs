using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Coracle.Plugins.Cni.Flannel;

/// <summary>
/// Removes everything flannel (and the bridge CNI plugin it configures) leaves on a host, whether or not flannel is
/// running: for <c>coracle killall</c> and uninstall. Safe to run twice.
/// </summary>
public static class FlannelCleanup
{
    /// <summary>
    /// Deletes the pod veths on the <c>cni0</c> bridge, every <c>flannel.*</c> VXLAN device (with its routes, neighbours
    /// and FDB entries), the <c>cni0</c> bridge, routes with a gateway into <paramref name="clusterCidr"/> (host-gw), the
    /// FLANNEL-POSTRTG / FLANNEL-FWD chains in every iptables variant present, and the given subnet.env and conflist.
    /// </summary>
    /// <param name="clusterCidr">The cluster CIDR, for example <c>10.42.0.0/16</c>.</param>
    /// <param name="subnetFile">subnet.env to delete; null skips it.</param>
    /// <param name="conflistFile">The conflist to delete; null skips it.</param>
    /// <param name="logger">Logs each command; null logs nothing.</param>
    /// <param name="cancellationToken">Stops the cleanup.</param>
    public static Task RunAsync(
        string clusterCidr, string? subnetFile = "/run/flannel/subnet.env", string? conflistFile = null,
        ILogger? logger = null, CancellationToken cancellationToken = default) =>
        RunAsync(new ProcessCommandRunner(logger ?? NullLogger.Instance), Ipv4Cidr.Parse(clusterCidr), subnetFile, conflistFile, cancellationToken);

    internal static async Task RunAsync(
        ICommandRunner runner, Ipv4Cidr network, string? subnetFile, string? conflistFile, CancellationToken cancellationToken)
    {
        var links = await runner.RunAsync(new KernelCommand("ip", ["-j", "-d", "link", "show"]), cancellationToken);
        if (links.ExitCode == 0)
        {
            // The pods' veths on the bridge first (the bridge's deletion would leave them behind), then flannel's own devices.
            var podVeths = new List<string>();
            var devices = new List<string>();
            foreach (var link in ObservedState.Items(links.StandardOutput))
            {
                var name = ObservedState.Text(link, "ifname");
                var kind = link.TryGetProperty("linkinfo", out var info) ? ObservedState.Text(info, "info_kind") : null;
                if (name is null)
                {
                    continue;
                }

                if (kind == "veth" && ObservedState.Text(link, "master") == CniConflist.Bridge)
                {
                    podVeths.Add(name);
                }
                else if ((name.StartsWith("flannel.", StringComparison.Ordinal) && kind == "vxlan") || (name == CniConflist.Bridge && kind == "bridge"))
                {
                    devices.Add(name);
                }
            }

            foreach (var name in podVeths.Concat(devices))
            {
                await runner.RunAsync(new KernelCommand("ip", ["link", "del", name]), cancellationToken);
            }
        }

        var routes = await runner.RunAsync(new KernelCommand("ip", ["-j", "-4", "route", "show"]), cancellationToken);
        if (routes.ExitCode == 0)
        {
            foreach (var route in ObservedState.Items(routes.StandardOutput))
            {
                if (ObservedState.Text(route, "dst") is { } dst && Ipv4Cidr.TryParse(dst, out var destination)
                    && network.Contains(destination) && ObservedState.Text(route, "gateway") is not null
                    && ObservedState.Text(route, "dev") is { } dev)
                {
                    await runner.RunAsync(new KernelCommand("ip", ["route", "del", dst, "dev", dev]), cancellationToken);
                }
            }
        }

        foreach (var iptables in new[] { "iptables-nft", "iptables-legacy" })
        {
            if (Masquerade.OnPath(iptables, null))
            {
                await Masquerade.RemoveAsync(runner, iptables, cancellationToken);
            }
        }

        if (!Masquerade.OnPath("iptables-nft", null) && !Masquerade.OnPath("iptables-legacy", null) && Masquerade.OnPath("iptables", null))
        {
            await Masquerade.RemoveAsync(runner, "iptables", cancellationToken);
        }

        foreach (var file in new[] { subnetFile, conflistFile })
        {
            if (file is not null)
            {
                File.Delete(file);
            }
        }
    }
}
