using System.Security.Cryptography;
using Coracle.Plugins.Datastore.Sql.Mvcc;
using Coracle.Plugins.Datastore.Sql.Protos;
using Coracle.Plugins.Datastore.Sql.Snapshots;
using Coracle.Plugins.Datastore.Sql.Storage;
using Google.Protobuf;
using Grpc.Core;

namespace Coracle.Plugins.Datastore.Sql.Api;

/// <summary>etcdserverpb.Maintenance.</summary>
internal sealed class MaintenanceService(KvEngine kv, EtcdMemberIdentity identity) : Maintenance.MaintenanceBase
{
    /// <summary>The etcd API version this server speaks.</summary>
    public const string EtcdVersion = "3.5.16";

    public override Task<StatusResponse> Status(StatusRequest request, ServerCallContext context)
    {
        var (revision, size) = kv.Log.Read(s => (s.Revision, s.DbSize()));
        return Task.FromResult(new StatusResponse
        {
            Header = kv.Header(revision),
            Version = EtcdVersion,
            DbSize = size.Size,
            DbSizeInUse = size.InUse,
            Leader = identity.MemberId,
            RaftIndex = (ulong)revision,
            RaftAppliedIndex = (ulong)revision,
            RaftTerm = 1,
        });
    }

    public override Task<AlarmResponse> Alarm(AlarmRequest request, ServerCallContext context) =>
        Task.FromResult(new AlarmResponse { Header = kv.Header(kv.Log.Revision) });

    public override async Task<DefragmentResponse> Defragment(DefragmentRequest request, ServerCallContext context)
    {
        await kv.Log.ExclusiveAsync(c =>
        {
            foreach (var statement in kv.Log.Dialect.Sql.Defragment)
            {
                using var cmd = c.CreateCommand();
                cmd.CommandText = statement;
                cmd.CommandTimeout = 0;
                cmd.ExecuteNonQuery();
            }

            return 0;
        });
        return new DefragmentResponse { Header = kv.Header(kv.Log.Revision) };
    }

    public override Task<HashResponse> Hash(HashRequest request, ServerCallContext context)
    {
        var (hash, revision, _) = HashKv(0);
        return Task.FromResult(new HashResponse { Header = kv.Header(revision), Hash = hash });
    }

    public override Task<HashKVResponse> HashKV(HashKVRequest request, ServerCallContext context)
    {
        var (hash, revision, compact) = HashKv(request.Revision);
        return Task.FromResult(new HashKVResponse { Header = kv.Header(revision), Hash = hash, CompactRevision = compact, HashRevision = request.Revision > 0 ? request.Revision : revision });
    }

    /// <summary>
    /// A consistent copy of the store in etcd's framing (<see cref="SnapshotFraming"/>): the database bytes, then their
    /// SHA-256 as the last 32 bytes, so <c>etcdctl snapshot save</c> accepts it and a restore can verify it.
    /// </summary>
    public override async Task Snapshot(SnapshotRequest request, IServerStreamWriter<SnapshotResponse> responseStream, ServerCallContext context)
    {
        var file = Path.Combine(Path.GetTempPath(), $"coracle-snapshot-{Guid.NewGuid():N}.db");
        try
        {
            var revision = await TakeSnapshotAsync(file);
            await using var stream = File.OpenRead(file);
            if (stream.Length % SnapshotFraming.Sector != 0)
            {
                throw EtcdErrors.NotSupported($"snapshot of a {kv.Log.Dialect.Name} datastore whose copy is not whole 512-byte sectors ({stream.Length} bytes)").ToRpc();
            }

            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var remaining = stream.Length + SnapshotFraming.TrailerBytes;
            var buffer = new byte[32 * 1024];
            var first = true;
            int read;
            while ((read = await stream.ReadAsync(buffer, context.CancellationToken)) > 0)
            {
                sha.AppendData(buffer, 0, read);
                remaining -= read;
                var response = new SnapshotResponse { RemainingBytes = (ulong)remaining, Blob = ByteString.CopyFrom(buffer, 0, read), Version = EtcdVersion };
                if (first)
                {
                    response.Header = kv.Header(revision);
                    first = false;
                }

                await responseStream.WriteAsync(response, context.CancellationToken);
            }

            await responseStream.WriteAsync(new SnapshotResponse { RemainingBytes = 0, Blob = ByteString.CopyFrom(sha.GetHashAndReset()), Version = EtcdVersion }, context.CancellationToken);
        }
        finally
        {
            File.Delete(file);
        }
    }

    /// <summary>
    /// The one place a snapshot of this datastore is taken: a consistent copy of the store at one revision, written to
    /// <paramref name="file"/> while writes wait. Anything that holds writes outside the database (volatile keys kept in
    /// memory) is flushed here first, in the same turn of the writer. Returns the revision the copy holds.
    /// </summary>
    private async Task<long> TakeSnapshotAsync(string file)
    {
        var snapshotTo = kv.Log.Dialect.SnapshotTo ?? throw EtcdErrors.NotSupported($"snapshot of a {kv.Log.Dialect.Name} datastore (use the database's own backup tools)").ToRpc();
        return await kv.Log.ExclusiveWithVolatileFlushedAsync(c =>
        {
            snapshotTo(c, file).GetAwaiter().GetResult();
            return kv.Log.Revision;
        });
    }

    public override Task<MoveLeaderResponse> MoveLeader(MoveLeaderRequest request, ServerCallContext context) =>
        throw EtcdErrors.NotSupported("moving the leader").ToRpc();

    public override Task<DowngradeResponse> Downgrade(DowngradeRequest request, ServerCallContext context) =>
        throw EtcdErrors.NotSupported("downgrade").ToRpc();

    private (uint Hash, long Revision, long Compact) HashKv(long atRevision) => kv.Log.Read(s =>
    {
        var revision = atRevision > 0 ? atRevision : s.Revision;
        if (revision > s.Revision)
        {
            throw EtcdErrors.FutureRevision;
        }

        if (revision < s.CompactRevision)
        {
            throw EtcdErrors.Compacted;
        }

        var crc = 0xffff_ffffu;
        Span<byte> number = stackalloc byte[8];
        foreach (var e in s.Events(s.CompactRevision, revision, new KeyRange(RangeKind.Open, [], []), 0))
        {
            BitConverter.TryWriteBytes(number, e.Row.Id);
            crc = Crc32.Append(crc, number);
            crc = Crc32.Append(crc, e.Row.Key);
            crc = Crc32.Append(crc, e.Row.Value);
        }

        return (~crc, s.Revision, s.CompactRevision);
    });
}

/// <summary>CRC-32 (IEEE), for HashKV.</summary>
internal static class Crc32
{
    private static readonly uint[] Table = Build();

    public static uint Append(uint crc, ReadOnlySpan<byte> data)
    {
        foreach (var b in data)
        {
            crc = Table[(crc ^ b) & 0xff] ^ (crc >> 8);
        }

        return crc;
    }

    private static uint[] Build()
    {
        var table = new uint[256];
        for (var i = 0u; i < 256; i++)
        {
            var c = i;
            for (var k = 0; k < 8; k++)
            {
                c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            }

            table[i] = c;
        }

        return table;
    }
}
