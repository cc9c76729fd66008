using System.Buffers;
using System.Text;

namespace Coracle.Plugins.Datastore.Sql.Transport;

/// <summary>
/// Follows one HPACK (RFC 7541) encoder's header blocks — the client's side of a connection — and rewrites an
/// <c>:authority</c> that is not a host (a socket path, a URL) to <c>localhost</c>. Everything else in a block
/// passes through byte for byte, including dynamic table size updates.
/// </summary>
/// <remarks>
/// The tracker mirrors the client's dynamic table (names and entry sizes) so it can resolve name references. A
/// rewritten field that the client added to its table is added on the server's side with a value no longer than
/// the original, so the server's table always holds at least the entries the client's table holds, at the same
/// positions from the newest: every index the client sends resolves to the same field, with the rewritten value.
/// </remarks>
internal sealed class HpackAuthorityRewriter
{
    /// <summary>The value that replaces an authority Kestrel would reject.</summary>
    public const string Replacement = "localhost";

    private const int EntryOverhead = 32;
    private const string Authority = ":authority";

    // Newest entry first, as HPACK numbers them (index 62 is the newest).
    private readonly List<(string Name, int Size)> _table = [];
    private int _size;
    private int _maxSize = 4096;

    /// <summary>Number of fields rewritten so far.</summary>
    public long Rewrites { get; private set; }

    /// <summary>
    /// Reads one complete header block. Returns false when the block is not valid HPACK (the caller then stops
    /// rewriting and lets the server report the error); <paramref name="rewritten"/> is null when nothing changed.
    /// </summary>
    public bool TryRewrite(ReadOnlySpan<byte> block, out byte[]? rewritten)
    {
        rewritten = null;
        ArrayBufferWriter<byte>? output = null;
        var copied = 0;
        var pos = 0;
        while (pos < block.Length)
        {
            var first = block[pos];
            if ((first & 0x80) != 0)
            {
                // Indexed field: refers to an entry both tables hold.
                if (!TryReadInt(block, ref pos, 7, out var index) || index == 0 || !TryName(index, out _))
                {
                    return false;
                }

                continue;
            }

            if ((first & 0xe0) == 0x20)
            {
                if (!TryReadInt(block, ref pos, 5, out var max) || max > 1 << 20)
                {
                    return false;
                }

                _maxSize = max;
                Evict(0);
                continue;
            }

            var indexing = (first & 0xc0) == 0x40;
            if (!TryReadInt(block, ref pos, indexing ? 6 : 4, out var nameIndex))
            {
                return false;
            }

            string name;
            if (nameIndex == 0)
            {
                if (!TryReadString(block, ref pos, out name))
                {
                    return false;
                }
            }
            else if (!TryName(nameIndex, out name))
            {
                return false;
            }

            var valueStart = pos;
            if (!TryReadString(block, ref pos, out var value))
            {
                return false;
            }

            if (string.Equals(name, Authority, StringComparison.Ordinal) && !IsHost(value))
            {
                // Added to the table: never longer than the original, so the server's table never evicts earlier.
                var replacement = indexing && value.Length < Replacement.Length ? "" : Replacement;
                output ??= new ArrayBufferWriter<byte>(block.Length + Replacement.Length + 8);
                output.Write(block[copied..valueStart]);
                WriteString(output, replacement);
                copied = pos;
                Rewrites++;
            }

            if (indexing)
            {
                Add(name, EntryOverhead + name.Length + value.Length);
            }
        }

        if (output is not null)
        {
            output.Write(block[copied..]);
            rewritten = output.WrittenSpan.ToArray();
        }

        return true;
    }

