using Coracle.Core.Composition;
using Coracle.Core.Configuration;
using Coracle.Plugins;

namespace Coracle.Core.Tests.Composition;

/// <summary>Selection rules over metadata only; the real assemblies are covered by the integration tests.</summary>
public sealed class PluginSelectorTests
{
    private static PluginEntry Entry(string name, string point, string[]? arch = null, string[]? conflicts = null, string[]? schemes = null, bool isDefault = false) =>
        new(new PluginMetadata(name, point) { Architectures = arch ?? [], Conflicts = conflicts ?? [], EndpointSchemes = schemes ?? [], IsDefault = isDefault },
            $"/plugins/{name}", "1.0.0", PluginCatalog.Contracts[point], () => throw new InvalidOperationException("not constructed in selection"));

    private static readonly PluginEntry[] Full =
    [
        Entry("sqlite", ExtensionPoints.Datastore, schemes: ["", "sqlite"]),
        Entry("postgres", ExtensionPoints.Datastore, schemes: ["postgres", "postgresql"]),
        Entry("containerd", ExtensionPoints.ContainerRuntime, isDefault: true),
        Entry("nvidia", ExtensionPoints.RuntimeHandler, ["x64", "arm64"]),
        Support.FakeFlannel.Entry,
        Entry("calico", ExtensionPoints.Cni, conflicts: ["flannel"]),
        Entry("traefik", ExtensionPoints.Ingress, isDefault: true),
        Entry("servicelb", ExtensionPoints.LoadBalancer, isDefault: true),
    ];

    /// <summary>The shipped image's add-ons beside <see cref="Full"/>.</summary>
    private static readonly PluginEntry[] WithAddons =
    [
        .. Full,
        Entry("coredns", ExtensionPoints.Addon),
        Entry("local-storage", ExtensionPoints.Addon),
        Entry("metrics-server", ExtensionPoints.Addon),
    ];

    private static CoracleConfig Config(string role = "server", params (Setting Setting, string[] Values)[] flags)
    {
        var map = flags.ToDictionary(f => f.Setting, f => (IReadOnlyList<string>)f.Values);
        if (role == "agent")
        {
            map[Settings.Server] = ["https://10.0.0.1:9345"];
            map[Settings.Token] = ["K10abc::server:secret"];
        }

        return ConfigLoader.Load(role, null, new Dictionary<string, string> { ["HOME"] = "/tmp" }, map, [.. Support.FakeFlannel.Settings, .. Support.FakeAddon.Settings]);
    }

    private static string Fail(IReadOnlyList<PluginEntry> entries, CoracleConfig config, string arch = "x64", int exitCode = 2)
    {
        var ex = Assert.Throws<CompositionException>(() => PluginSelector.Select(entries, config, arch));
        Assert.Equal(exitCode, ex.ExitCode);
        return ex.Message;
    }

    private static IEnumerable<string> ActiveNames(PluginSelection selection) =>
        selection.Decisions.Where(d => d.Selected).Select(d => d.Entry.Name);

    [Fact]
    public void Select_Defaults_PicksOneOfEachAndAllHandlers()
    {
        var selection = PluginSelector.Select(Full, Config(), "x64");

        Assert.Equal(["sqlite", "containerd", "nvidia", "flannel", "traefik", "servicelb"], ActiveNames(selection));
    }

    [Fact]
    public void Select_DisableTraefik_DropsItAndSaysWhy()
    {
        var selection = PluginSelector.Select(Full, Config("server", (Settings.Disable, ["traefik"])), "x64");

        var traefik = selection.Decisions.Single(d => d.Entry.Name == "traefik");
        Assert.False(traefik.Selected);
        Assert.Equal("disabled by --disable", traefik.Why);
        Assert.Empty(selection.Active(ExtensionPoints.Ingress));
    }

    [Fact]
    public void Select_DatastoreEndpointScheme_PicksTheEngine()
    {
        var selection = PluginSelector.Select(Full, Config("server", (Settings.DatastoreEndpoint, ["postgres://u:p@db:5432/k8s"])), "x64");

        Assert.Equal("postgres", selection.Single(ExtensionPoints.Datastore)!.Name);
    }

