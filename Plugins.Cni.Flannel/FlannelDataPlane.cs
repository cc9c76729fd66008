using System.Net;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;

namespace Coracle.Plugins.Cni.Flannel;

/// <summary>
/// The flannel data plane: acquires the lease, sets up the backend, writes subnet.env and the conflist, then keeps
/// the kernel in line with the peer set (reconciling every <see cref="FlannelSettings.ReconcileInterval"/>, so an
/// entry removed by hand comes back) until cancelled, when it removes what it programmed.
/// </summary>
public sealed class FlannelDataPlane
{
    private readonly FlannelSettings _settings;
    private readonly ISubnetLeaseSource _source;
    private readonly ICommandRunner _runner;
    private readonly ILogger _logger;
    private readonly Action<string>? _reportDetail;
    private readonly TimeProvider _time;
    private readonly string? _localVtepMac;
    private readonly string? _ipamDataDir;
    private readonly Dictionary<string, PeerLease> _peers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _refusedLogged = new(StringComparer.Ordinal);
    private volatile bool _ready;
    private Ipv4Cidr? _subnet;
    private Uplink? _uplink;
    private string _iptables = "iptables";
    private int _mtu;
    private string? _vtepMac;
    private DesiredState? _lastDesired;

    /// <summary>Creates the data plane; nothing happens until <see cref="RunAsync"/>.</summary>
    /// <param name="settings">Validated settings.</param>
    /// <param name="source">Where leases come from.</param>
    /// <param name="runner">Runs ip, bridge and iptables.</param>
    /// <param name="logger">The component's logger.</param>
    /// <param name="reportDetail">Receives the status line (subnet, backend, peers).</param>
    /// <param name="time">Clock for the reconcile interval.</param>
    /// <param name="localVtepMac">The VXLAN MAC to use; null derives it from the node name.</param>
    /// <param name="ipamDataDir">host-local's state folder written into the conflist; null keeps the default.</param>
    public FlannelDataPlane(
        FlannelSettings settings, ISubnetLeaseSource source, ICommandRunner runner, ILogger logger,
        Action<string>? reportDetail = null, TimeProvider? time = null, string? localVtepMac = null, string? ipamDataDir = null)
    {
        _settings = settings;
        _source = source;
        _runner = runner;
        _logger = logger;
        _reportDetail = reportDetail;
        _time = time ?? TimeProvider.System;
        _localVtepMac = localVtepMac;
        _ipamDataDir = ipamDataDir;
    }

    /// <summary>True once the lease is acquired and subnet.env and the conflist are written.</summary>
    public bool Ready => _ready;

    /// <summary>The node's subnet once acquired.</summary>
    public Ipv4Cidr? Subnet => _subnet;

