using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Coracle.Plugins;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;

namespace Coracle.Core.Snapshots;

/// <summary>
/// Saves a snapshot of a running datastore through the etcd <c>Maintenance.Snapshot</c> RPC, the way
/// <c>etcdctl snapshot save</c> does: into <c>FILE.part</c>, the trailing SHA-256 checked, fsynced, then renamed. One code
/// path for every datastore (the SQL datastore's unix socket, an etcd endpoint with TLS). The two messages are
/// hand-written protobuf: the request is empty, the response carries <c>header</c> (1), <c>remaining_bytes</c> (2),
/// <c>blob</c> (3) and <c>version</c> (4).
/// </summary>
internal static class SnapshotClient
{
    private const int Trailer = 32;

    private static readonly Method<object, Chunk> SnapshotMethod = new(
        MethodType.ServerStreaming,
        "etcdserverpb.Maintenance",
        "Snapshot",
        Marshallers.Create<object>(_ => [], _ => new object()),
        Marshallers.Create<Chunk>(_ => throw new NotSupportedException(), Chunk.Parse));

    /// <summary>What was saved.</summary>
    public sealed record Saved(long Size, string Sha256, long Revision);

    /// <summary>
    /// Streams the snapshot of <paramref name="endpoint"/> into <paramref name="file"/> (0600). Throws
    /// <see cref="SnapshotException"/> when the datastore does not answer, refuses, or sends a stream without a valid trailer;
    /// nothing is left at <paramref name="file"/> then.
    /// </summary>
    public static async Task<Saved> SaveAsync(DatastoreEndpoint endpoint, string file, CancellationToken cancellationToken)
    {
        var server = endpoint.Servers.Count > 0 ? endpoint.Servers[0] : throw new SnapshotException("the datastore has no endpoint");
        var part = file + ".part";
        try
        {
            using var channel = Channel(server, endpoint.Tls);
            using var call = channel.CreateCallInvoker().AsyncServerStreamingCall(SnapshotMethod, null, new CallOptions(cancellationToken: cancellationToken), new object());
            long size = 0;
            long revision = 0;
            var tail = new byte[Trailer];
            var tailLength = 0;
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            await using (var output = new FileStream(part, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
            {
                File.SetUnixFileMode(part, UnixFileMode.UserRead | UnixFileMode.UserWrite);
                while (await call.ResponseStream.MoveNext(cancellationToken))
                {
                    var chunk = call.ResponseStream.Current;
                    if (chunk.Revision > 0)
                    {
                        revision = chunk.Revision;
                    }

                    await output.WriteAsync(chunk.Blob, cancellationToken);
                    size += chunk.Blob.Length;
                    tailLength = HashAllButTail(sha, chunk.Blob.Span, tail, tailLength);
                }

                output.Flush(flushToDisk: true);
            }

            if (size % 512 != Trailer || tailLength != Trailer)
            {
                throw new SnapshotException($"the datastore sent {size} bytes without etcd's trailing SHA-256 (sha256 checksum not found)");
            }

            var actual = sha.GetHashAndReset();
            if (!CryptographicOperations.FixedTimeEquals(actual, tail))
            {
                throw new SnapshotException($"the snapshot's data hashes to {Convert.ToHexStringLower(actual)} but its trailer says {Convert.ToHexStringLower(tail)}");
            }

            File.Move(part, file, overwrite: false);
            Hosting.DirectorySync.Sync(Path.GetDirectoryName(file)!);
            return new Saved(size, Convert.ToHexStringLower(tail), revision);
        }
        catch (RpcException e)
        {
            throw new SnapshotException(e.StatusCode == StatusCode.Unavailable
                ? $"no datastore answers on {server} ({e.Status.Detail})"
                : $"the datastore refused the snapshot: {e.Status.Detail}", e);
        }
        catch (HttpRequestException e)
        {
            throw new SnapshotException($"no datastore answers on {server} ({e.Message})", e);
        }
        finally
        {
            File.Delete(part);
        }
    }

    /// <summary>Hashes everything but the last 32 bytes seen so far (the trailer candidate kept in <paramref name="tail"/>); returns its length.</summary>
    private static int HashAllButTail(IncrementalHash sha, ReadOnlySpan<byte> blob, byte[] tail, int tailLength)
    {
        var all = new byte[tailLength + blob.Length];
        tail.AsSpan(0, tailLength).CopyTo(all);
        blob.CopyTo(all.AsSpan(tailLength));
        var keep = Math.Min(Trailer, all.Length);
        sha.AppendData(all, 0, all.Length - keep);
        all.AsSpan(all.Length - keep).CopyTo(tail);
        return keep;
    }

    private static GrpcChannel Channel(string server, TlsFiles? tls)
    {
        var handler = new SocketsHttpHandler();
        var address = server;
        if (server.StartsWith("unix://", StringComparison.Ordinal))
        {
            var path = server["unix://".Length..];
            if (!File.Exists(path))
            {
                throw new SnapshotException($"no datastore answers on {server} (the socket does not exist)");
            }

            address = "http://localhost";
            handler.ConnectCallback = async (_, ct) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), ct);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            };
        }
        else if (tls is not null)
        {
            var ca = X509CertificateLoader.LoadCertificateFromFile(tls.CaFile);
            handler.SslOptions.ClientCertificates = [X509Certificate2.CreateFromPemFile(tls.CertFile, tls.KeyFile)];
            handler.SslOptions.RemoteCertificateValidationCallback = TlsTrust.Only(ca);
        }

        return GrpcChannel.ForAddress(address, new GrpcChannelOptions { HttpHandler = handler, MaxReceiveMessageSize = 64 << 20, DisposeHttpClient = true });
    }

    /// <summary>One <c>SnapshotResponse</c>: the header's revision and the blob.</summary>
    private sealed class Chunk
    {
        public long Revision { get; private set; }

        public ReadOnlyMemory<byte> Blob { get; private set; } = ReadOnlyMemory<byte>.Empty;

        public static Chunk Parse(byte[] data)
        {
            var chunk = new Chunk();
            var input = new CodedInputStream(data);
            uint tag;
            while ((tag = input.ReadTag()) != 0)
            {
                switch (WireFormat.GetTagFieldNumber(tag))
                {
                    case 1 when WireFormat.GetTagWireType(tag) == WireFormat.WireType.LengthDelimited:
                        chunk.Revision = HeaderRevision(input.ReadBytes());
                        break;
                    case 3 when WireFormat.GetTagWireType(tag) == WireFormat.WireType.LengthDelimited:
                        chunk.Blob = input.ReadBytes().Memory;
                        break;
                    default:
                        input.SkipLastField();
                        break;
                }
            }

            return chunk;
        }

        private static long HeaderRevision(ByteString header)
        {
            var input = header.CreateCodedInput();
            uint tag;
            while ((tag = input.ReadTag()) != 0)
            {
                if (WireFormat.GetTagFieldNumber(tag) == 3 && WireFormat.GetTagWireType(tag) == WireFormat.WireType.Varint)
                {
                    return input.ReadInt64();
                }

                input.SkipLastField();
            }

            return 0;
        }
    }
}

/// <summary>A snapshot could not be saved, listed or restored; the message is one line.</summary>
internal sealed class SnapshotException(string message, Exception? inner = null) : Exception(message, inner);
