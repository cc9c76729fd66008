using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Coracle.Plugins.Cni.Flannel;

/// <summary>An IPv4 network in CIDR form; the address is always the network address.</summary>
public readonly record struct Ipv4Cidr
{
    private Ipv4Cidr(uint network, int prefix)
    {
        Network = network;
        Prefix = prefix;
    }

    /// <summary>The network address as a host-order number.</summary>
    public uint Network { get; }

    /// <summary>The prefix length (0-32).</summary>
    public int Prefix { get; }

    /// <summary>The network mask as a host-order number.</summary>
    public uint Mask => Prefix == 0 ? 0u : uint.MaxValue << (32 - Prefix);

    /// <summary>The network address (<c>10.42.1.0</c> of <c>10.42.1.0/24</c>).</summary>
    public IPAddress Address => ToAddress(Network);

    /// <summary>The first host address (<c>10.42.1.1</c>): the bridge's gateway.</summary>
    public IPAddress Gateway => ToAddress(Network + 1);

    /// <summary>Parses <c>a.b.c.d/n</c>; host bits must be zero.</summary>
    public static bool TryParse(string? text, out Ipv4Cidr cidr)
    {
        cidr = default;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        var slash = text.IndexOf('/', StringComparison.Ordinal);
        if (slash <= 0
            || !IPAddress.TryParse(text.AsSpan(0, slash), out var address)
            || address.AddressFamily != AddressFamily.InterNetwork
            || !int.TryParse(text.AsSpan(slash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var prefix)
            || prefix > 32)
        {
            return false;
        }

        var value = ToNumber(address);
        var candidate = new Ipv4Cidr(value, prefix);
        if ((value & ~candidate.Mask) != 0)
        {
            return false;
        }

        cidr = candidate;
        return true;
    }

    /// <summary>Parses or throws <see cref="FormatException"/> naming the text.</summary>
    public static Ipv4Cidr Parse(string text) =>
        TryParse(text, out var cidr) ? cidr : throw new FormatException($"\"{text}\" is not an IPv4 network in CIDR form (a.b.c.d/n, host bits zero)");

    /// <summary>True when <paramref name="address"/> is inside this network.</summary>
    public bool Contains(IPAddress address) =>
        address.AddressFamily == AddressFamily.InterNetwork && (ToNumber(address) & Mask) == Network;

    /// <summary>True when <paramref name="other"/> lies entirely inside this network.</summary>
    public bool Contains(Ipv4Cidr other) => other.Prefix >= Prefix && (other.Network & Mask) == Network;

    /// <summary>The network of <paramref name="address"/> with the given prefix.</summary>
    public static Ipv4Cidr Of(IPAddress address, int prefix)
    {
        var mask = prefix == 0 ? 0u : uint.MaxValue << (32 - prefix);
        return new Ipv4Cidr(ToNumber(address) & mask, prefix);
    }

    /// <summary>Host-order number of an IPv4 address.</summary>
    public static uint ToNumber(IPAddress address)
    {
        Span<byte> bytes = stackalloc byte[4];
        if (address.AddressFamily != AddressFamily.InterNetwork || !address.TryWriteBytes(bytes, out _))
        {
            throw new ArgumentException($"{address} is not an IPv4 address", nameof(address));
        }

        return BinaryPrimitives.ReadUInt32BigEndian(bytes);
    }

    /// <summary>The IPv4 address of a host-order number.</summary>
    public static IPAddress ToAddress(uint value)
    {
        var bytes = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, value);
        return new IPAddress(bytes);
    }

    /// <inheritdoc />
    public override string ToString() => $"{Address}/{Prefix.ToString(CultureInfo.InvariantCulture)}";
}
