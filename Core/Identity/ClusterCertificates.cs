using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using Coracle.Core.Configuration;
using Coracle.Core.Hosting;

namespace Coracle.Core.Identity;

/// <summary>One certificate of the server's layout under <c>DATA/server/tls</c>.</summary>
/// <param name="Name">File stem: <c>NAME.crt</c> and <c>NAME.key</c>.</param>
/// <param name="Issuer">The CA's file stem; empty for a CA.</param>
internal sealed record CertSpec(string Name, string Issuer, CertSubject Subject, CertUsage Usage, string Purpose)
{
    public bool IsCa => Usage == CertUsage.Ca;
}

/// <summary>What happened to one certificate at start or rotation.</summary>
internal sealed record CertOutcome(string Name, string Action, DateTimeOffset NotAfter);

/// <summary>One row of <c>coracle certificate check</c>.</summary>
internal sealed record CertCheck(string Name, string Issuer, string Subject, DateTimeOffset NotAfter, string Status);

/// <summary>A network interface as the node's address detection sees it.</summary>
internal sealed record HostInterface(string Name, bool Up, bool Loopback, IReadOnlyList<IPAddress> Addresses);

/// <summary>
/// The server's certificate layout (K3s's): five CAs, serving certificates and client certificates. Creates what is
/// missing, reuses valid files, renews leaves near expiry or issued by a replaced CA, and refuses broken files.
/// </summary>
internal sealed class ClusterCertificates
{
    /// <summary>Leaves within this window of expiry are renewed (at start and while the node runs), as K3s does.</summary>
    public static readonly TimeSpan MaxRenewWindow = TimeSpan.FromDays(120);

    /// <summary>
    /// The renewal window of a leaf lifetime: <see cref="MaxRenewWindow"/>, or a third of a shorter lifetime (a
    /// 30-day <c>cert-lifetime</c> renews 10 days before expiry, not at every check).
    /// </summary>
    public static TimeSpan RenewWindowFor(TimeSpan lifetime) => lifetime / 3 < MaxRenewWindow ? lifetime / 3 : MaxRenewWindow;

    /// <summary>The renewal window of this node's leaves.</summary>
    public TimeSpan RenewWindow => RenewWindowFor(LeafLifetime);

    /// <summary><c>expired</c>, <c>due for renewal</c> (a leaf inside <paramref name="renewWindow"/>) or <c>ok</c>.</summary>
    public static string ExpiryStatus(DateTimeOffset notAfter, DateTimeOffset now, bool isCa, TimeSpan renewWindow) =>
        notAfter <= now ? "expired"
        : !isCa && notAfter - now <= renewWindow ? "due for renewal"
        : "ok";

    public const string ServerCa = "server-ca";
    public const string ClientCa = "client-ca";
    public const string RequestHeaderCa = "request-header-ca";
    public const string EtcdServerCa = "etcd-server-ca";
    public const string EtcdPeerCa = "etcd-peer-ca";

    public static IReadOnlyList<string> CaNames { get; } = [ServerCa, ClientCa, RequestHeaderCa, EtcdServerCa, EtcdPeerCa];

    private readonly TimeProvider _time;

    public ClusterCertificates(string directory, IReadOnlyList<CertSpec> specs, TimeSpan leafLifetime, TimeSpan caLifetime, TimeProvider? time = null)
    {
        Directory = directory;
        Specs = specs;
        LeafLifetime = leafLifetime;
        CaLifetime = caLifetime;
        _time = time ?? TimeProvider.System;
    }

    public string Directory { get; }

    public IReadOnlyList<CertSpec> Specs { get; }

    public TimeSpan LeafLifetime { get; }

    public TimeSpan CaLifetime { get; }

    public string CertFile(string name) => Path.Combine(Directory, name + ".crt");

    public string KeyFile(string name) => Path.Combine(Directory, name + ".key");

    public static ClusterCertificates ForServer(CoracleConfig config, TimeProvider? time = null) =>
        new(TlsDir(config.DataDir), Layout(config), config.CertLifetime, config.CaCertLifetime, time);

    public static string TlsDir(string dataDir) => Path.Combine(dataDir, "server", "tls");