    /// <summary>Runs until cancelled; on cancellation removes the kernel state and files it created.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        try
        {
            await RunCoreAsync(cancellationToken);
        }
        catch (Exception) when (cancellationToken.IsCancellationRequested)
        {
            // A stop that lands mid-command can surface as that command's failure rather than a cancellation: the
            // kernel state goes either way.
            Log.Stopping(_logger);
            await TeardownAsync();
            throw;
        }
    }

    private async Task RunCoreAsync(CancellationToken cancellationToken)
    {
        var uplink = await ResolveUplinkAsync(cancellationToken);
        _uplink = uplink;
        var publicIp = _settings.ExternalIp ?? _settings.NodeIp ?? uplink.Address;
        var vxlan = _settings.Backend == "vxlan";
        _mtu = _settings.Mtu > 0 ? _settings.Mtu : vxlan ? uplink.Mtu - 50 : uplink.Mtu;
        _vtepMac = vxlan ? (_localVtepMac ?? VtepMac.Derive(_settings.NodeName)) : null;
        Log.Starting(_logger, _settings.Backend, uplink.Name, publicIp.ToString(), _mtu);
        Report();

        var subnet = await _source.AcquireAsync(new LocalAttributes(publicIp, _settings.Backend, _vtepMac, _settings.Vni), cancellationToken);
        if (!_settings.Network.Contains(subnet))
        {
            throw new InvalidOperationException($"the lease {subnet} is outside the cluster CIDR {_settings.Network}");
        }

        _subnet = subnet;
        Log.LeaseAcquired(_logger, subnet.ToString(), _settings.Network.ToString());

        await EnableForwardingAsync();
        await RemoveOtherBackendAsync(uplink, subnet, cancellationToken);
        if (vxlan)
        {
            await EnsureVxlanDeviceAsync(uplink, subnet, cancellationToken);
        }

        if (_settings.IpMasq)
        {
            _iptables = await Masquerade.DetectVariantAsync(_runner, null, cancellationToken);
            Log.IptablesVariant(_logger, _iptables);
            await Masquerade.EnsureAsync(_runner, _iptables, _settings.Network, subnet, cancellationToken);
        }

        WriteFiles(subnet);
        _ready = true;
        Report();

        var events = Channel.CreateUnbounded<PeerEvent>(new UnboundedChannelOptions { SingleReader = true });
        var pump = PumpAsync(events.Writer, cancellationToken);
        try
        {
            await ReconcileLoopAsync(events.Reader, pump, uplink, subnet, cancellationToken);
        }
        finally
        {
            // The pump's Node watch ends with the token; wait for it, so the watch is closed before this component
            // counts as stopped (kube-apiserver stops after it).
            await pump;
        }
    }

    private async Task ReconcileLoopAsync(ChannelReader<PeerEvent> reader, Task pump, Uplink uplink, Ipv4Cidr subnet, CancellationToken cancellationToken)
    {
        var first = true;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            while (reader.TryRead(out var change))
            {
                Apply(change);
            }

            try
            {
                var repaired = await ReconcileAsync(uplink, subnet, cancellationToken);
                if (repaired > 0 && !first)
                {
                    Log.Repaired(_logger, repaired);
                }

                first = false;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                Log.ReconcileFailed(_logger, e.Message);
            }

            Report();
            using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var delay = Task.Delay(_settings.ReconcileInterval, _time, wait.Token);
            var readable = reader.WaitToReadAsync(wait.Token).AsTask();
            var done = await Task.WhenAny(delay, readable);
            await wait.CancelAsync();
            if (done == readable && readable.IsCompletedSuccessfully && !readable.Result)
            {
                // The peer source ended: surface its failure (or end) so the supervisor restarts us.
                await pump;
                throw new InvalidOperationException("the peer watch ended");
            }

            if (readable.IsFaulted)
            {
                await readable;
            }

            cancellationToken.ThrowIfCancellationRequested();
        }
    }

    private async Task PumpAsync(ChannelWriter<PeerEvent> writer, CancellationToken cancellationToken)
    {
        try
        {
            await foreach (var change in _source.WatchPeersAsync(cancellationToken))
            {
                await writer.WriteAsync(change, cancellationToken);
            }

            writer.TryComplete();
        }
        catch (Exception e)
        {
            writer.TryComplete(e);
        }
    }

    private void Apply(PeerEvent change)
    {
        var peer = change.Peer;
        if (peer.Name == _settings.NodeName)
        {
            return;
        }

        if (change.Kind == PeerEventKind.Remove)
        {
            if (_peers.Remove(peer.Name))
            {
                _refusedLogged.Remove(peer.Name);
                Log.PeerRemoved(_logger, peer.Name, peer.Subnet.ToString());
            }
        }
        else
        {
            _peers[peer.Name] = peer;
            _refusedLogged.Remove(peer.Name);
            Log.PeerAdded(_logger, peer.Name, peer.Subnet.ToString(), peer.PublicIp.ToString());
        }
    }

    private async Task<int> ReconcileAsync(Uplink uplink, Ipv4Cidr subnet, CancellationToken cancellationToken)
    {
        var repaired = 0;
        var vxlan = _settings.Backend == "vxlan";
        if (vxlan)
        {
            repaired += await EnsureVxlanDeviceAsync(uplink, subnet, cancellationToken);
        }

        var desired = DesiredState.Build(_settings, subnet, uplink, _peers.Values);
        foreach (var (name, reason) in desired.Refused)
        {
            if (!_refusedLogged.TryGetValue(name, out var logged) || logged != reason)
            {
                _refusedLogged[name] = reason;
                Log.PeerRefused(_logger, name, reason);
            }
        }

        var observed = await ObserveAsync(vxlan ? _settings.VxlanDevice : uplink.Name, vxlan, subnet, cancellationToken);
        foreach (var command in desired.Plan(observed))
        {
            var result = await _runner.RunAsync(command, cancellationToken);
            if (result.ExitCode == 0)
            {
                repaired++;
            }
        }

        _lastDesired = desired;
        if (_settings.IpMasq)
        {
            repaired += await Masquerade.EnsureAsync(_runner, _iptables, _settings.Network, subnet, cancellationToken);
        }

        repaired += WriteFiles(subnet);
        return repaired;
    }

    private async Task<ObservedState> ObserveAsync(string device, bool vxlan, Ipv4Cidr subnet, CancellationToken cancellationToken)
    {
        var routes = await ReadAsync(new KernelCommand("ip", ["-j", "-4", "route", "show", "dev", device]), cancellationToken);
        var parsedRoutes = ObservedState.ParseRoutes(routes, device, _settings.Network, subnet);
        if (!vxlan)
        {
            return new ObservedState(parsedRoutes, [], []);
        }

        var neighbors = await ReadAsync(new KernelCommand("ip", ["-j", "-4", "neigh", "show", "dev", device]), cancellationToken);
        var fdb = await ReadAsync(new KernelCommand("bridge", ["-j", "fdb", "show", "dev", device]), cancellationToken);
        return new ObservedState(parsedRoutes, ObservedState.ParseNeighbors(neighbors, device), ObservedState.ParseFdb(fdb, device));
    }

    /// <summary>Creates or repairs the VXLAN device; returns how many properties were changed.</summary>
    private async Task<int> EnsureVxlanDeviceAsync(Uplink uplink, Ipv4Cidr subnet, CancellationToken cancellationToken)
    {
        var device = _settings.VxlanDevice;
        var changed = 0;
        var shown = await _runner.RunAsync(new KernelCommand("ip", ["-j", "-d", "link", "show", device]), cancellationToken);
        var link = shown.ExitCode == 0 ? ObservedState.Items(shown.StandardOutput).FirstOrDefault() : default;
        var matches = link.ValueKind == JsonValueKind.Object && VxlanMatches(link, uplink);
        if (link.ValueKind == JsonValueKind.Object && !matches)
        {
            await _runner.RunAsync(new KernelCommand("ip", ["link", "del", device]), cancellationToken);
        }

        if (!matches)
        {
            changed++;
            await MustAsync(VxlanAdd(device, uplink, _settings.Vni, _settings.Port), cancellationToken);
            shown = await _runner.RunAsync(new KernelCommand("ip", ["-j", "-d", "link", "show", device]), cancellationToken);
            link = ObservedState.Items(shown.StandardOutput).FirstOrDefault();
        }

        if (!string.Equals(ObservedState.Text(link, "address"), _vtepMac, StringComparison.OrdinalIgnoreCase))
        {
            changed++;
            await MustAsync(new KernelCommand("ip", ["link", "set", device, "address", _vtepMac!]), cancellationToken);
        }

        if (!link.TryGetProperty("mtu", out var mtu) || mtu.GetInt32() != _mtu)
        {
            changed++;
            await MustAsync(new KernelCommand("ip", ["link", "set", device, "mtu", _mtu.ToString(System.Globalization.CultureInfo.InvariantCulture)]), cancellationToken);
        }

        var up = link.TryGetProperty("flags", out var flags) && flags.EnumerateArray().Any(f => f.GetString() == "UP");
        if (!up)
        {
            changed++;
            await MustAsync(new KernelCommand("ip", ["link", "set", device, "up"]), cancellationToken);
        }

        var addresses = await ReadAsync(new KernelCommand("ip", ["-j", "-4", "addr", "show", "dev", device]), cancellationToken);
        var wanted = $"{subnet.Address}/32";
        var present = ObservedState.Items(addresses)
            .SelectMany(i => i.TryGetProperty("addr_info", out var info) ? info.EnumerateArray().ToList() : [])
            .Select(a => $"{ObservedState.Text(a, "local")}/{(a.TryGetProperty("prefixlen", out var p) ? p.GetInt32() : 0)}")
            .ToList();
        foreach (var stale in present.Where(a => a != wanted))
        {
            changed++;
            await _runner.RunAsync(new KernelCommand("ip", ["addr", "del", stale, "dev", device]), cancellationToken);
        }

        if (!present.Contains(wanted))
        {
            changed++;
            await MustAsync(new KernelCommand("ip", ["addr", "replace", wanted, "dev", device]), cancellationToken);
        }

        return changed;
    }

    /// <summary><c>ip link add flannel.1 type vxlan id 1 local IP dev UPLINK dstport 8472 nolearning</c>.</summary>
    public static KernelCommand VxlanAdd(string device, Uplink uplink, int vni, int port)
    {
        ArgumentNullException.ThrowIfNull(uplink);
        return new KernelCommand("ip",
        [
            "link", "add", device, "type", "vxlan", "id", vni.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "local", uplink.Address.ToString(), "dev", uplink.Name,
            "dstport", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "nolearning",
        ]);
    }

    private bool VxlanMatches(JsonElement link, Uplink uplink)
    {
        if (!link.TryGetProperty("linkinfo", out var info) || ObservedState.Text(info, "info_kind") != "vxlan"
            || !info.TryGetProperty("info_data", out var data))
        {
            return false;
        }

        return data.TryGetProperty("id", out var id) && id.GetInt32() == _settings.Vni
            && data.TryGetProperty("port", out var port) && port.GetInt32() == _settings.Port
            && ObservedState.Text(data, "local") == uplink.Address.ToString()
            && !(data.TryGetProperty("learning", out var learning) && learning.ValueKind == JsonValueKind.True);
    }

    private async Task RemoveOtherBackendAsync(Uplink uplink, Ipv4Cidr subnet, CancellationToken cancellationToken)
    {
        if (_settings.Backend != "vxlan")
        {
            var shown = await _runner.RunAsync(new KernelCommand("ip", ["link", "show", _settings.VxlanDevice]), cancellationToken);
            if (shown.ExitCode == 0)
            {
                await _runner.RunAsync(new KernelCommand("ip", ["link", "del", _settings.VxlanDevice]), cancellationToken);
            }
        }

        if (_settings.Backend != "host-gw")
        {
            var routes = await ReadAsync(new KernelCommand("ip", ["-j", "-4", "route", "show", "dev", uplink.Name]), cancellationToken);
            foreach (var stale in ObservedState.ParseRoutes(routes, uplink.Name, _settings.Network, subnet))
            {
                await _runner.RunAsync(stale.Delete(), cancellationToken);
            }
        }
    }

    private async Task TeardownAsync()
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            if (_settings.Backend == "vxlan")
            {
                await _runner.RunAsync(new KernelCommand("ip", ["link", "del", _settings.VxlanDevice]), timeout.Token);
            }
            else if (_uplink is { } uplink && _subnet is { } subnet)
            {
                var routes = await ReadAsync(new KernelCommand("ip", ["-j", "-4", "route", "show", "dev", uplink.Name]), timeout.Token);
                foreach (var route in ObservedState.ParseRoutes(routes, uplink.Name, _settings.Network, subnet))
                {
                    await _runner.RunAsync(route.Delete(), timeout.Token);
                }
            }

            if (_settings.IpMasq && _subnet is not null)
            {
                await Masquerade.RemoveAsync(_runner, _iptables, timeout.Token);
            }

            File.Delete(_settings.SubnetFile);
            File.Delete(_settings.ConflistFile);
        }
        catch (Exception e)
        {
            Log.ReconcileFailed(_logger, "teardown: " + e.Message);
        }
        finally
        {
            _ready = false;
        }
    }

    /// <summary>Writes subnet.env and the conflist when missing or different; returns how many were written.</summary>
    private int WriteFiles(Ipv4Cidr subnet)
    {
        var written = 0;
        foreach (var (file, content) in new[]
                 {
                     (_settings.SubnetFile, SubnetEnv.Render(_settings.Network, subnet, _mtu, _settings.IpMasq)),
                     (_settings.ConflistFile, CniConflist.Render(subnet, _mtu, _ipamDataDir)),
                 })
        {
            if (!File.Exists(file) || File.ReadAllText(file) != content)
            {
                AtomicFile.Write(file, content);
                Log.FileWritten(_logger, file);
                written++;
            }
        }

        return written;
    }

    private async Task<Uplink> ResolveUplinkAsync(CancellationToken cancellationToken)
    {
        var name = _settings.Interface;
        var all = ObservedState.Items(await ReadAsync(new KernelCommand("ip", ["-j", "-4", "addr", "show"]), cancellationToken)).ToList();
        if (name.Length == 0 && _settings.NodeIp is { } nodeIp)
        {
            name = all.Where(i => Addresses(i).Any(a => a.Address.Equals(nodeIp)))
                .Select(i => ObservedState.Text(i, "ifname")).FirstOrDefault() ?? "";
        }

        if (name.Length == 0)
        {
            var routes = ObservedState.Items(await ReadAsync(new KernelCommand("ip", ["-j", "-4", "route", "show", "default"]), cancellationToken));
            name = routes.Select(r => ObservedState.Text(r, "dev")).FirstOrDefault(d => d is not null)
                ?? throw new InvalidOperationException("no default route to take the interface from; set --flannel-iface");
        }

        var link = all.FirstOrDefault(i => ObservedState.Text(i, "ifname") == name);
        if (link.ValueKind != JsonValueKind.Object || Addresses(link).Count == 0)
        {
            throw new InvalidOperationException($"interface {name} has no IPv4 address; set --flannel-iface or --node-ip");
        }

        var addresses = Addresses(link);
        var chosen = addresses.FirstOrDefault(a => _settings.NodeIp is { } ip && a.Address.Equals(ip));
        if (chosen.Address is null)
        {
            chosen = addresses[0];
        }

        return new Uplink(name, chosen.Address, chosen.Prefix, link.GetProperty("mtu").GetInt32());
    }

    private static List<(IPAddress Address, int Prefix)> Addresses(JsonElement link) =>
        link.TryGetProperty("addr_info", out var info)
            ? info.EnumerateArray()
                .Where(a => ObservedState.Text(a, "family") == "inet" && ObservedState.Text(a, "local") is not null)
                .Select(a => (IPAddress.Parse(ObservedState.Text(a, "local")!), a.GetProperty("prefixlen").GetInt32()))
                .ToList()
            : [];

    private static async Task EnableForwardingAsync()
    {
        const string file = "/proc/sys/net/ipv4/ip_forward";
        if (File.Exists(file) && (await File.ReadAllTextAsync(file)).Trim() != "1")
        {
            await File.WriteAllTextAsync(file, "1");
        }
    }

    private async Task<string> ReadAsync(KernelCommand command, CancellationToken cancellationToken)
    {
        var result = await _runner.RunAsync(command, cancellationToken);
        return result.ExitCode == 0 ? result.StandardOutput : "";
    }

    private async Task MustAsync(KernelCommand command, CancellationToken cancellationToken)
    {
        var result = await _runner.RunAsync(command, cancellationToken);
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException($"{command} failed (exit {result.ExitCode}): {result.StandardError.Trim()}");
        }
    }

    private void Report() => _reportDetail?.Invoke(Describe(_settings.Backend, _subnet, _peers.Values, _lastDesired?.Refused));

    /// <summary>The status line: <c>subnet 10.42.1.0/24, backend vxlan, peers: h2 10.42.2.0/24 via 192.168.77.2</c>.</summary>
    public static string Describe(string backend, Ipv4Cidr? subnet, IEnumerable<PeerLease> peers, IReadOnlyDictionary<string, string>? refused)
    {
        var list = peers.OrderBy(p => p.Name, StringComparer.Ordinal)
            .Select(p => refused is not null && refused.TryGetValue(p.Name, out var why)
                ? $"{p.Name} {p.Subnet} refused ({why})"
                : $"{p.Name} {p.Subnet} via {p.PublicIp}")
            .ToList();
        return $"subnet {(subnet is { } s ? s.ToString() : "pending")}, backend {backend}, peers: {(list.Count == 0 ? "none" : string.Join(", ", list))}";
    }
}