    [Theory]
    [InlineData(new[] { "cluster-init" }, "cluster-init")]
    [InlineData(new[] { "server" }, "server (joins embedded etcd)")]
    public void Select_ClusterInitOrServerJoiningWithoutEndpoint_PicksTheEmbeddedEtcd(string[] how, string why)
    {
        IReadOnlyList<PluginEntry> entries = [.. Full, Entry("etcd", ExtensionPoints.Datastore, schemes: ["http", "https"])];
        var config = how[0] == "server"
            ? Config("server", (Settings.Server, ["https://10.0.0.1:9345"]), (Settings.Token, ["K10abc::server:secret"]))
            : Config("server", (Settings.ClusterInit, ["true"]));

        var selection = PluginSelector.Select(entries, config, "x64");

        Assert.Equal("etcd", selection.Single(ExtensionPoints.Datastore)!.Name);
        Assert.Equal(why, selection.Decisions.Single(d => d.Entry.Name == "etcd").Why);
    }

    [Fact]
    public void Select_ServerJoiningOnAnExternalDatastore_PicksThatDatastore()
    {
        IReadOnlyList<PluginEntry> entries = [.. Full, Entry("etcd", ExtensionPoints.Datastore, schemes: ["http", "https"])];
        var config = Config("server", (Settings.Server, ["https://10.0.0.1:9345"]), (Settings.Token, ["K10abc::server:secret"]),
            (Settings.DatastoreEndpoint, ["postgres://u:p@db:5432/k8s"]));

        Assert.Equal("postgres", PluginSelector.Select(entries, config, "x64").Single(ExtensionPoints.Datastore)!.Name);
    }

    [Fact]
    public void Select_UnknownDisableName_ListsInstalledPlugins()
    {
        Assert.Equal(
            "--disable: unknown plugin 'trafik'; installed plugins: calico, containerd, flannel, nvidia, postgres, servicelb, sqlite, traefik",
            Fail(Full, Config("server", (Settings.Disable, ["trafik"]))));
    }

    [Fact]
    public void Select_WellKnownNameNotInThisImage_CanStillBeDisabled()
    {
        var selection = PluginSelector.Select(Full, Config("server", (Settings.Disable, ["metrics-server"])), "x64");

        Assert.Contains("traefik", ActiveNames(selection));
    }

    [Fact]
    public void Select_TwoCnis_IsAnErrorWithTheFix()
    {
        var twoCnis = Full.Where(e => e.Name != "calico").Append(Entry("weave", ExtensionPoints.Cni)).ToArray();

        Assert.Equal(
            "2 cni plugins are selected (flannel, weave) but at most one may be active; keep one: set plugins.cni to the one you want, or --disable the other",
            Fail(twoCnis, Config("server", (Settings.Enable, ["weave"]))));
    }

    [Fact]
    public void Select_CalicoEnabledBesideFlannel_ReportsTwoCnis()
    {
        Assert.Contains("2 cni plugins are selected (flannel, calico)", Fail(Full, Config("server", (Settings.Enable, ["calico"]))), StringComparison.Ordinal);
    }

    [Fact]
    public void Select_ConflictingPlugins_AreRejected()
    {
        var entries = Full.Append(Entry("kube-router", ExtensionPoints.Ingress, conflicts: ["flannel"])).Where(e => e.Name != "traefik").ToArray();

        Assert.Equal(
            "plugins 'kube-router' and 'flannel' conflict and cannot both be active; --disable one of them",
            Fail(entries, Config("server", (Settings.Ingress, ["kube-router"]))));
    }

    [Fact]
    public void Select_CalicoInsteadOfFlannel_Works()
    {
        var selection = PluginSelector.Select(Full, Config("server", (Settings.Cni, ["calico"])), "x64");

        Assert.Equal("calico", selection.Single(ExtensionPoints.Cni)!.Name);
        Assert.Equal("calico is the active cni", selection.Decisions.Single(d => d.Entry.Name == "flannel").Why);
    }

