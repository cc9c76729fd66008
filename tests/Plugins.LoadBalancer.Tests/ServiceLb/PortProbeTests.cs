using System.Net;
using Coracle.Plugins.LoadBalancer.ServiceLb;
using Xunit;

namespace Coracle.Plugins.LoadBalancer.Tests.ServiceLb;

public sealed class PortProbeTests
{
    // Real /proc/net text (x86_64): sshd on 0.0.0.0:22, something on 127.0.0.1:8080, 192.168.1.10:8443 listening, one
    // established connection from :22.
    private const string Tcp = """
          sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
           0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 21520 1 0000000000000000 100 0 0 10 0
           1: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 33301 1 0000000000000000 100 0 0 10 0
           2: 0A01A8C0:20FB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 33302 1 0000000000000000 100 0 0 10 0
           3: 0A01A8C0:0016 0201A8C0:C350 01 00000000:00000000 02:000A7D1E 00000000     0        0 40001 4 0000000000000000 20 4 30 10 -1
        """;

    // [::]:9000 listening and [::ffff:192.168.1.10]:9001 listening.
    private const string Tcp6 = """
          sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
           0: 00000000000000000000000000000000:2328 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 50001 1 0000000000000000 100 0 0 10 0
           1: 0000000000000000FFFF00000A01A8C0:2329 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 50002 1 0000000000000000 100 0 0 10 0
        """;

    // 0.0.0.0:53 bound (07), one connected UDP socket (01) on :5353.
    private const string Udp = """
           sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
          100: 00000000:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 60001 2 0000000000000000 0
          101: 0A01A8C0:14E9 08080808:0035 01 00000000:00000000 00:00000000 00000000     0        0 60002 2 0000000000000000 0
        """;

    private static readonly string[] NodeIps = ["192.168.1.10"];

    [Fact]
    public void Parse_Tcp_ListeningSocketsOnly()
    {
        var listeners = PortProbe.Parse(Tcp, "TCP").ToList();

        Assert.Equal([(IPAddress.Any, 22), (IPAddress.Loopback, 8080), (IPAddress.Parse("192.168.1.10"), 8443)], listeners.Select(l => (l.Address, l.Port)));
        Assert.Equal(21520, listeners[0].Inode);
    }

    [Fact]
    public void Holder_WildcardOrNodeAddress_LoopbackAndOtherPortsFree()
    {
        var listeners = PortProbe.Parse(Tcp, "TCP").Concat(PortProbe.Parse(Tcp6, "TCP")).Concat(PortProbe.Parse(Udp, "UDP")).ToList();

        Assert.Equal(21520, PortProbe.Holder(listeners, "TCP", 22, NodeIps)?.Inode);
        Assert.Equal(33302, PortProbe.Holder(listeners, "TCP", 8443, NodeIps)?.Inode);
        Assert.Null(PortProbe.Holder(listeners, "TCP", 8080, NodeIps));
        Assert.Equal(50001, PortProbe.Holder(listeners, "TCP", 9000, NodeIps)?.Inode);
        Assert.Equal(50002, PortProbe.Holder(listeners, "TCP", 9001, NodeIps)?.Inode);
        Assert.Equal(60001, PortProbe.Holder(listeners, "UDP", 53, NodeIps)?.Inode);
        Assert.Null(PortProbe.Holder(listeners, "UDP", 5353, NodeIps));
        Assert.Null(PortProbe.Holder(listeners, "UDP", 22, NodeIps));
        Assert.Null(PortProbe.Holder(listeners, "TCP", 8443, ["192.168.1.11"]));
    }

    [Fact]
    public void Parse_GarbageLines_Skipped()
    {
        Assert.Empty(PortProbe.Parse("nonsense\n 0: ZZZZ:0016 00000000:0000 0A 0 0 0 0 0 0 1\n", "TCP"));
    }

    [Fact]
    public void Read_FakeProcRoot_ReadsAllFourFilesAndToleratesMissingOnes()
    {
        using var dir = new TempDir("slbproc");
        Directory.CreateDirectory(dir.Combine("net"));
        File.WriteAllText(dir.Combine("net", "tcp"), Tcp);
        File.WriteAllText(dir.Combine("net", "udp"), Udp);

        var listeners = new PortProbe(dir.Path).Read();

        Assert.Equal(4, listeners.Count);
        Assert.Equal(["TCP", "TCP", "TCP", "UDP"], listeners.Select(l => l.Protocol));
    }

    [Fact]
    public void WithOwner_RealListeningSocket_NamesThisProcess()
    {
        using var socket = new System.Net.Sockets.TcpListener(IPAddress.Any, 0);
        socket.Start();
        var port = ((IPEndPoint)socket.LocalEndpoint).Port;
        var probe = new PortProbe();

        var holder = PortProbe.Holder(probe.Read(), "TCP", port, ["192.0.2.1"]);

        Assert.NotNull(holder);
        var named = probe.WithOwner(holder);
        Assert.Equal($"pid {Environment.ProcessId} ({System.Diagnostics.Process.GetCurrentProcess().ProcessName[..Math.Min(15, System.Diagnostics.Process.GetCurrentProcess().ProcessName.Length)]})", named.Owner);
        Assert.EndsWith($":{port}/TCP", named.Describe(), StringComparison.Ordinal);
    }
}