    /// <summary>The node's addresses: <c>--node-ip</c>, else <see cref="DetectAddresses"/> on this host.</summary>
    public static IReadOnlyList<IPAddress> NodeAddresses(CoracleConfig config)
    {
        if (config.NodeIps.Count > 0)
        {
            return config.NodeIps.Select(IPAddress.Parse).ToList();
        }

        var interfaces = NetworkInterface.GetAllNetworkInterfaces()
            .Select(n => new HostInterface(n.Name, n.OperationalStatus == OperationalStatus.Up, n.NetworkInterfaceType == NetworkInterfaceType.Loopback,
                n.GetIPProperties().UnicastAddresses.Select(a => a.Address).ToList()))
            .ToList();
        return DetectAddresses(interfaces, "/proc", "/sys");
    }

    /// <summary>
    /// The node's addresses without <c>--node-ip</c>, as K3s chooses them: those of the IPv4 default route's interface
    /// (<c>PROC/net/route</c>); without one, those of the up, non-loopback interfaces that are not software-made (no
    /// <c>SYS/devices/virtual/net/NAME</c>: bridges, veths, overlay devices a CNI creates once pods run, which must not
    /// change the certificates' names); only when there are none of those, those of any up, non-loopback interface.
    /// IPv4 and global IPv6 addresses, in interface order.
    /// </summary>
    internal static IReadOnlyList<IPAddress> DetectAddresses(IReadOnlyList<HostInterface> interfaces, string procRoot, string sysRoot)
    {
        static List<IPAddress> Usable(IEnumerable<HostInterface> chosen) => chosen
            .SelectMany(n => n.Addresses)
            .Where(a => a.AddressFamily == AddressFamily.InterNetwork || (a.AddressFamily == AddressFamily.InterNetworkV6 && !a.IsIPv6LinkLocal && !IPAddress.IsLoopback(a)))
            .Distinct()
            .ToList();

        if (DefaultRouteInterface(Path.Combine(procRoot, "net", "route")) is { } defaultInterface
            && Usable(interfaces.Where(n => n.Name == defaultInterface)) is { Count: > 0 } routed)
        {
            return routed;
        }

        var candidates = interfaces.Where(n => n.Up && !n.Loopback).ToList();
        var hardware = Usable(candidates.Where(n => !System.IO.Directory.Exists(Path.Combine(sysRoot, "devices", "virtual", "net", n.Name))));
        return hardware.Count > 0 ? hardware : Usable(candidates);
    }

    /// <summary>The interface of the IPv4 default route in <c>/proc/net/route</c>, or null.</summary>
    public static string? DefaultRouteInterface(string routeFile)
    {
        if (!File.Exists(routeFile))
        {
            return null;
        }

        return File.ReadLines(routeFile).Skip(1)
            .Select(l => l.Split('\t', StringSplitOptions.TrimEntries))
            .FirstOrDefault(f => f.Length > 7 && f[1] == "00000000" && f[7] == "00000000")?[0];
    }

    /// <summary>The first address of the service network: the <c>kubernetes</c> service's cluster IP.</summary>
    public static IPAddress FirstServiceIp(IPNetwork serviceCidr)
    {
        var bytes = serviceCidr.BaseAddress.GetAddressBytes();
        bytes[^1]++;
        return new IPAddress(bytes);
    }