    [Fact]
    public void Select_NothingConfigured_TakesEachPointsDefaultAndSaysSo()
    {
        var selection = PluginSelector.Select(Full, Config("server"), "x64");

        Assert.Equal("flannel", selection.Single(ExtensionPoints.Cni)!.Name);
        Assert.Equal("the default cni", selection.Decisions.Single(d => d.Entry.Name == "flannel").Why);
        Assert.Equal("containerd", selection.Single(ExtensionPoints.ContainerRuntime)!.Name);
    }

    [Fact]
    public void Select_ImageWithoutTheDefault_LeavesThePointEmptyRatherThanPickingAnother()
    {
        var withoutFlannel = Full.Where(e => e.Name != "flannel").ToArray();

        var selection = PluginSelector.Select(withoutFlannel, Config("server"), "x64");

        Assert.Empty(selection.Active(ExtensionPoints.Cni));
        Assert.Equal("not selected", selection.Decisions.Single(d => d.Entry.Name == "calico").Why);
    }

    [Fact]
    public void Select_FlannelBackendNone_DisablesFlannel()
    {
        var selection = PluginSelector.Select(Full, Config("server", (Support.FakeFlannel.Backend, ["none"])), "x64");

        Assert.Empty(selection.Active(ExtensionPoints.Cni));
        Assert.Equal("--flannel-backend = none", selection.Decisions.Single(d => d.Entry.Name == "flannel").Why);
    }

    [Fact]
    public void Select_NoRuntimeInstalled_IsAMissingRequiredPoint()
    {
        var entries = Full.Where(e => e.Point != ExtensionPoints.ContainerRuntime).ToArray();

        Assert.Equal(
            "no container runtime plugin is installed or selected (plugins.runtime = the default); install a container runtime plugin into the plugins folder or re-enable it",
            Fail(entries, Config()));
    }

    [Fact]
    public void Select_DatastoreNotInImage_ListsInstalledDatastores()
    {
        Assert.Equal(
            "--datastore-endpoint: no installed datastore serves 'mysql://'; installed datastores: postgres (postgres://, postgresql://), sqlite (the default, sqlite://)",
            Fail(Full, Config("server", (Settings.DatastoreEndpoint, ["mysql://u:p@tcp(db:3306)/k8s"]))));
    }

    [Fact]
    public void Select_UnknownDatastoreScheme_NamesTheChoices()
    {
        Assert.Equal(
            "--datastore-endpoint: no installed datastore serves 'redis://'; installed datastores: postgres (postgres://, postgresql://), sqlite (the default, sqlite://)",
            Fail(Full, Config("server", (Settings.DatastoreEndpoint, ["redis://db"]))));
    }

    [Fact]
    public void Select_SeveralBadChoices_EveryOneReportedTogether()
    {
        var message = Fail(Full, Config("server", (Settings.Disable, ["bogus"]), (Settings.Cni, ["cilium"]), (Settings.DatastoreEndpoint, ["redis://db"])));

        Assert.Equal(
            [
                "--disable: unknown plugin 'bogus'; installed plugins: calico, containerd, flannel, nvidia, postgres, servicelb, sqlite, traefik",
                "--datastore-endpoint: no installed datastore serves 'redis://'; installed datastores: postgres (postgres://, postgresql://), sqlite (the default, sqlite://)",
                "--cni: unknown plugin 'cilium'; installed cni plugins: calico, flannel",
            ],
            message.Split(Environment.NewLine));
    }

    [Fact]
    public void Select_EndpointSchemeDeclaredByATestPlugin_PicksIt()
    {
        var entries = Full.Append(Entry("redis", ExtensionPoints.Datastore, schemes: ["redis"])).ToList();

        var selection = PluginSelector.Select(entries, Config("server", (Settings.DatastoreEndpoint, ["redis://db:6379"])), "x64");

        Assert.Equal("redis", selection.Single(ExtensionPoints.Datastore)!.Name);
    }

