using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Coracle.Node.Tests.Support;

/// <summary>
/// A minimal DNS server on UDP for one test: it answers A queries for the names it was given and NXDOMAIN for every
/// other name (AAAA and other types of a known name: no answer, NOERROR). It stands in for the upstream resolver in a
/// node's resolv.conf, so "an outside name" resolves without any real network.
/// </summary>
internal sealed class TestResolver : IDisposable
{
    private readonly UdpClient _udp;
    private readonly IReadOnlyDictionary<string, IPAddress> _names;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private int _answered;

    public TestResolver(IPAddress address, IReadOnlyDictionary<string, IPAddress> names)
    {
        _names = names.ToDictionary(kv => kv.Key.TrimEnd('.').ToLowerInvariant(), kv => kv.Value, StringComparer.Ordinal);
        _udp = new UdpClient(new IPEndPoint(address, 53));
        _loop = Task.Run(() => ServeAsync(_stop.Token));
    }

    /// <summary>How many queries for a known name got an address.</summary>
    public int Answered => Volatile.Read(ref _answered);

    public void Dispose()
    {
        _stop.Cancel();
        _udp.Dispose();
        try
        {
            _loop.Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
        }

        _stop.Dispose();
    }

    private async Task ServeAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            UdpReceiveResult query;
            try
            {
                query = await _udp.ReceiveAsync(ct);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }

            if (Answer(query.Buffer) is { } reply)
            {
                await _udp.SendAsync(reply, query.RemoteEndPoint, ct);
            }
        }
    }

    /// <summary>The reply to one query (RFC 1035 section 4), or null for a packet that is not a single-question query.</summary>
    private byte[]? Answer(byte[] query)
    {
        if (query.Length < 12 || BinaryPrimitives.ReadUInt16BigEndian(query.AsSpan(4)) != 1)
        {
            return null;
        }

        // QNAME: length-prefixed labels up to a zero byte; then QTYPE and QCLASS.
        var name = new StringBuilder();
        var at = 12;
        while (at < query.Length && query[at] != 0)
        {
            var length = query[at];
            if (at + 1 + length > query.Length)
            {
                return null;
            }

            name.Append(name.Length > 0 ? "." : "").Append(Encoding.ASCII.GetString(query, at + 1, length));
            at += 1 + length;
        }

        var questionEnd = at + 5;
        if (questionEnd > query.Length)
        {
            return null;
        }

        var type = BinaryPrimitives.ReadUInt16BigEndian(query.AsSpan(at + 1));
        var known = _names.TryGetValue(name.ToString().ToLowerInvariant(), out var address);
        var answer = known && type == 1 && address!.AddressFamily == AddressFamily.InterNetwork;
        var reply = new byte[questionEnd + (answer ? 16 : 0)];
        query.AsSpan(0, questionEnd).CopyTo(reply);
        BinaryPrimitives.WriteUInt16BigEndian(reply.AsSpan(2), (ushort)(0x8180 | (known ? 0 : 3))); // QR, RD, RA; NXDOMAIN when unknown
        BinaryPrimitives.WriteUInt16BigEndian(reply.AsSpan(6), (ushort)(answer ? 1 : 0));            // ANCOUNT
        BinaryPrimitives.WriteUInt16BigEndian(reply.AsSpan(8), 0);                                    // NSCOUNT
        BinaryPrimitives.WriteUInt16BigEndian(reply.AsSpan(10), 0);                                   // ARCOUNT
        if (answer)
        {
            var rr = reply.AsSpan(questionEnd);
            BinaryPrimitives.WriteUInt16BigEndian(rr, 0xC00C);   // the name: a pointer to the question's
            BinaryPrimitives.WriteUInt16BigEndian(rr[2..], 1);   // A
            BinaryPrimitives.WriteUInt16BigEndian(rr[4..], 1);   // IN
            BinaryPrimitives.WriteUInt32BigEndian(rr[6..], 60);  // TTL
            BinaryPrimitives.WriteUInt16BigEndian(rr[10..], 4);  // RDLENGTH
            address!.GetAddressBytes().CopyTo(rr[12..]);
            Interlocked.Increment(ref _answered);
        }

        return reply;
    }
}
