using System.Diagnostics;
using System.Text.RegularExpressions;
using Coracle.Plugins.LoadBalancer.ServiceLb;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;

namespace Coracle.Plugins.LoadBalancer.Tests.ServiceLb;

/// <summary>
/// Real iptables in network namespaces this test creates: a "node" namespace between a "lan" namespace (the client,
/// outside the pod network) and a "pod" namespace (the backend) that has no route back to the LAN, so a reply reaches
/// the client only through the node's masquerade. Needs root; the namespaces are deleted at the end.
/// </summary>
[Trait("Category", "Integration")]
public sealed partial class IptablesNamespaceTests : IDisposable
{
    private readonly string _id = Guid.NewGuid().ToString("N")[..6];
    private readonly List<string> _namespaces = [];
    private readonly List<Process> _processes = [];

    private string NodeNs => $"slb{_id}-node";

    private string LanNs => $"slb{_id}-lan";

    private string PodNs => $"slb{_id}-pod";

    private const string NodeIp = "192.168.88.2";
    private const string ClientIp = "192.168.88.1";
    private const string PodIp = "10.99.0.2";

    [Fact]
    public async Task Apply_InANamespace_ForwardsTcpAndUdpFromOutsideResyncIdempotentRemoveRestoresIptablesSave()
    {
        BuildNetwork();

        // Someone else's nat rules, which ServiceLB must leave exactly as they are.
        In(NodeNs, "iptables", "-t", "nat", "-N", "OTHER-CHAIN");
        In(NodeNs, "iptables", "-t", "nat", "-A", "OTHER-CHAIN", "-p", "tcp", "--dport", "9", "-j", "RETURN");
        In(NodeNs, "iptables", "-t", "nat", "-A", "PREROUTING", "-j", "OTHER-CHAIN");
        In(NodeNs, "iptables", "-t", "nat", "-A", "POSTROUTING", "-s", "10.98.0.0/16", "-j", "MASQUERADE");
        var before = Save();

        Serve("TCP-LISTEN:8000,fork,reuseaddr", "SYSTEM:echo tcp-backend");
        Serve("UDP-RECVFROM:5353,fork", "SYSTEM:echo udp-backend");
        var iptables = new Iptables(NullLogger.Instance, ["ip", "netns", "exec", NodeNs]);
        Forward[] forwards =
        [
            new("default/web", "http", "TCP", NodeIp, 8080, [new(PodIp, 8000, "node")], Masquerade: true),
            new("default/dns", "dns", "UDP", NodeIp, 53, [new(PodIp, 5353, "node")], Masquerade: true),
        ];

        await iptables.ApplyAsync(forwards, CancellationToken.None);
        var applied = Save();
        await iptables.ApplyAsync(forwards, CancellationToken.None);

        Assert.Equal(applied, Save());
        Assert.Contains($"-A PREROUTING -m comment --comment \"coracle servicelb\" -j CORACLE-SVCLB", applied, StringComparison.Ordinal);
        Assert.Equal(before, Without(applied, "CORACLE-SVCLB"));
        Assert.Equal("tcp-backend", Client($"TCP:{NodeIp}:8080", ""));
        Assert.Equal("udp-backend", Client($"UDP:{NodeIp}:53", "ping\n"));

        // A re-sync with the UDP Service gone: only its rules go.
        await iptables.ApplyAsync(forwards[..1], CancellationToken.None);
        Assert.DoesNotContain("default/dns", Save(), StringComparison.Ordinal);
        Assert.Equal("tcp-backend", Client($"TCP:{NodeIp}:8080", ""));

        await iptables.RemoveAsync(CancellationToken.None);
        Assert.Equal(before, Save());
        await iptables.RemoveAsync(CancellationToken.None);
        Assert.Equal(before, Save());
    }

    [Fact]
    public async Task Apply_NoMasquerade_ReplyFromAPodWithoutARouteBackIsLost()
    {
        BuildNetwork();
        Serve("TCP-LISTEN:8000,fork,reuseaddr", "SYSTEM:echo tcp-backend");
        var iptables = new Iptables(NullLogger.Instance, ["ip", "netns", "exec", NodeNs]);

        await iptables.ApplyAsync([new("default/web", "http", "TCP", NodeIp, 8080, [new(PodIp, 8000, "node")], Masquerade: false)], CancellationToken.None);

        // The pod has no route to 192.168.88.0/24: without ServiceLB's masquerade the reply cannot leave it.
        Assert.Equal("", Client($"TCP:{NodeIp}:8080,connect-timeout=2", ""));
    }