    [Fact]
    public void Select_PluginForAnotherArchitecture_IsRejected()
    {
        Assert.Equal(
            "plugin 'nvidia' is built for x64/arm64 but this node is riscv64; install the riscv64 image's plugin or --disable nvidia",
            Fail(Full, Config(), "riscv64"));
    }

    [Fact]
    public void Select_UnknownCni_ListsInstalledCnis()
    {
        Assert.Equal(
            "--cni: unknown plugin 'cilium'; installed cni plugins: calico, flannel",
            Fail(Full, Config("server", (Settings.Cni, ["cilium"]))));
    }

    [Fact]
    public void Select_Agent_HasNoServerOnlyPointsButTheLoadBalancerAndIngress()
    {
        var selection = PluginSelector.Select(Full, Config("agent"), "x64");

        // The service load balancer forwards and an in-process ingress serves on every node; the join tells the agent which
        // ones the server runs. No datastore, no add-on.
        Assert.Equal(["containerd", "nvidia", "flannel", "traefik", "servicelb"], ActiveNames(selection));
    }

    [Fact]
    public void Select_DefaultIngressNotInImage_LeavesThePointEmpty()
    {
        var entries = Full.Where(e => e.Name != "traefik").ToArray();

        var selection = PluginSelector.Select(entries, Config(), "arm64");

        Assert.Empty(selection.Active(ExtensionPoints.Ingress));
    }

    [Fact]
    public void Select_Addons_EveryInstalledOneIsActive()
    {
        var selection = PluginSelector.Select(WithAddons, Config(), "x64");

        Assert.Equal(["coredns", "local-storage", "metrics-server"], selection.Active(ExtensionPoints.Addon).Select(e => e.Name));
        Assert.Equal("add-ons are active when installed", selection.Decisions.Single(d => d.Entry.Name == "coredns").Why);
        Assert.Equal(["sqlite", "containerd", "nvidia", "flannel", "traefik", "servicelb", "coredns", "local-storage", "metrics-server"], ActiveNames(selection));
    }

    [Fact]
    public void Select_DisableAddon_DropsOnlyThatOneAndSaysWhy()
    {
        var selection = PluginSelector.Select(WithAddons, Config("server", (Settings.Disable, ["metrics-server,local-storage"])), "x64");

        Assert.Equal(["coredns"], selection.Active(ExtensionPoints.Addon).Select(e => e.Name));
        var metrics = selection.Decisions.Single(d => d.Entry.Name == "metrics-server");
        Assert.False(metrics.Selected);
        Assert.Equal("disabled by --disable", metrics.Why);
    }

    [Fact]
    public void Select_AddonsOnAnAgent_AreServerOnly()
    {
        var selection = PluginSelector.Select(WithAddons, Config("agent"), "x64");

        Assert.Empty(selection.Active(ExtensionPoints.Addon));
        Assert.Equal("server-only extension point", selection.Decisions.Single(d => d.Entry.Name == "coredns").Why);
    }

    [Fact]
    public void Select_DisableAddonNotInThisImage_IsAccepted()
    {
        var selection = PluginSelector.Select(Full, Config("server", (Settings.Disable, ["coredns", "local-storage", "metrics-server"])), "x64");

        Assert.Empty(selection.Active(ExtensionPoints.Addon));
    }

    [Fact]
    public void Select_AddonTurnedOffByItsOwnSetting_IsOffWithTheSetting()
    {
        var selection = PluginSelector.Select([.. Full, Support.FakeAddon.Entry], Config("server", (Support.FakeAddon.Mode, ["off"])), "x64");

        Assert.Empty(selection.Active(ExtensionPoints.Addon));
        Assert.Equal("--fake-addon-mode = off", selection.Decisions.Single(d => d.Entry.Name == "fake-addon").Why);
    }

    [Fact]
    public void Declared_AddonSettings_AreServerFlags()
    {
        Assert.True(Support.FakeAddon.Mode.ServerOnly);
    }
}
