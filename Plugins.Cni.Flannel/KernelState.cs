using System.Net;
using System.Text.Json;

namespace Coracle.Plugins.Cni.Flannel;

/// <summary>A route flannel owns: <c>DST via GW dev DEV [onlink]</c>.</summary>
public sealed record RouteEntry(Ipv4Cidr Destination, IPAddress Gateway, string Device, bool OnLink)
{
    /// <summary><c>ip route replace ...</c>.</summary>
    public KernelCommand Replace() => new("ip",
        ["route", "replace", Destination.ToString(), "via", Gateway.ToString(), "dev", Device, .. OnLink ? new[] { "onlink" } : []]);

    /// <summary><c>ip route del ...</c>.</summary>
    public KernelCommand Delete() => new("ip", ["route", "del", Destination.ToString(), "dev", Device]);
}

/// <summary>A permanent neighbour (ARP) entry: <c>ADDR lladdr MAC dev DEV nud permanent</c>.</summary>
public sealed record NeighborEntry(IPAddress Address, string Mac, string Device)
{
    /// <summary><c>ip neigh replace ...</c>.</summary>
    public KernelCommand Replace() => new("ip", ["neigh", "replace", Address.ToString(), "lladdr", Mac, "dev", Device, "nud", "permanent"]);

    /// <summary><c>ip neigh del ...</c>.</summary>
    public KernelCommand Delete() => new("ip", ["neigh", "del", Address.ToString(), "dev", Device]);
}

/// <summary>A VXLAN forwarding entry: <c>MAC dst IP dev DEV self permanent</c>.</summary>
public sealed record FdbEntry(string Mac, IPAddress Destination, string Device)
{
    /// <summary><c>bridge fdb replace ...</c>.</summary>
    public KernelCommand Replace() => new("bridge", ["fdb", "replace", Mac, "dev", Device, "dst", Destination.ToString(), "self", "permanent"]);

    /// <summary><c>bridge fdb del ...</c>.</summary>
    public KernelCommand Delete() => new("bridge", ["fdb", "del", Mac, "dev", Device, "dst", Destination.ToString(), "self"]);
}

/// <summary>The uplink: the interface peers are reached through.</summary>
public sealed record Uplink(string Name, IPAddress Address, int PrefixLength, int Mtu)
{
    /// <summary>The directly connected network.</summary>
    public Ipv4Cidr Network => Ipv4Cidr.Of(Address, PrefixLength);
}

/// <summary>The per-peer kernel entries flannel wants, plus the peers it refuses and why.</summary>
public sealed record DesiredState(
    IReadOnlyList<RouteEntry> Routes,
    IReadOnlyList<NeighborEntry> Neighbors,
    IReadOnlyList<FdbEntry> Fdb,
    IReadOnlyDictionary<string, string> Refused)
{
    /// <summary>
    /// What the kernel must hold for <paramref name="peers"/>: vxlan programs a route via the peer's subnet .0 onlink,
    /// a permanent neighbour for that .0 with the peer's VTEP MAC and an FDB entry sending that MAC to the peer's
    /// public IP; host-gw routes the peer's subnet via its public IP on the uplink, and refuses peers that are not
    /// on the uplink's directly connected network.
    /// </summary>
    public static DesiredState Build(FlannelSettings settings, Ipv4Cidr localSubnet, Uplink uplink, IEnumerable<PeerLease> peers)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(uplink);
        var routes = new List<RouteEntry>();
        var neighbors = new List<NeighborEntry>();
        var fdb = new List<FdbEntry>();
        var refused = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var peer in peers.OrderBy(p => p.Subnet.Network))
        {
            if (!settings.Network.Contains(peer.Subnet))
            {
                refused[peer.Name] = $"subnet {peer.Subnet} is outside the cluster CIDR {settings.Network}";
                continue;
            }

            if (peer.Subnet == localSubnet)
            {
                refused[peer.Name] = $"subnet {peer.Subnet} is this node's own subnet";
                continue;
            }

            if (peer.BackendType.Length > 0 && peer.BackendType != settings.Backend)
            {
                refused[peer.Name] = $"it runs backend {peer.BackendType}, this node runs {settings.Backend}";
                continue;
            }

            if (settings.Backend == "vxlan")
            {
                if (peer.VtepMac is null)
                {
                    refused[peer.Name] = "it has no VTEP MAC";
                    continue;
                }

                var device = settings.VxlanDevice;
                routes.Add(new RouteEntry(peer.Subnet, peer.Subnet.Address, device, OnLink: true));
                neighbors.Add(new NeighborEntry(peer.Subnet.Address, peer.VtepMac, device));
                fdb.Add(new FdbEntry(peer.VtepMac, peer.PublicIp, device));
            }
            else if (settings.Backend == "host-gw")
            {
                if (!uplink.Network.Contains(peer.PublicIp))
                {
                    refused[peer.Name] =
                        $"host-gw needs every node on one L2 segment: public ip {peer.PublicIp} is not on {uplink.Name}'s network {uplink.Network}; use the vxlan backend";
                    continue;
                }

                routes.Add(new RouteEntry(peer.Subnet, peer.PublicIp, uplink.Name, OnLink: false));
            }
        }

        return new DesiredState(routes, neighbors, fdb, refused);
    }

    /// <summary>
    /// The commands that turn <paramref name="actual"/> into this state: stale entries deleted, missing or different
    /// ones replaced. Entries equal to the desired ones produce nothing.
    /// </summary>
    public IReadOnlyList<KernelCommand> Plan(ObservedState actual)
    {
        ArgumentNullException.ThrowIfNull(actual);
        var commands = new List<KernelCommand>();
        var wantedRoutes = Routes.ToDictionary(r => r.Destination);
        commands.AddRange(actual.Routes.Where(r => !wantedRoutes.ContainsKey(r.Destination)).Select(r => r.Delete()));
        commands.AddRange(Routes.Where(r => !actual.Routes.Contains(r)).Select(r => r.Replace()));

        var wantedNeighbors = Neighbors.Select(n => n.Address).ToHashSet();
        commands.AddRange(actual.Neighbors.Where(n => !wantedNeighbors.Contains(n.Address)).Select(n => n.Delete()));
        commands.AddRange(Neighbors.Where(n => !actual.Neighbors.Contains(n)).Select(n => n.Replace()));

        commands.AddRange(actual.Fdb.Where(f => !Fdb.Contains(f)).Select(f => f.Delete()));
        commands.AddRange(Fdb.Where(f => !actual.Fdb.Contains(f)).Select(f => f.Replace()));
        return commands;
    }
}

