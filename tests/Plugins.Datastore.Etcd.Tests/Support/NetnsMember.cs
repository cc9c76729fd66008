using System.Diagnostics;
using Coracle.Core.Hosting;
using Coracle.Plugins;

namespace Coracle.Plugins.Datastore.Etcd.Tests.Support;

/// <summary>
/// One etcd member in its own network namespace: the plugin's Configure decides the command line (recorded, not
/// supervised: the host's supervisor starts children in its own namespace), the test runs it under
/// <c>ip netns exec</c> and polls the plugin's own readiness probe.
/// </summary>
internal sealed class NetnsMember : IDisposable
{
    private readonly ListLoggerFactory _logs;
    private Process? _process;

    public NetnsMember(string root, string ns, string name, string ip, IReadOnlyDictionary<string, string> options, NodeCertificates certificates, ListLoggerFactory logs,
        IReadOnlyDictionary<string, string>? join = null)
    {
        Ns = ns;
        Ip = ip;
        Options = options;
        _logs = logs;
        Node = EtcdTest.Node(root, name, ip, join);
        Certificates = certificates;
        var supervisor = new RecordingSupervisor();
        _ = new EtcdPlugin().Configure(EtcdTest.Context(Node, options, certificates, supervisor, logs));
        Spec = Assert.IsType<ProcessComponent>(Assert.Single(supervisor.Components));
    }

    public string Ns { get; }

    public string Ip { get; }

    public NodeSettings Node { get; }

    public IReadOnlyDictionary<string, string> Options { get; }

    public NodeCertificates Certificates { get; }

    public ProcessComponent Spec { get; }

    public TlsFiles ClientTls => Certificates.Get("datastore-client")!;

    public string ClientUrl => $"https://{Ip}:{Options["client-port"]}";

    public int? Pid => _process is { HasExited: false } p ? p.Id : null;

    public async Task StartAsync()
    {
        await Spec.BeforeStart!(CancellationToken.None);
        var start = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "netns", "exec", Ns, Spec.FileName }.Concat(Spec.Arguments))
        {
            start.ArgumentList.Add(a);
        }

        _process = Process.Start(start)!;
        var log = Path.Combine(Node.DataDir, "etcd.log");
        _process.ErrorDataReceived += (_, e) => Append(log, e.Data);
        _process.OutputDataReceived += (_, e) => Append(log, e.Data);
        _process.BeginErrorReadLine();
        _process.BeginOutputReadLine();
    }

    public Task WaitReadyAsync(int seconds = 90) =>
        EtcdTest.UntilAsync(() => ((CustomProbe)Spec.Readiness!).Check(CancellationToken.None), $"etcd member {Node.NodeName} to be ready (log: {Path.Combine(Node.DataDir, "etcd.log")})", seconds);

    public void Kill()
    {
        if (_process is { HasExited: false } p)
        {
            p.Kill();
            p.WaitForExit(10_000);
        }
    }

    public void Dispose() => Kill();

    private static void Append(string file, string? line)
    {
        if (line is not null)
        {
            lock (file)
            {
                File.AppendAllText(file, line + "\n");
            }
        }
    }
}

/// <summary>Network namespaces <c>etcdh-nN</c> with veth pairs on a bridge <c>etcdh-br</c> in the host namespace; removed on dispose.</summary>
internal sealed class NetnsLan : IDisposable
{
    public const string Bridge = "etcdh-br";

    public NetnsLan(int count, string subnet)
    {
        Subnet = subnet;
        Dispose();
        Ip("link", "add", Bridge, "type", "bridge");
        Ip("addr", "add", $"{subnet}.1/24", "dev", Bridge);
        Ip("link", "set", Bridge, "up");
        for (var i = 1; i <= count; i++)
        {
            var ns = $"etcdh-n{i}";
            Ip("netns", "add", ns);
            Ip("link", "add", $"etcdh-v{i}", "type", "veth", "peer", "name", "eth0", "netns", ns);
            Ip("link", "set", $"etcdh-v{i}", "master", Bridge, "up");
            Ip("-n", ns, "addr", "add", $"{subnet}.{10 + i}/24", "dev", "eth0");
            Ip("-n", ns, "link", "set", "eth0", "up");
            Ip("-n", ns, "link", "set", "lo", "up");
            Namespaces.Add(ns);
        }
    }

    public string Subnet { get; }

    public List<string> Namespaces { get; } = [];

    public string Address(int i) => $"{Subnet}.{10 + i}";

    public void Dispose()
    {
        for (var i = 1; i <= 3; i++)
        {
            Ip(false, "netns", "del", $"etcdh-n{i}");
        }

        Ip(false, "link", "del", Bridge);
    }

    private static void Ip(params string[] args) => Ip(true, args);

    private static void Ip(bool check, params string[] args)
    {
        var start = new ProcessStartInfo("ip") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        using var p = Process.Start(start)!;
        var err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (check && p.ExitCode != 0)
        {
            throw new InvalidOperationException($"ip {string.Join(' ', args)}: {err.Trim()}");
        }
    }
}
