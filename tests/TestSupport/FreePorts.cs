using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Coracle.TestSupport;

/// <summary>
/// TCP ports for the servers and child processes a test starts (etcd, kube-apiserver, PostgreSQL, coracle itself).
/// Asking the kernel for port 0 and releasing it is not enough: the kernel hands the same port out again (a CI run saw
/// etcd and kube-apiserver given one port by two calls a line apart), and any outgoing connection may take it as its
/// source port before the child binds it. So ports come from below the kernel's ephemeral range
/// (<c>/proc/sys/net/ipv4/ip_local_port_range</c>), never twice in one test process, each test process walking up from
/// its own random point, and only when 0.0.0.0 can be bound on the port now (nothing listens on it on any address).
/// </summary>
public static class FreePorts
{
    private const int Lowest = 20000;
    private static readonly object Gate = new();
    private static readonly int Highest = BelowEphemeralRange();
    private static int _next = Highest > Lowest ? Random.Shared.Next(Lowest, Highest + 1) : 0;

    /// <summary>A port no listener holds now and this process has not handed out before.</summary>
    public static int Next()
    {
        if (Highest <= Lowest)
        {
            return KernelChosen(); // an unusual ephemeral range leaves no room below it
        }

        lock (Gate)
        {
            for (var tried = 0; tried <= Highest - Lowest; tried++)
            {
                var port = _next;
                _next = port >= Highest ? Lowest : port + 1;
                if (CanBind(port))
                {
                    return port;
                }
            }
        }

        throw new InvalidOperationException($"no free TCP port left in {Lowest}-{Highest} for this test process");
    }

    private static bool CanBind(int port)
    {
        try
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            socket.Bind(new IPEndPoint(IPAddress.Any, port));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static int KernelChosen()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static int BelowEphemeralRange()
    {
        try
        {
            var first = File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range").Split((char[])['\t', ' ', '\n'], StringSplitOptions.RemoveEmptyEntries)[0];
            return int.Parse(first, CultureInfo.InvariantCulture) - 1;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return 32767; // Linux's default range starts at 32768
        }
    }
}