    public static IReadOnlyList<CertSpec> Layout(CoracleConfig config)
    {
        var nodeIps = NodeAddresses(config);
        var loopback = new[] { IPAddress.Loopback, IPAddress.IPv6Loopback };
        var domain = config.ClusterDomain;
        var apiDns = new List<string> { "localhost", config.NodeName, "kubernetes", "kubernetes.default", "kubernetes.default.svc", $"kubernetes.default.svc.{domain}" };
        var apiIps = new List<IPAddress>(loopback) { FirstServiceIp(config.ServiceCidr) };
        apiIps.AddRange(nodeIps);
        foreach (var san in config.TlsSans)
        {
            if (IPAddress.TryParse(san, out var ip))
            {
                apiIps.Add(ip);
            }
            else
            {
                apiDns.Add(san);
            }
        }

        var apiSubject = new CertSubject("kube-apiserver", [], apiDns.Distinct(StringComparer.OrdinalIgnoreCase).ToList(), apiIps.Distinct().ToList());
        var nodeSubject = new CertSubject(config.NodeName, [], ["localhost", config.NodeName], [.. loopback, .. nodeIps]);
        var datastoreSubject = new CertSubject("coracle-datastore", [], ["localhost", config.NodeName], [.. loopback, .. nodeIps]);

        static CertSpec Ca(string name, string cn, string purpose) => new(name, "", CertSubject.Named(cn), CertUsage.Ca, purpose);

        return
        [
            Ca(ServerCa, "coracle-server-ca", "signs serving certificates; its hash is in the token"),
            Ca(ClientCa, "coracle-client-ca", "signs client certificates kube-apiserver and kubelets trust"),
            Ca(RequestHeaderCa, "coracle-request-header-ca", "signs the front proxy (aggregation) client"),
            Ca(EtcdServerCa, "coracle-etcd-server-ca", "signs the datastore's TLS listener and its clients"),
            Ca(EtcdPeerCa, "coracle-etcd-peer-ca", "signs datastore peer certificates"),
            new("serving-kube-apiserver", ServerCa, apiSubject, CertUsage.Server, "kube-apiserver HTTPS"),
            new("supervisor", ServerCa, apiSubject with { CommonName = "coracle-supervisor" }, CertUsage.Server, "join API and tunnel HTTPS"),
            new("serving-kubelet", ServerCa, nodeSubject, CertUsage.Server, "this node's kubelet HTTPS"),
            new("serving-kube-controller-manager", ServerCa, new CertSubject("kube-controller-manager", [], ["localhost"], loopback), CertUsage.Server, "kube-controller-manager HTTPS (healthz)"),
            new("serving-kube-scheduler", ServerCa, new CertSubject("kube-scheduler", [], ["localhost"], loopback), CertUsage.Server, "kube-scheduler HTTPS (healthz)"),
            new("client-admin", ClientCa, CertSubject.Named("system:admin", "system:masters"), CertUsage.Client, "admin kubeconfig"),
            new("client-controller", ClientCa, CertSubject.Named("system:kube-controller-manager"), CertUsage.Client, "kube-controller-manager"),
            new("client-scheduler", ClientCa, CertSubject.Named("system:kube-scheduler"), CertUsage.Client, "kube-scheduler"),
            new("client-kube-proxy", ClientCa, CertSubject.Named("system:kube-proxy"), CertUsage.Client, "kube-proxy"),
            new("client-kubelet", ClientCa, CertSubject.Named($"system:node:{config.NodeName}", "system:nodes"), CertUsage.Client, "this node's kubelet"),
            new("client-coracle-controller", ClientCa, CertSubject.Named(Kubernetes.ClusterRbac.ControllerUser), CertUsage.Client, "the node's in-process controllers (CNI subnet leases, service LB)"),
            new("client-kube-apiserver", ClientCa, CertSubject.Named("system:apiserver", "system:masters"), CertUsage.Client, "kube-apiserver to kubelets"),
            new("client-auth-proxy", RequestHeaderCa, CertSubject.Named("system:auth-proxy"), CertUsage.Client, "kube-apiserver front proxy"),
            new("datastore", EtcdServerCa, datastoreSubject, CertUsage.ServerAndClient, "datastore TLS listener"),
            new("datastore-client", EtcdServerCa, CertSubject.Named("system:apiserver-etcd-client"), CertUsage.Client, "kube-apiserver to datastore"),
            new("etcd-peer", EtcdPeerCa, datastoreSubject with { CommonName = "coracle-etcd-peer" }, CertUsage.ServerAndClient, "datastore peers"),
        ];
    }

