using System.Net.Sockets;
using System.Text.Json;

namespace Coracle.Core.Status;

/// <summary>Reads a running node's status over its unix socket.</summary>
internal static class StatusClient
{
    public static bool TryConnect(string path)
    {
        try
        {
            using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            socket.Connect(new UnixDomainSocketEndPoint(path));
            return true;
        }
        catch (Exception ex) when (ex is SocketException or ArgumentException)
        {
            // ArgumentException: a path longer than a unix socket address allows.
            return false;
        }
    }

    /// <summary>Returns the node's status, or null when nothing answers on <paramref name="path"/>.</summary>
    public static async Task<NodeStatus?> ReadAsync(string path, CancellationToken cancellationToken)
    {
        if (!File.Exists(path))
        {
            return null;
        }

        // A full accept backlog makes a unix-socket connect fail with EAGAIN at once: the node is busy, not absent
        // (killall decides from this answer whether a node runs), so try again for a few seconds.
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), cancellationToken);
                await using var stream = new NetworkStream(socket, ownsSocket: false);
                return await JsonSerializer.DeserializeAsync(stream, StatusJson.Default.NodeStatus, cancellationToken);
            }
            catch (SocketException ex) when (ex.SocketErrorCode == SocketError.WouldBlock && attempt < 50)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(50), cancellationToken);
            }
            catch (SocketException)
            {
                return null;
            }
        }
    }
}