    /// <summary>
    /// Whether Kestrel accepts <paramref name="value"/> as a host: a registered name or IPv4 address, or a
    /// bracketed IPv6 address, with an optional numeric port. Stricter than Kestrel is harmless (the value is
    /// replaced by <see cref="Replacement"/>); never more lenient.
    /// </summary>
    internal static bool IsHost(string value)
    {
        var host = value;
        if (host.StartsWith('['))
        {
            var close = host.IndexOf(']', StringComparison.Ordinal);
            if (close < 0 || host[1..close].Any(c => !char.IsAsciiHexDigit(c) && c != ':' && c != '.'))
            {
                return false;
            }

            return close == host.Length - 1 || IsPort(host[(close + 1)..]);
        }

        var colon = host.IndexOf(':', StringComparison.Ordinal);
        if (colon >= 0)
        {
            if (!IsPort(host[colon..]))
            {
                return false;
            }

            host = host[..colon];
        }

        return host.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '.' or '_' or '~');
    }

    private static bool IsPort(string s) => s.Length >= 2 && s[0] == ':' && s.Skip(1).All(char.IsAsciiDigit);

    private bool TryName(int index, out string name)
    {
        if (index <= StaticNames.Length)
        {
            name = StaticNames[index - 1];
            return true;
        }

        var dynamic = index - StaticNames.Length - 1;
        if (dynamic < _table.Count)
        {
            name = _table[dynamic].Name;
            return true;
        }

        name = "";
        return false;
    }

    private void Add(string name, int size)
    {
        if (size > _maxSize)
        {
            _table.Clear();
            _size = 0;
            return;
        }

        Evict(size);
        _table.Insert(0, (name, size));
        _size += size;
    }

    private void Evict(int room)
    {
        while (_table.Count > 0 && _size + room > _maxSize)
        {
            _size -= _table[^1].Size;
            _table.RemoveAt(_table.Count - 1);
        }
    }

    internal static bool TryReadInt(ReadOnlySpan<byte> b, ref int pos, int prefixBits, out int value)
    {
        value = 0;
        if (pos >= b.Length)
        {
            return false;
        }

        var mask = (1 << prefixBits) - 1;
        value = b[pos++] & mask;
        if (value < mask)
        {
            return true;
        }

        for (var shift = 0; shift <= 21; shift += 7)
        {
            if (pos >= b.Length)
            {
                return false;
            }

            var next = b[pos++];
            value += (next & 0x7f) << shift;
            if ((next & 0x80) == 0)
            {
                return true;
            }
        }

        return false;
    }

    internal static void WriteInt(IBufferWriter<byte> output, int value, int prefixBits, byte flags)
    {
        var span = output.GetSpan(8);
        var mask = (1 << prefixBits) - 1;
        var n = 0;
        if (value < mask)
        {
            span[n++] = (byte)(flags | value);
        }
        else
        {
            span[n++] = (byte)(flags | mask);
            value -= mask;
            while (value >= 0x80)
            {
                span[n++] = (byte)((value & 0x7f) | 0x80);
                value >>= 7;
            }

            span[n++] = (byte)value;
        }

        output.Advance(n);
    }

    private static void WriteString(IBufferWriter<byte> output, string value)
    {
        WriteInt(output, value.Length, 7, 0);
        output.Write(Encoding.Latin1.GetBytes(value));
    }

    private static bool TryReadString(ReadOnlySpan<byte> b, ref int pos, out string value)
    {
        value = "";
        if (pos >= b.Length)
        {
            return false;
        }

        var huffman = (b[pos] & 0x80) != 0;
        if (!TryReadInt(b, ref pos, 7, out var length) || length > b.Length - pos)
        {
            return false;
        }

        var raw = b.Slice(pos, length);
        pos += length;
        if (!huffman)
        {
            value = Encoding.Latin1.GetString(raw);
            return true;
        }

        return TryHuffmanDecode(raw, out value);
    }

    internal static bool TryHuffmanDecode(ReadOnlySpan<byte> raw, out string value)
    {
        var chars = new StringBuilder(raw.Length * 8 / 5);
        var node = 0;
        var depth = 0;
        foreach (var octet in raw)
        {
            for (var bit = 7; bit >= 0; bit--)
            {
                var next = Tree[(node * 2) + ((octet >> bit) & 1)];
                depth++;
                if (next < 0)
                {
                    chars.Append((char)(-next - 1));
                    node = 0;
                    depth = 0;
                }
                else if (next == 0)
                {
                    value = "";
                    return false;
                }
                else
                {
                    node = next;
                }
            }
        }

        // Padding: at most 7 bits, all ones (a prefix of EOS).
        value = chars.ToString();
        return depth <= 7;
    }

    // A binary tree as an array: Tree[2n + bit] is the child of node n; a negative entry is a leaf -(symbol + 1),
    // zero is no child (node 0 is the root, never a child).
    private static int[] BuildTree()
    {
        var tree = new List<int> { 0, 0 };
        for (var symbol = 0; symbol < 256; symbol++)
        {
            var node = 0;
            for (var bit = Lengths[symbol] - 1; bit >= 0; bit--)
            {
                var slot = (node * 2) + (int)((Codes[symbol] >> bit) & 1);
                if (bit == 0)
                {
                    tree[slot] = -symbol - 1;
                }
                else
                {
                    if (tree[slot] == 0)
                    {
                        tree[slot] = tree.Count / 2;
                        tree.Add(0);
                        tree.Add(0);
                    }

                    node = tree[slot];
                }
            }
        }

        return [.. tree];
    }

    // RFC 7541 Appendix B: the code of each symbol 0..255 (in the low bits) and its length in bits.
    private static readonly uint[] Codes =
    [
        0x1ff8, 0x7fffd8, 0xfffffe2, 0xfffffe3, 0xfffffe4, 0xfffffe5, 0xfffffe6, 0xfffffe7,
        0xfffffe8, 0xffffea, 0x3ffffffc, 0xfffffe9, 0xfffffea, 0x3ffffffd, 0xfffffeb, 0xfffffec,
        0xfffffed, 0xfffffee, 0xfffffef, 0xffffff0, 0xffffff1, 0xffffff2, 0x3ffffffe, 0xffffff3,
        0xffffff4, 0xffffff5, 0xffffff6, 0xffffff7, 0xffffff8, 0xffffff9, 0xffffffa, 0xffffffb,
        0x14, 0x3f8, 0x3f9, 0xffa, 0x1ff9, 0x15, 0xf8, 0x7fa,
        0x3fa, 0x3fb, 0xf9, 0x7fb, 0xfa, 0x16, 0x17, 0x18,
        0x0, 0x1, 0x2, 0x19, 0x1a, 0x1b, 0x1c, 0x1d,
        0x1e, 0x1f, 0x5c, 0xfb, 0x7ffc, 0x20, 0xffb, 0x3fc,
        0x1ffa, 0x21, 0x5d, 0x5e, 0x5f, 0x60, 0x61, 0x62,
        0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a,
        0x6b, 0x6c, 0x6d, 0x6e, 0x6f, 0x70, 0x71, 0x72,
        0xfc, 0x73, 0xfd, 0x1ffb, 0x7fff0, 0x1ffc, 0x3ffc, 0x22,
        0x7ffd, 0x3, 0x23, 0x4, 0x24, 0x5, 0x25, 0x26,
        0x27, 0x6, 0x74, 0x75, 0x28, 0x29, 0x2a, 0x7,
        0x2b, 0x76, 0x2c, 0x8, 0x9, 0x2d, 0x77, 0x78,
        0x79, 0x7a, 0x7b, 0x7ffe, 0x7fc, 0x3ffd, 0x1ffd, 0xffffffc,
        0xfffe6, 0x3fffd2, 0xfffe7, 0xfffe8, 0x3fffd3, 0x3fffd4, 0x3fffd5, 0x7fffd9,
        0x3fffd6, 0x7fffda, 0x7fffdb, 0x7fffdc, 0x7fffdd, 0x7fffde, 0xffffeb, 0x7fffdf,
        0xffffec, 0xffffed, 0x3fffd7, 0x7fffe0, 0xffffee, 0x7fffe1, 0x7fffe2, 0x7fffe3,
        0x7fffe4, 0x1fffdc, 0x3fffd8, 0x7fffe5, 0x3fffd9, 0x7fffe6, 0x7fffe7, 0xffffef,
        0x3fffda, 0x1fffdd, 0xfffe9, 0x3fffdb, 0x3fffdc, 0x7fffe8, 0x7fffe9, 0x1fffde,
        0x7fffea, 0x3fffdd, 0x3fffde, 0xfffff0, 0x1fffdf, 0x3fffdf, 0x7fffeb, 0x7fffec,
        0x1fffe0, 0x1fffe1, 0x3fffe0, 0x1fffe2, 0x7fffed, 0x3fffe1, 0x7fffee, 0x7fffef,
        0xfffea, 0x3fffe2, 0x3fffe3, 0x3fffe4, 0x7ffff0, 0x3fffe5, 0x3fffe6, 0x7ffff1,
        0x3ffffe0, 0x3ffffe1, 0xfffeb, 0x7fff1, 0x3fffe7, 0x7ffff2, 0x3fffe8, 0x1ffffec,
        0x3ffffe2, 0x3ffffe3, 0x3ffffe4, 0x7ffffde, 0x7ffffdf, 0x3ffffe5, 0xfffff1, 0x1ffffed,
        0x7fff2, 0x1fffe3, 0x3ffffe6, 0x7ffffe0, 0x7ffffe1, 0x3ffffe7, 0x7ffffe2, 0xfffff2,
        0x1fffe4, 0x1fffe5, 0x3ffffe8, 0x3ffffe9, 0xffffffd, 0x7ffffe3, 0x7ffffe4, 0x7ffffe5,
        0xfffec, 0xfffff3, 0xfffed, 0x1fffe6, 0x3fffe9, 0x1fffe7, 0x1fffe8, 0x7ffff3,
        0x3fffea, 0x3fffeb, 0x1ffffee, 0x1ffffef, 0xfffff4, 0xfffff5, 0x3ffffea, 0x7ffff4,
        0x3ffffeb, 0x7ffffe6, 0x3ffffec, 0x3ffffed, 0x7ffffe7, 0x7ffffe8, 0x7ffffe9, 0x7ffffea,
        0x7ffffeb, 0xffffffe, 0x7ffffec, 0x7ffffed, 0x7ffffee, 0x7ffffef, 0x7fffff0, 0x3ffffee,
    ];

    private static readonly byte[] Lengths =
    [
        13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,
        28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
        6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,
        5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
        13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
        7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
        15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5,
        6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
        20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
        24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
        22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,
        21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
        26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,
        19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
        20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
        26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
    ];

    // RFC 7541 Appendix A: names of the static table entries 1..61.
    private static readonly string[] StaticNames =
    [
        ":authority", ":method", ":method", ":path", ":path", ":scheme",
        ":scheme", ":status", ":status", ":status", ":status", ":status",
        ":status", ":status", "accept-charset", "accept-encoding", "accept-language", "accept-ranges",
        "accept", "access-control-allow-origin", "age", "allow", "authorization", "cache-control",
        "content-disposition", "content-encoding", "content-language", "content-length", "content-location", "content-range",
        "content-type", "cookie", "date", "etag", "expect", "expires",
        "from", "host", "if-match", "if-modified-since", "if-none-match", "if-range",
        "if-unmodified-since", "last-modified", "link", "location", "max-forwards", "proxy-authenticate",
        "proxy-authorization", "range", "referer", "refresh", "retry-after", "server",
        "set-cookie", "strict-transport-security", "transfer-encoding", "user-agent", "vary", "via",
        "www-authenticate",
    ];

    // After the tables it is built from (static fields initialise in textual order).
    private static readonly int[] Tree = BuildTree();
}