/// <summary>The flannel-owned entries read back from the kernel.</summary>
public sealed record ObservedState(IReadOnlyList<RouteEntry> Routes, IReadOnlyList<NeighborEntry> Neighbors, IReadOnlyList<FdbEntry> Fdb)
{
    /// <summary>Nothing.</summary>
    public static ObservedState Empty { get; } = new([], [], []);

    /// <summary>
    /// Parses <c>ip -j -4 route show dev DEV</c>: routes with a gateway whose destination lies in
    /// <paramref name="owned"/> and is not <paramref name="local"/> (on the uplink only those are flannel's).
    /// </summary>
    public static List<RouteEntry> ParseRoutes(string json, string device, Ipv4Cidr owned, Ipv4Cidr local)
    {
        var routes = new List<RouteEntry>();
        foreach (var item in Items(json))
        {
            if (Text(item, "dst") is not { } dst || Text(item, "gateway") is not { } gateway
                || !Ipv4Cidr.TryParse(dst, out var destination) || !IPAddress.TryParse(gateway, out var via)
                || !owned.Contains(destination) || destination == local)
            {
                continue;
            }

            var onlink = item.TryGetProperty("flags", out var flags) && flags.ValueKind == JsonValueKind.Array
                && flags.EnumerateArray().Any(f => f.GetString() == "onlink");
            routes.Add(new RouteEntry(destination, via, device, onlink));
        }

        return routes;
    }

    /// <summary>Parses <c>ip -j -4 neigh show dev DEV</c>: permanent entries only.</summary>
    public static List<NeighborEntry> ParseNeighbors(string json, string device)
    {
        var neighbors = new List<NeighborEntry>();
        foreach (var item in Items(json))
        {
            var permanent = item.TryGetProperty("state", out var state) && state.ValueKind == JsonValueKind.Array
                && state.EnumerateArray().Any(s => s.GetString() == "PERMANENT");
            if (permanent && Text(item, "dst") is { } dst && IPAddress.TryParse(dst, out var address) && Text(item, "lladdr") is { } mac)
            {
                neighbors.Add(new NeighborEntry(address, mac.ToLowerInvariant(), device));
            }
        }

        return neighbors;
    }

    /// <summary>Parses <c>bridge -j fdb show dev DEV</c>: entries with a remote destination.</summary>
    public static List<FdbEntry> ParseFdb(string json, string device)
    {
        var entries = new List<FdbEntry>();
        foreach (var item in Items(json))
        {
            if (Text(item, "mac") is { } mac && Text(item, "dst") is { } dst && IPAddress.TryParse(dst, out var address)
                && address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && mac != "00:00:00:00:00:00")
            {
                entries.Add(new FdbEntry(mac.ToLowerInvariant(), address, device));
            }
        }

        return entries;
    }

    internal static IEnumerable<JsonElement> Items(string json)
    {
        if (string.IsNullOrWhiteSpace(json))
        {
            return [];
        }

        using var document = JsonDocument.Parse(json);
        return document.RootElement.ValueKind == JsonValueKind.Array
            ? document.RootElement.EnumerateArray().Select(e => e.Clone()).ToList()
            : [];
    }

    internal static string? Text(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
}