    /// <summary>
    /// Creates missing CAs and leaves, reuses valid ones, renews leaves within <see cref="RenewWindow"/> of expiry, whose
    /// names changed (a new <c>--tls-san</c>) or whose CA was replaced. <paramref name="renew"/> forces renewal of those leaves.
    /// </summary>
    public IReadOnlyList<CertOutcome> Ensure(ISet<string>? renew = null)
    {
        FileUtil.PrivateDirectory(Directory);
        var now = _time.GetUtcNow();
        var outcomes = new List<CertOutcome>();
        var cas = new Dictionary<string, CertificateWithKey>(StringComparer.Ordinal);
        try
        {
            foreach (var spec in Specs.Where(s => s.IsCa))
            {
                var (ca, action) = EnsureCa(spec, now);
                cas[spec.Name] = ca;
                outcomes.Add(new CertOutcome(spec.Name, action, ca.Certificate.NotAfter));
            }

            foreach (var spec in Specs.Where(s => !s.IsCa))
            {
                var ca = cas[spec.Issuer];
                var action = LeafAction(spec, ca, now, renew);
                if (action is "reused")
                {
                    using var existing = CertificateFactory.LoadCertificate(CertFile(spec.Name));
                    outcomes.Add(new CertOutcome(spec.Name, action, existing.NotAfter));
                    continue;
                }

                using var leaf = CertificateFactory.CreateLeaf(ca, spec.Subject, spec.Usage, now, LeafLifetime);
                WritePair(spec.Name, leaf);
                outcomes.Add(new CertOutcome(spec.Name, action, leaf.Certificate.NotAfter));
            }

            // NAME-ca.crt companions for INodeCertificates.Get (the datastore plugin reads datastore-ca.crt).
            FileUtil.WriteAtomic(CertFile("datastore-ca"), cas[EtcdServerCa].CertificatePem, CertMode);
            FileUtil.WriteAtomic(CertFile("datastore-client-ca"), cas[EtcdServerCa].CertificatePem, CertMode);
            EnsureServiceAccountKey();
        }
        finally
        {
            foreach (var ca in cas.Values)
            {
                ca.Dispose();
            }
        }

        return outcomes;
    }

    public const UnixFileMode KeyMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    public const UnixFileMode CertMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    public string ServiceAccountKeyFile => KeyFile("service");

    /// <summary>Loads a CA with its key (for signing CSRs). The caller disposes it.</summary>
    public CertificateWithKey LoadCa(string name) => CertificateWithKey.Load(CertFile(name), KeyFile(name));

    public IReadOnlyList<CertCheck> Check()
    {
        var now = _time.GetUtcNow();
        var rows = new List<CertCheck>();
        foreach (var spec in Specs)
        {
            var file = CertFile(spec.Name);
            if (!File.Exists(file))
            {
                rows.Add(new CertCheck(spec.Name, spec.IsCa ? "self" : spec.Issuer, "-", DateTimeOffset.MinValue, "missing"));
                continue;
            }

            try
            {
                using var cert = CertificateFactory.LoadCertificate(file);
                var notAfter = new DateTimeOffset(cert.NotAfter.ToUniversalTime());
                var status = ExpiryStatus(notAfter, now, spec.IsCa, RenewWindow);
                if (!spec.IsCa && File.Exists(CertFile(spec.Issuer)))
                {
                    using var issuer = CertificateFactory.LoadCertificate(CertFile(spec.Issuer));
                    if (!CertificateFactory.IsSignedBy(cert, issuer))
                    {
                        status = "not signed by current CA";
                    }
                }

                rows.Add(new CertCheck(spec.Name, spec.IsCa ? "self" : spec.Issuer, cert.Subject, notAfter, status));
            }
            catch (CertificateFileException ex)
            {
                rows.Add(new CertCheck(spec.Name, spec.IsCa ? "self" : spec.Issuer, "-", DateTimeOffset.MinValue, "unreadable: " + ex.Message));
            }
        }

        return rows;
    }

    /// <summary>
    /// Replaces CAs with user-supplied ones: for every <c>NAME.crt</c> + <c>NAME.key</c> of a known CA in
    /// <paramref name="sourceDir"/>, checks it is a CA whose key matches, then installs it. Returns the replaced names.
    /// </summary>
    public IReadOnlyList<string> ReplaceCas(string sourceDir)
    {
        if (!System.IO.Directory.Exists(sourceDir))
        {
            throw new CertificateFileException(sourceDir, $"{sourceDir} does not exist; give a folder holding server-ca.crt and server-ca.key (or other CA pairs)");
        }

        var found = new List<(string Name, CertificateWithKey Ca)>();
        try
        {
            foreach (var name in CaNames)
            {
                var cert = Path.Combine(sourceDir, name + ".crt");
                var key = Path.Combine(sourceDir, name + ".key");
                if (!File.Exists(cert) && !File.Exists(key))
                {
                    continue;
                }

                if (!File.Exists(key) || !File.Exists(cert))
                {
                    throw new CertificateFileException(File.Exists(cert) ? key : cert, $"{name}: both {name}.crt and {name}.key are needed in {sourceDir}");
                }

                var ca = CertificateWithKey.Load(cert, key);
                var basic = ca.Certificate.Extensions.OfType<System.Security.Cryptography.X509Certificates.X509BasicConstraintsExtension>().FirstOrDefault();
                if (basic is null || !basic.CertificateAuthority)
                {
                    ca.Dispose();
                    throw new CertificateFileException(cert, $"{cert} is not a CA certificate (basic constraints CA:TRUE missing)");
                }

                if (ca.Certificate.NotAfter.ToUniversalTime() <= _time.GetUtcNow().UtcDateTime)
                {
                    ca.Dispose();
                    throw new CertificateFileException(cert, $"{cert} has expired ({ca.Certificate.NotAfter:u})");
                }

                found.Add((name, ca));
            }

            if (found.Count == 0)
            {
                throw new CertificateFileException(sourceDir, $"{sourceDir} holds no CA pair; expected any of {string.Join(", ", CaNames.Select(n => n + ".crt/.key"))}");
            }

            FileUtil.PrivateDirectory(Directory);
            foreach (var (name, ca) in found)
            {
                WritePair(name, ca);
            }

            return found.Select(f => f.Name).ToList();
        }
        finally
        {
            foreach (var (_, ca) in found)
            {
                ca.Dispose();
            }
        }
    }

