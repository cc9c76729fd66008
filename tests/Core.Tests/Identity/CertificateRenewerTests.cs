using System.Collections.Concurrent;
using Coracle.Core.Identity;
using Coracle.Core.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace Coracle.Core.Tests.Identity;

/// <summary>Certificate renewal while the node runs: what is due is renewed, and a change of the files restarts the components.</summary>
public sealed class CertificateRenewerTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly ListLoggerFactory _logs = new();
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2030, 1, 1, 0, 0, 0, TimeSpan.Zero));
    private readonly ConcurrentQueue<string> _restarts = new();

    public void Dispose() => _dir.Dispose();

    private ClusterCertificates Certs() => ClusterCertificates.ForServer(TestConfig.Server(_dir.Path), _time);

    private CertificateRenewer Renewer(Func<CancellationToken, Task<IReadOnlyList<string>>>? renewDue = null) =>
        new([Certs().Directory],
            renewDue ?? (_ => Task.FromResult<IReadOnlyList<string>>(Certs().Ensure().Where(o => o.Action != "reused").Select(o => o.Name).ToList())),
            (reason, _) =>
            {
                _restarts.Enqueue(reason);
                return Task.FromResult<IReadOnlyList<string>>(["kube-apiserver", "kubelet"]);
            },
            _logs.CreateLogger("certificates"), _time);

    [Fact]
    public async Task Pass_LeavesDue_RenewsThemAndRestartsTheComponentsOnce()
    {
        var certs = Certs();
        certs.Ensure();
        var renewer = Renewer();
        var loaded = CertificateRenewer.Fingerprint([certs.Directory]);
        _time.Advance(TimeSpan.FromDays(300)); // 65 days left: inside the 120-day window

        await renewer.PassAsync(loaded, [], CancellationToken.None);

        var reason = Assert.Single(_restarts);
        Assert.StartsWith("certificates renewed: ", reason, StringComparison.Ordinal);
        Assert.Contains("serving-kube-apiserver", reason, StringComparison.Ordinal);
        Assert.DoesNotContain("server-ca,", reason, StringComparison.Ordinal);
        Assert.All(Certs().Check().Where(r => r.Issuer != "self"), r => Assert.Equal("ok", r.Status));
        Assert.Contains(_logs.Lines, l => l.StartsWith("[certificates] new certificates (", StringComparison.Ordinal) && l.EndsWith(") loaded by restarting kube-apiserver, kubelet", StringComparison.Ordinal));

        // The next pass, with what is now loaded: nothing due, nothing restarted.
        await renewer.PassAsync(CertificateRenewer.Fingerprint([certs.Directory]), [], CancellationToken.None);
        Assert.Single(_restarts);
    }

    [Fact]
    public async Task Pass_NothingDue_RestartsNothing()
    {
        var certs = Certs();
        certs.Ensure();
        _time.Advance(TimeSpan.FromDays(200)); // 165 days left

        await Renewer().PassAsync(CertificateRenewer.Fingerprint([certs.Directory]), [], CancellationToken.None);

        Assert.Empty(_restarts);
    }

    [Fact]
    public async Task Pass_RenewalFails_KeepsTheCurrentCertificatesAndWarns()
    {
        var certs = Certs();
        certs.Ensure();

        await Renewer(_ => throw new IOException("disk full")).PassAsync(CertificateRenewer.Fingerprint([certs.Directory]), [], CancellationToken.None);

        Assert.Empty(_restarts);
        Assert.Contains("[certificates] renewing certificates failed (disk full); the current ones stay in use, next try in 60 min", _logs.Lines);
    }

    [Fact]
    public async Task RunAsync_CertificateRotatedOnDiskWhileRunning_RestartsAfterAPoll()
    {
        // `coracle certificate rotate` while the server runs: the files change under the running components.
        var certs = Certs();
        certs.Ensure();
        using var stop = new CancellationTokenSource();
        var renewer = Renewer();
        var run = renewer.RunAsync(stop.Token);
        await WaitAsync(() => renewer.Ready, "the renewer's first fingerprint");

        certs.Ensure(new HashSet<string>(StringComparer.Ordinal) { "client-admin" });
        await WaitAsync(() =>
        {
            _time.Advance(CertificateRenewer.PollInterval);
            return !_restarts.IsEmpty;
        }, "a restart after the poll");

        Assert.Equal("certificates changed on disk: client-admin", Assert.Single(_restarts));
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run);
    }

    [Fact]
    public void Changed_AddedRemovedAndModifiedFiles_AreNamedWithoutExtension()
    {
        var before = new Dictionary<string, string> { ["/t/a.crt"] = "1", ["/t/b.crt"] = "2", ["/t/c.crt"] = "3" };
        var after = new Dictionary<string, string> { ["/t/a.crt"] = "1", ["/t/b.crt"] = "9", ["/t/d.crt"] = "4" };

        Assert.Equal(["b", "c", "d"], CertificateRenewer.Changed(before, after));
    }

    [Fact]
    public void RenewWindowFor_DefaultAndShortLifetimes_AsK3sAndAThird()
    {
        Assert.Equal(TimeSpan.FromDays(120), ClusterCertificates.RenewWindowFor(TimeSpan.FromDays(365)));
        Assert.Equal(TimeSpan.FromDays(10), ClusterCertificates.RenewWindowFor(TimeSpan.FromDays(30)));
    }

    private static async Task WaitAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for {what}");
            await Task.Delay(20);
        }
    }
}

