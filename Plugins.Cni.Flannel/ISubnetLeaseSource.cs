using System.Net;

namespace Coracle.Plugins.Cni.Flannel;

/// <summary>
/// Where subnet leases come from: Kubernetes Node objects (<see cref="KubeLeaseSource"/>) or a static peers file
/// (<see cref="StaticLeaseSource"/>). The data plane only sees this.
/// </summary>
public interface ISubnetLeaseSource
{
    /// <summary>Returns this node's subnet after publishing its backend data; waits until one is assigned.</summary>
    Task<Ipv4Cidr> AcquireAsync(LocalAttributes local, CancellationToken cancellationToken);

    /// <summary>Peer additions, changes and removals, starting with every current peer as added.</summary>
    IAsyncEnumerable<PeerEvent> WatchPeersAsync(CancellationToken cancellationToken);
}

/// <summary>What this node publishes to its peers.</summary>
/// <param name="PublicIp">The address peers send encapsulated (or routed) traffic to.</param>
/// <param name="BackendType"><c>vxlan</c> or <c>host-gw</c>.</param>
/// <param name="VtepMac">The VXLAN device's MAC (vxlan only).</param>
/// <param name="Vni">The VXLAN network identifier.</param>
public sealed record LocalAttributes(IPAddress PublicIp, string BackendType, string? VtepMac, int Vni = 1);

/// <summary>A peer node's lease.</summary>
/// <param name="Name">The node's name.</param>
/// <param name="PublicIp">Its public IP.</param>
/// <param name="Subnet">Its pod subnet.</param>
/// <param name="VtepMac">Its VXLAN device MAC (vxlan only).</param>
/// <param name="BackendType">The backend it announced; empty when unknown.</param>
public sealed record PeerLease(string Name, IPAddress PublicIp, Ipv4Cidr Subnet, string? VtepMac, string BackendType = "");

/// <summary>Whether a peer appeared (or changed) or went away.</summary>
public enum PeerEventKind
{
    /// <summary>Added or changed.</summary>
    Upsert,

    /// <summary>Removed.</summary>
    Remove,
}

/// <summary>One change to the peer set.</summary>
public sealed record PeerEvent(PeerEventKind Kind, PeerLease Peer);
