using System.Net;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Coracle.Plugins.Cni.Flannel;

/// <summary>
/// Leases from a static peers file (option <c>static-peers-file</c>), for clusters without a Kubernetes
/// subnet manager and for the namespace tests. The file is re-read every <c>pollInterval</c>: a peer that
/// disappears from it is removed, a changed one is updated.
/// </summary>
/// <example><code>
/// { "subnet": "10.42.1.0/24", "vtep-mac": "02:00:00:00:01:01",
///   "peers": [ { "name": "h2", "public-ip": "192.168.77.2", "subnet": "10.42.2.0/24", "vtep-mac": "02:00:00:00:02:01" } ] }
/// </code></example>
public sealed class StaticLeaseSource : ISubnetLeaseSource
{
    private readonly string _file;
    private readonly TimeSpan _pollInterval;
    private readonly TimeProvider _time;

    /// <summary>Reads <paramref name="file"/>; re-reads it every <paramref name="pollInterval"/>.</summary>
    public StaticLeaseSource(string file, TimeSpan pollInterval, TimeProvider? time = null)
    {
        _file = file;
        _pollInterval = pollInterval;
        _time = time ?? TimeProvider.System;
    }

    /// <summary>The local VTEP MAC the file asks for, if any (so peers can be told it in advance).</summary>
    public string? LocalVtepMac => StaticPeersFile.Load(_file).VtepMac;

    /// <inheritdoc />
    public Task<Ipv4Cidr> AcquireAsync(LocalAttributes local, CancellationToken cancellationToken) =>
        Task.FromResult(StaticPeersFile.Load(_file).Subnet);

    /// <inheritdoc />
    public async IAsyncEnumerable<PeerEvent> WatchPeersAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var known = new Dictionary<string, PeerLease>(StringComparer.Ordinal);
        while (!cancellationToken.IsCancellationRequested)
        {
            IReadOnlyList<PeerLease>? peers = null;
            try
            {
                peers = StaticPeersFile.Load(_file).Peers;
            }
            catch (Exception e) when (e is IOException or FormatException or JsonException)
            {
                // A file being rewritten is read again on the next pass; the last good peer set stays.
            }

            if (peers is not null)
            {
                foreach (var change in Diff(known, peers))
                {
                    yield return change;
                }
            }

            try
            {
                await Task.Delay(_pollInterval, _time, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                yield break;
            }
        }
    }

    /// <summary>The events that turn <paramref name="known"/> into <paramref name="current"/>; updates <paramref name="known"/>.</summary>
    internal static List<PeerEvent> Diff(Dictionary<string, PeerLease> known, IReadOnlyList<PeerLease> current)
    {
        var events = new List<PeerEvent>();
        var names = current.Select(p => p.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var gone in known.Values.Where(p => !names.Contains(p.Name)).ToList())
        {
            known.Remove(gone.Name);
            events.Add(new PeerEvent(PeerEventKind.Remove, gone));
        }

        foreach (var peer in current)
        {
            if (!known.TryGetValue(peer.Name, out var old) || !Same(old, peer))
            {
                known[peer.Name] = peer;
                events.Add(new PeerEvent(PeerEventKind.Upsert, peer));
            }
        }

        return events;
    }

    private static bool Same(PeerLease a, PeerLease b) =>
        a.PublicIp.Equals(b.PublicIp) && a.Subnet == b.Subnet
        && string.Equals(a.VtepMac, b.VtepMac, StringComparison.OrdinalIgnoreCase) && a.BackendType == b.BackendType;
}

/// <summary>The parsed static peers file.</summary>
/// <param name="Subnet">This node's subnet.</param>
/// <param name="VtepMac">This node's VXLAN MAC; null derives it.</param>
/// <param name="Peers">The other nodes.</param>
public sealed record StaticPeersFile(Ipv4Cidr Subnet, string? VtepMac, IReadOnlyList<PeerLease> Peers)
{
    private static readonly JsonSerializerOptions Options = new()
    {
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
    };

    /// <summary>Reads and validates the file; errors name the file and the field.</summary>
    /// <exception cref="FormatException">The file is malformed.</exception>
    public static StaticPeersFile Load(string file)
    {
        var text = File.ReadAllText(file);
        return Parse(text, file);
    }

    /// <summary>Parses the file's text; <paramref name="source"/> names it in errors.</summary>
    /// <exception cref="FormatException">The text is malformed.</exception>
    public static StaticPeersFile Parse(string text, string source)
    {
        Dto? dto;
        try
        {
            dto = JsonSerializer.Deserialize<Dto>(text, Options);
        }
        catch (JsonException e)
        {
            throw new FormatException($"{source}: not valid JSON: {e.Message}", e);
        }

        if (dto is null || !Ipv4Cidr.TryParse(dto.Subnet, out var subnet))
        {
            throw new FormatException($"{source}: \"subnet\" must be this node's subnet in CIDR form (for example 10.42.1.0/24)");
        }

        var peers = new List<PeerLease>();
        foreach (var (peer, index) in (dto.Peers ?? []).Select((p, i) => (p, i)))
        {
            var where = $"{source}: peers[{index}]";
            if (string.IsNullOrWhiteSpace(peer.Name))
            {
                throw new FormatException($"{where}: \"name\" is required");
            }

            if (!IPAddress.TryParse(peer.PublicIp, out var ip) || ip.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork)
            {
                throw new FormatException($"{where}: \"public-ip\" \"{peer.PublicIp}\" is not an IPv4 address");
            }

            if (!Ipv4Cidr.TryParse(peer.Subnet, out var peerSubnet))
            {
                throw new FormatException($"{where}: \"subnet\" \"{peer.Subnet}\" is not in CIDR form");
            }

            if (peer.VtepMac is not null && !Flannel.VtepMac.IsValid(peer.VtepMac))
            {
                throw new FormatException($"{where}: \"vtep-mac\" \"{peer.VtepMac}\" is not a MAC address");
            }

            peers.Add(new PeerLease(peer.Name, ip, peerSubnet, peer.VtepMac?.ToLowerInvariant(), peer.BackendType ?? ""));
        }

        if (dto.VtepMac is not null && !Flannel.VtepMac.IsValid(dto.VtepMac))
        {
            throw new FormatException($"{source}: \"vtep-mac\" \"{dto.VtepMac}\" is not a MAC address");
        }

        return new StaticPeersFile(subnet, dto.VtepMac?.ToLowerInvariant(), peers);
    }

    private sealed class Dto
    {
        [JsonPropertyName("subnet")]
        public string? Subnet { get; set; }

        [JsonPropertyName("vtep-mac")]
        public string? VtepMac { get; set; }

        [JsonPropertyName("peers")]
        public List<PeerDto>? Peers { get; set; }
    }

    private sealed class PeerDto
    {
        [JsonPropertyName("name")]
        public string? Name { get; set; }

        [JsonPropertyName("public-ip")]
        public string? PublicIp { get; set; }

        [JsonPropertyName("subnet")]
        public string? Subnet { get; set; }

        [JsonPropertyName("vtep-mac")]
        public string? VtepMac { get; set; }

        [JsonPropertyName("backend-type")]
        public string? BackendType { get; set; }
    }
}
