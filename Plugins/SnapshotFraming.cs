using System.Security.Cryptography;

namespace Coracle.Plugins;

/// <summary>
/// etcd's snapshot framing, which <c>etcdctl snapshot save</c> checks and every <see cref="IDatastoreSnapshots"/> plugin verifies: the database bytes (a whole number of 512-byte
/// sectors; SQLite pages are) followed by the 32-byte SHA-256 of those bytes, so the size modulo 512 is 32.
/// </summary>
public static class SnapshotFraming
{
    /// <summary>The trailer's length: one SHA-256.</summary>
    public const int TrailerBytes = 32;

    /// <summary>The sector size etcd's check divides by.</summary>
    public const int Sector = 512;

    /// <summary>True when a stream of <paramref name="size"/> bytes can carry the trailer (etcd's <c>hasChecksum</c>).</summary>
    public static bool HasTrailer(long size) => size >= Sector + TrailerBytes && size % Sector == TrailerBytes;

    /// <summary>
    /// Reads a framed file and returns the SHA-256 its trailer states; throws <see cref="InvalidDataException"/> when
    /// the size cannot hold a trailer or the data's hash differs from it.
    /// </summary>
    public static byte[] Verify(string file)
    {
        using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        var size = stream.Length;
        if (!HasTrailer(size))
        {
            throw new InvalidDataException(
                $"not a snapshot: its {size} bytes are not whole 512-byte sectors plus a 32-byte SHA-256 (truncated, or not written by 'coracle etcd-snapshot save' or 'etcdctl snapshot save')");
        }

        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[1 << 16];
        var left = size - TrailerBytes;
        while (left > 0)
        {
            var read = stream.Read(buffer, 0, (int)Math.Min(buffer.Length, left));
            if (read == 0)
            {
                throw new InvalidDataException("the file shrank while it was read");
            }

            sha.AppendData(buffer, 0, read);
            left -= read;
        }

        var trailer = new byte[TrailerBytes];
        stream.ReadExactly(trailer);
        var actual = sha.GetHashAndReset();
        if (!CryptographicOperations.FixedTimeEquals(actual, trailer))
        {
            throw new InvalidDataException(
                $"checksum mismatch: the data hashes to sha256 {Convert.ToHexStringLower(actual)} but the trailer says {Convert.ToHexStringLower(trailer)} (the file is corrupt or truncated)");
        }

        return trailer;
    }
}
