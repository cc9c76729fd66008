using System.Net;
using Coracle.Core.Identity;

namespace Coracle.Core.Tests.Identity;

/// <summary>
/// The addresses a node without <c>--node-ip</c> puts in its certificates, chosen on a fake /proc/net/route and a fake
/// /sys: no interface is recognised by a plugin's device name.
/// </summary>
public sealed class NodeAddressesTests : IDisposable
{
    private const string RouteHeader = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT";

    private readonly TempDir _temp = new("crt-addr");

    public void Dispose() => _temp.Dispose();

    private string Proc => _temp.Combine("proc");

    private string Sys => _temp.Combine("sys");

    /// <summary>A physical NIC, a second one, and what a CNI and its pods add once they run (software devices).</summary>
    private static readonly IReadOnlyList<HostInterface> Interfaces =
    [
        new("lo", Up: true, Loopback: true, [IPAddress.Loopback, IPAddress.IPv6Loopback]),
        new("ens3", Up: true, Loopback: false, [IPAddress.Parse("192.168.1.10"), IPAddress.Parse("fe80::1"), IPAddress.Parse("2001:db8::10")]),
        new("ens4", Up: true, Loopback: false, [IPAddress.Parse("10.0.0.10")]),
        new("ens5", Up: false, Loopback: false, [IPAddress.Parse("10.9.9.9")]),
        new("br-pods", Up: true, Loopback: false, [IPAddress.Parse("10.42.0.1")]),
        new("vxlan-x", Up: true, Loopback: false, [IPAddress.Parse("10.42.0.0")]),
    ];

    private void Routes(params string[] lines) => _temp.Write("proc/net/route", string.Join('\n', [RouteHeader, .. lines]) + "\n");

    private void Virtual(params string[] names)
    {
        foreach (var name in names)
        {
            Directory.CreateDirectory(_temp.Combine("sys", "devices", "virtual", "net", name));
        }
    }

    [Fact]
    public void DetectAddresses_DefaultRouteViaSecondNic_OnlyThatInterfacesAddresses()
    {
        Routes(
            "ens3\t0001A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0",
            "ens4\t00000000\t0100000A\t0003\t0\t0\t100\t00000000\t0\t0\t0");
        Virtual("lo", "br-pods", "vxlan-x");

        Assert.Equal([IPAddress.Parse("10.0.0.10")], ClusterCertificates.DetectAddresses(Interfaces, Proc, Sys));
    }

    [Fact]
    public void DetectAddresses_DefaultRouteInterface_Ipv4AndGlobalIpv6NoLinkLocal()
    {
        Routes("ens3\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0");

        Assert.Equal([IPAddress.Parse("192.168.1.10"), IPAddress.Parse("2001:db8::10")], ClusterCertificates.DetectAddresses(Interfaces, Proc, Sys));
    }

    [Fact]
    public void DetectAddresses_NoDefaultRoute_UpInterfacesThatAreNotSoftwareMade()
    {
        Routes("ens3\t0001A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0");
        Virtual("lo", "br-pods", "vxlan-x");

        Assert.Equal(
            [IPAddress.Parse("192.168.1.10"), IPAddress.Parse("2001:db8::10"), IPAddress.Parse("10.0.0.10")],
            ClusterCertificates.DetectAddresses(Interfaces, Proc, Sys));
    }

    [Fact]
    public void DetectAddresses_NoRouteFileAndOnlySoftwareInterfaces_AnyUpNonLoopbackInterface()
    {
        Virtual("lo", "ens3", "ens4", "ens5", "br-pods", "vxlan-x");

        Assert.Equal(
            [IPAddress.Parse("192.168.1.10"), IPAddress.Parse("2001:db8::10"), IPAddress.Parse("10.0.0.10"), IPAddress.Parse("10.42.0.1"), IPAddress.Parse("10.42.0.0")],
            ClusterCertificates.DetectAddresses(Interfaces, Proc, Sys));
    }

    [Fact]
    public void DetectAddresses_DefaultRouteInterfaceWithoutAddresses_FallsBackToTheNics()
    {
        Routes("wg0\t00000000\t00000000\t0001\t0\t0\t0\t00000000\t0\t0\t0");
        Virtual("lo", "br-pods", "vxlan-x");

        Assert.Equal(
            [IPAddress.Parse("192.168.1.10"), IPAddress.Parse("2001:db8::10"), IPAddress.Parse("10.0.0.10")],
            ClusterCertificates.DetectAddresses(Interfaces, Proc, Sys));
    }
}