    public void Dispose()
    {
        foreach (var p in _processes)
        {
            try
            {
                p.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
            }

            p.Dispose();
        }

        foreach (var ns in _namespaces)
        {
            Run("ip", "netns", "del", ns);
        }
    }

    private void BuildNetwork()
    {
        foreach (var ns in new[] { NodeNs, LanNs, PodNs })
        {
            Must("ip", "netns", "add", ns);
            _namespaces.Add(ns);
            In(ns, "ip", "link", "set", "lo", "up");
        }

        Must("ip", "link", "add", $"slb{_id}l", "netns", LanNs, "type", "veth", "peer", "name", "eth0", "netns", NodeNs);
        Must("ip", "link", "add", $"slb{_id}p", "netns", PodNs, "type", "veth", "peer", "name", "cni0", "netns", NodeNs);
        In(LanNs, "ip", "addr", "add", ClientIp + "/24", "dev", $"slb{_id}l");
        In(LanNs, "ip", "link", "set", $"slb{_id}l", "up");
        In(NodeNs, "ip", "addr", "add", NodeIp + "/24", "dev", "eth0");
        In(NodeNs, "ip", "link", "set", "eth0", "up");
        In(NodeNs, "ip", "addr", "add", "10.99.0.1/24", "dev", "cni0");
        In(NodeNs, "ip", "link", "set", "cni0", "up");
        In(NodeNs, "sysctl", "-qw", "net.ipv4.ip_forward=1");
        In(PodNs, "ip", "addr", "add", PodIp + "/24", "dev", $"slb{_id}p");
        In(PodNs, "ip", "link", "set", $"slb{_id}p", "up");
    }

    private void Serve(string listen, string answer)
    {
        var info = new ProcessStartInfo("ip") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "netns", "exec", PodNs, "socat", listen, answer })
        {
            info.ArgumentList.Add(a);
        }

        _processes.Add(Process.Start(info)!);
        var port = Regex.Match(listen, "[0-9]+").Value;
        var proto = listen.StartsWith("UDP", StringComparison.Ordinal) ? "udp" : "tcp";
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (DateTime.UtcNow < deadline && !Run("ip", "netns", "exec", PodNs, "ss", "-lnH", proto == "udp" ? "-u" : "-t").Output.Contains(":" + port, StringComparison.Ordinal))
        {
            Thread.Sleep(50);
        }
    }

    /// <summary>What the LAN client gets back from <paramref name="address"/> (socat syntax) after sending <paramref name="stdin"/>.</summary>
    /// <remarks>UDP is lossy and a loaded machine may answer late, so a UDP datagram is sent up to three times.</remarks>
    private string Client(string address, string stdin)
    {
        var tries = address.StartsWith("UDP", StringComparison.Ordinal) ? 3 : 1;
        var output = "";
        for (var i = 0; i < tries && output.Length == 0; i++)
        {
            output = Run("timeout", ["10", "ip", "netns", "exec", LanNs, "socat", "-T5", "-", address], stdin).Output.Trim();
        }

        return output;
    }

    /// <summary><c>iptables-save</c> of the node namespace, counters and comments dropped.</summary>
    private string Save() =>
        string.Join('\n', In(NodeNs, "iptables-save").Split('\n')
            .Where(l => !l.StartsWith('#'))
            .Select(l => Counters().Replace(l, "[0:0]")));

    private static string Without(string save, string word) =>
        string.Join('\n', save.Split('\n').Where(l => !l.Contains(word, StringComparison.Ordinal)));

    [GeneratedRegex(@"\[\d+:\d+\]")]
    private static partial Regex Counters();

    private static string In(string ns, string file, params string[] args) => Must("ip", ["netns", "exec", ns, file, .. args]);

    private static string Must(string file, params string[] args)
    {
        var (code, output, error) = Run(file, args);
        return code == 0 ? output : throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed ({code}): {error.Trim()}");
    }

    private static (int Code, string Output, string Error) Run(string file, params string[] args) => Run(file, args, null);

    private static (int Code, string Output, string Error) Run(string file, string[] args, string? stdin)
    {
        var info = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        using var process = Process.Start(info)!;
        process.StandardInput.Write(stdin ?? "");
        process.StandardInput.Close();
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        process.WaitForExit();
        return (process.ExitCode, output.Result, error.Result);
    }
}