/// <summary>An agent's certificates (issued by the server through the join API): what <c>certificate check</c> shows and what is due.</summary>
public sealed class AgentCertificatesTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>Writes NAME.crt valid from <paramref name="issuedDaysAgo"/> days ago for <paramref name="lifetimeDays"/> days.</summary>
    private void Issue(string name, int issuedDaysAgo, int lifetimeDays, bool ca = false)
    {
        var now = DateTimeOffset.UtcNow.AddDays(-issuedDaysAgo);
        using var issuer = CertificateFactory.CreateCa("test-ca", now, TimeSpan.FromDays(3650));
        using var cert = ca
            ? CertificateFactory.CreateCa(name, now, TimeSpan.FromDays(lifetimeDays))
            : CertificateFactory.CreateLeaf(issuer, CertSubject.Named(name), CertUsage.Client, now, TimeSpan.FromDays(lifetimeDays));
        File.WriteAllText(_dir.Combine(name + ".crt"), cert.CertificatePem);
    }

    [Fact]
    public void Check_LeafWithinAThirdOfItsLifetime_IsDueAndTheCasAreNot()
    {
        Issue("server-ca", 0, 30, ca: true);     // a CA close to expiry is reported, never renewed by the agent
        Issue("client-kubelet", 355, 365);       // 10 days left of 365: inside the 120-day window
        Issue("serving-kubelet", 0, 365);        // fresh
        Issue("client-kube-proxy", 15, 30);      // 15 days left of 30: outside a third of its lifetime

        var rows = AgentCertificates.Check(_dir.Path, DateTimeOffset.UtcNow);

        Assert.Equal(["agent/client-kube-proxy", "agent/client-kubelet", "agent/server-ca", "agent/serving-kubelet"], rows.Select(r => r.Name));
        Assert.Equal("ok", rows[0].Status);
        Assert.Equal(("client-ca", "due for renewal"), (rows[1].Issuer, rows[1].Status));
        Assert.Equal(("server", "ok"), (rows[2].Issuer, rows[2].Status));
        Assert.Equal(("server-ca", "ok"), (rows[3].Issuer, rows[3].Status));
        Assert.Equal(["agent/client-kubelet"], AgentCertificates.Due(_dir.Path, DateTimeOffset.UtcNow));
        Assert.Equal("expired", AgentCertificates.Check(_dir.Path, DateTimeOffset.UtcNow.AddDays(11)).Single(r => r.Name == "agent/client-kubelet").Status);
    }

    [Fact]
    public void Check_UnreadableFile_IsReportedAndDue()
    {
        File.WriteAllText(_dir.Combine("client-kube-proxy.crt"), "not a certificate");

        var row = Assert.Single(AgentCertificates.Check(_dir.Path, DateTimeOffset.UtcNow));

        Assert.StartsWith("unreadable: ", row.Status, StringComparison.Ordinal);
        Assert.Equal(["agent/client-kube-proxy"], AgentCertificates.Due(_dir.Path, DateTimeOffset.UtcNow));
    }

    [Fact]
    public void Check_NoAgentFolder_IsEmpty() => Assert.Empty(AgentCertificates.Check(_dir.Combine("absent"), DateTimeOffset.UtcNow));
}
