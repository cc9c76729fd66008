using Coracle.Plugins.Datastore.Etcd.Tests.Support;

namespace Coracle.Plugins.Datastore.Etcd.Tests;

/// <summary>The plugin's settings: one-line errors (the host exits 2 on PluginConfigException), the embedded command line, external endpoints.</summary>
public sealed class SettingsTests
{
    private static readonly NodeSettings Embedded = EtcdTest.Node("/srv/x", "n1", "10.1.2.3");

    [Theory]
    [InlineData("client-port", "70000", "client-port", "client-port '70000' is not a TCP port; give a number from 1 to 65535 (default 2379)")]
    [InlineData("peer-port", "2379", "client-port", "client-port 2379, peer-port 2379 and metrics-port 2381 must differ; give each its own port")]
    [InlineData("cafile", "/ca.pem", "cafile", "cafile is for an external etcd (--datastore-endpoint https://...); the embedded etcd (--cluster-init) uses the cluster's certificates; remove it")]
    [InlineData("listen", "x", "listen", "unknown option 'listen' in [plugins.etcd]; known options: client-port, peer-port, metrics-port, cafile, certfile, keyfile")]
    public void ValidateOptions_BadValue_ThrowsOneLineConfigError(string key, string value, string expectedKey, string expected)
    {
        var e = Assert.Throws<PluginConfigException>(() => new EtcdPlugin().ValidateOptions(Embedded, new Dictionary<string, string> { [key] = value }, "/srv/x/data/plugins/etcd"));
        Assert.Equal(expectedKey, e.Key);
        Assert.Equal(expected, e.Message);
    }

    [Theory]
    [InlineData("https://u:secret@db:2379", "'***@db:2379' is not an etcd endpoint; give https://HOST:PORT[,https://HOST:PORT...] (comma-separated, no path)")]
    [InlineData("https://db:2379/registry", "'https://db:2379/registry' is not an etcd endpoint; give https://HOST:PORT[,https://HOST:PORT...] (comma-separated, no path)")]
    public void ValidateOptions_BadExternalEndpoint_ThrowsWithoutCredentials(string endpoint, string expected)
    {
        var e = Assert.Throws<PluginConfigException>(() => new EtcdPlugin().ValidateOptions(EtcdTest.Node("/srv/x", "n1", endpoint: endpoint), new Dictionary<string, string>(), ""));
        Assert.Equal("datastore-endpoint", e.Key);
        Assert.Equal(expected, e.Message);
    }

    [Fact]
    public void ValidateOptions_ExternalWithTwoOfThreeFiles_ThrowsOneLine()
    {
        var e = Assert.Throws<PluginConfigException>(() => new EtcdPlugin().ValidateOptions(
            EtcdTest.Node("/srv/x", "n1", endpoint: "https://db:2379"), new Dictionary<string, string> { ["cafile"] = "/ca", ["certfile"] = "/c" }, ""));
        Assert.Equal("keyfile", e.Key);
        Assert.StartsWith("cafile, certfile and keyfile (--datastore-cafile, --datastore-certfile, --datastore-keyfile) go together", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Configure_ExternalEndpoints_NoProcessOnlyAReadinessGate()
    {
        using var temp = new TempDir("etcdh");
        var node = EtcdTest.Node(temp.Path, "n1", endpoint: "https://10.0.0.1:2379, https://db2");
        var context = new FakePluginContextWithCertificates(node, new Dictionary<string, string> { ["cafile"] = "/e/ca.pem", ["certfile"] = "/e/c.pem", ["keyfile"] = "/e/k.pem" });
        var endpoint = new EtcdPlugin().Configure(context);
        Assert.Equal(["https://10.0.0.1:2379", "https://db2:2379"], endpoint.Servers);
        Assert.Equal(new TlsFiles("/e/c.pem", "/e/k.pem", "/e/ca.pem"), endpoint.Tls);
        Assert.IsType<InProcessComponent>(Assert.Single(context.Supervisor.Components));
    }

    [Fact]
    public void Arguments_JoiningMember_ExistingClusterWithMutualTlsEverywhere()
    {
        var layout = EtcdLayout.Build(Embedded, new Dictionary<string, string>());
        var args = layout.Arguments(new Dictionary<string, string> { ["initial-cluster"] = "n0=https://10.1.2.2:2380,n1=https://10.1.2.3:2380" }, forceNewCluster: false);
        Assert.Contains("--initial-cluster=n0=https://10.1.2.2:2380,n1=https://10.1.2.3:2380", args);
        Assert.Contains("--initial-cluster-state=existing", args);
        Assert.Contains("--listen-client-urls=https://127.0.0.1:2379,https://10.1.2.3:2379", args);
        Assert.Contains("--listen-peer-urls=https://10.1.2.3:2380", args);
        Assert.Contains("--listen-metrics-urls=http://127.0.0.1:2381", args);
        Assert.Contains("--client-cert-auth=true", args);
        Assert.Contains("--peer-client-cert-auth=true", args);
        Assert.Contains("--peer-trusted-ca-file=/srv/x/data/server/tls/etcd-peer-ca.crt", args);
        Assert.Contains("--data-dir=/srv/x/data/server/db/etcd", args);
        Assert.DoesNotContain("--force-new-cluster", args);
        Assert.Equal(["https://10.1.2.3:2380"], new EtcdPlugin().PeerUrls(Embedded, new Dictionary<string, string>()));
    }

    /// <summary>The recording context with a certificate folder that has none (the external etcd uses the given files).</summary>
    private sealed class FakePluginContextWithCertificates(NodeSettings node, IReadOnlyDictionary<string, string> options) : IPluginContext
    {
        private readonly FakePluginContext _inner = new(node, options, plugin: typeof(EtcdPlugin));

        public RecordingSupervisor Supervisor => _inner.Supervisor;

        public NodeSettings Node => _inner.Node;

        public IReadOnlyDictionary<string, string> Options => _inner.Options;

        public string PluginDataDir => _inner.PluginDataDir;

        public IReadOnlyDictionary<string, string> Folders => _inner.Folders;

        public Microsoft.Extensions.Logging.ILogger Logger => _inner.Logger;

        public Microsoft.Extensions.Logging.ILoggerFactory LoggerFactory => _inner.LoggerFactory;

        ISupervisor IPluginContext.Supervisor => _inner.Supervisor;

        public IManifestSink Manifests => _inner.Manifests;

        public INodeCertificates Certificates { get; } = new Core.Hosting.NodeCertificates("/nonexistent/tls");
    }
}
