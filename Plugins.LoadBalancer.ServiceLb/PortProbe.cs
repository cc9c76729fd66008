using System.Globalization;
using System.Net;

namespace Coracle.Plugins.LoadBalancer.ServiceLb;

/// <summary>A socket that holds a port: a listening TCP socket or a bound UDP socket, with its owner when known.</summary>
internal sealed record Listener(string Protocol, IPAddress Address, int Port, long Inode)
{
    /// <summary>The process holding it (<c>pid 42 (nc)</c>), filled in only for a socket that conflicts.</summary>
    public string? Owner { get; init; }

    /// <summary><c>pid 42 (nc) on 0.0.0.0:8080/TCP</c>.</summary>
    public string Describe() =>
        $"{Owner ?? $"socket inode {Inode}"} on {(Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{Address}]" : Address.ToString())}:{Port}/{Protocol}";
}

/// <summary>
/// Reads which ports are held on this node from <c>/proc/net/tcp</c>, <c>tcp6</c>, <c>udp</c> and <c>udp6</c> (of the
/// reading process's network namespace), and names the process holding a socket from <c>/proc/PID/fd</c>.
/// </summary>
internal sealed class PortProbe(string procRoot = "/proc")
{
    // Owners found by socket inode: a conflict that lasts is looked up once, not on every pass.
    private readonly Dictionary<long, string> _owners = [];

    private const string TcpListen = "0A";
    private const string UdpUnconnected = "07";

    /// <summary>The listening TCP and bound UDP sockets; a missing file counts as none.</summary>
    public IReadOnlyList<Listener> Read()
    {
        var all = new List<Listener>();
        foreach (var (file, protocol) in new[] { ("tcp", "TCP"), ("tcp6", "TCP"), ("udp", "UDP"), ("udp6", "UDP") })
        {
            var path = Path.Combine(procRoot, "net", file);
            string text;
            try
            {
                text = File.ReadAllText(path);
            }
            catch (IOException)
            {
                continue;
            }
            catch (UnauthorizedAccessException)
            {
                continue;
            }

            all.AddRange(Parse(text, protocol));
        }

        return all;
    }

    /// <summary>
    /// The sockets in one <c>/proc/net/{tcp,tcp6,udp,udp6}</c> text that hold a port: TCP in state LISTEN (<c>0A</c>), UDP
    /// unconnected (<c>07</c>). Lines that do not parse are skipped.
    /// </summary>
    public static IEnumerable<Listener> Parse(string text, string protocol)
    {
        ArgumentNullException.ThrowIfNull(text);
        var wanted = protocol == "TCP" ? TcpListen : UdpUnconnected;
        foreach (var line in text.Split('\n'))
        {
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length < 10 || !fields[0].EndsWith(':') || fields[3] != wanted)
            {
                continue;
            }

            var local = fields[1].Split(':');
            if (local.Length != 2 || !TryAddress(local[0], out var address)
                || !int.TryParse(local[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var port)
                || !long.TryParse(fields[9], NumberStyles.Integer, CultureInfo.InvariantCulture, out var inode))
            {
                continue;
            }

            yield return new Listener(protocol, address, port, inode);
        }
    }

    /// <summary>
    /// The socket holding <paramref name="protocol"/> <paramref name="port"/> for traffic to any of <paramref name="nodeIps"/>:
    /// one bound to a wildcard address or to one of them (an IPv4-mapped IPv6 address counts as the IPv4 one); null when free.
    /// </summary>
    public static Listener? Holder(IReadOnlyList<Listener> listeners, string protocol, int port, IReadOnlyList<string> nodeIps)
    {
        ArgumentNullException.ThrowIfNull(listeners);
        var ips = nodeIps.Select(s => IPAddress.TryParse(s, out var ip) ? ip : null).OfType<IPAddress>().ToList();
        return listeners.FirstOrDefault(l => l.Protocol == protocol && l.Port == port && Covers(l.Address, ips));
    }

    /// <summary>The listener with <see cref="Listener.Owner"/> set from the <c>/proc/PID/fd</c> link to its socket, when found.</summary>
    public Listener WithOwner(Listener listener)
    {
        ArgumentNullException.ThrowIfNull(listener);
        if (_owners.TryGetValue(listener.Inode, out var known))
        {
            return listener with { Owner = known };
        }

        var target = $"socket:[{listener.Inode}]";
        try
        {
            foreach (var dir in Directory.EnumerateDirectories(procRoot))
            {
                var pid = Path.GetFileName(dir);
                if (!pid.All(char.IsAsciiDigit))
                {
                    continue;
                }

                try
                {
                    foreach (var fd in Directory.EnumerateFileSystemEntries(Path.Combine(dir, "fd")))
                    {
                        if (new FileInfo(fd).LinkTarget == target)
                        {
                            var comm = File.ReadAllText(Path.Combine(dir, "comm")).Trim();
                            if (_owners.Count > 256)
                            {
                                _owners.Clear();
                            }

                            _owners[listener.Inode] = $"pid {pid} ({comm})";
                            return listener with { Owner = _owners[listener.Inode] };
                        }
                    }
                }
                catch (IOException)
                {
                }
                catch (UnauthorizedAccessException)
                {
                }
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        return listener;
    }

    private static bool Covers(IPAddress bound, List<IPAddress> nodeIps)
    {
        if (bound.IsIPv4MappedToIPv6)
        {
            bound = bound.MapToIPv4();
        }

        return bound.Equals(IPAddress.Any) || bound.Equals(IPAddress.IPv6Any) || nodeIps.Any(ip => ip.Equals(bound));
    }

    /// <summary>The kernel's hex address: IPv4 as one little-endian word, IPv6 as four.</summary>
    private static bool TryAddress(string hex, out IPAddress address)
    {
        address = IPAddress.None;
        if (hex.Length is not (8 or 32))
        {
            return false;
        }

        var bytes = new byte[hex.Length / 2];
        for (var word = 0; word < hex.Length / 8; word++)
        {
            for (var i = 0; i < 4; i++)
            {
                // The word is printed as a host-order (little-endian) integer: its last byte pair is the first byte.
                if (!byte.TryParse(hex.AsSpan(word * 8 + (3 - i) * 2, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var b))
                {
                    return false;
                }

                bytes[word * 4 + i] = b;
            }
        }

        address = new IPAddress(bytes);
        return true;
    }
}