    private (CertificateWithKey Ca, string Action) EnsureCa(CertSpec spec, DateTimeOffset now)
    {
        var cert = CertFile(spec.Name);
        var key = KeyFile(spec.Name);
        if (File.Exists(cert) || File.Exists(key))
        {
            if (!File.Exists(key))
            {
                throw new CertificateFileException(key, $"{key} is missing but {cert} exists; restore the CA key (or remove both files to create a new CA, which invalidates every issued certificate and the token)");
            }

            if (!File.Exists(cert))
            {
                throw new CertificateFileException(cert, $"{cert} is missing but {key} exists; restore the CA certificate");
            }

            return (CertificateWithKey.Load(cert, key), "reused");
        }

        var created = CertificateFactory.CreateCa(spec.Subject.CommonName, now, CaLifetime);
        WritePair(spec.Name, created);
        return (created, "created");
    }

    private string LeafAction(CertSpec spec, CertificateWithKey ca, DateTimeOffset now, ISet<string>? renew)
    {
        var certFile = CertFile(spec.Name);
        var keyFile = KeyFile(spec.Name);
        if (!File.Exists(certFile) && !File.Exists(keyFile))
        {
            return "created";
        }

        // Parse both: a broken file is an error naming it, never silently replaced.
        using var existing = CertificateWithKey.Load(certFile, keyFile);
        if (renew is not null && (renew.Count == 0 || renew.Contains(spec.Name)))
        {
            return "renewed (requested)";
        }

        if (new DateTimeOffset(existing.Certificate.NotAfter.ToUniversalTime()) - now <= RenewWindow)
        {
            return "renewed (expiring)";
        }

        if (!CertificateFactory.IsSignedBy(existing.Certificate, ca.Certificate))
        {
            return "renewed (CA changed)";
        }

        var (dns, ips) = CertificateFactory.AlternativeNames(existing.Certificate);
        if (!new HashSet<string>(dns, StringComparer.OrdinalIgnoreCase).SetEquals(spec.Subject.DnsNames) || !new HashSet<IPAddress>(ips).SetEquals(spec.Subject.IpAddresses)
            || existing.Certificate.SubjectName.Name != spec.Subject.DistinguishedName().Name)
        {
            return "renewed (names changed)";
        }

        return "reused";
    }

    private void EnsureServiceAccountKey()
    {
        var file = ServiceAccountKeyFile;
        if (File.Exists(file))
        {
            try
            {
                using var key = System.Security.Cryptography.ECDsa.Create();
                key.ImportFromPem(File.ReadAllText(file));
            }
            catch (Exception ex) when (ex is System.Security.Cryptography.CryptographicException or ArgumentException)
            {
                throw new CertificateFileException(file, $"{file} is not a readable PEM EC private key ({ex.Message}); restore it (removing it invalidates every service account token)");
            }

            return;
        }

        using var created = CertificateFactory.NewKey();
        FileUtil.WriteAtomic(file, CertificateWithKey.KeyToPem(created), KeyMode);
    }

    private void WritePair(string name, CertificateWithKey pair)
    {
        // Key first: a crash between the two leaves a key without its certificate, which Load reports.
        FileUtil.WriteAtomic(KeyFile(name), pair.KeyPem, KeyMode);
        FileUtil.WriteAtomic(CertFile(name), pair.CertificatePem, CertMode);
    }
}
