using System.Text.Json;
using Coracle.Plugins.Addon.LocalStorage;
using Coracle.Plugins.Addons.Tests.Support;
using YamlDotNet.RepresentationModel;
using static Coracle.Plugins.Addons.Tests.Support.Manifest;

namespace Coracle.Plugins.Addons.Tests.LocalStorage;

public sealed class LocalStoragePluginTests : IDisposable
{
    private readonly TempDir _temp = new("coracle-storage");

    public void Dispose() => _temp.Dispose();

    private NodeSettings Node => FakePluginContext.Settings(_temp.Path);

    private string Render(Dictionary<string, string>? options = null, string registry = "")
    {
        var context = new FakePluginContext(Node with { SystemDefaultRegistry = registry }, options, plugin: typeof(LocalStoragePlugin));
        new LocalStoragePlugin().Configure(context);
        return Assert.Single(context.Manifests.Written, w => w.Key == "local-storage.yaml").Value;
    }

    private static string StoragePath(Manifest manifest)
    {
        var config = JsonDocument.Parse(Scalar(manifest.Get("ConfigMap", "local-path-config"), "data", "config.json"));
        var entry = Assert.Single(config.RootElement.GetProperty("nodePathMap").EnumerateArray());
        Assert.Equal("DEFAULT_PATH_FOR_NON_LISTED_NODES", entry.GetProperty("node").GetString());
        return Assert.Single(entry.GetProperty("paths").EnumerateArray()).GetString()!;
    }

    [Fact]
    public void Export_IsTheLocalStorageAddonWithK3sImagesAndFlag()
    {
        Assert.Equal("local-storage", Export(typeof(LocalStoragePlugin)).Name);
        Assert.Equal(ExtensionPoints.Addon, Export(typeof(LocalStoragePlugin)).ExtensionPoint);
        Assert.Equal("docker.io/rancher/local-path-provisioner:v0.0.24", DeclaredDefault(typeof(LocalStoragePlugin), "image"));
        Assert.Equal("docker.io/rancher/mirrored-library-busybox:1.36.1", DeclaredDefault(typeof(LocalStoragePlugin), "helper-image"));
        Assert.Equal("", DeclaredDefault(typeof(LocalStoragePlugin), "default-local-storage-path"));
        Assert.Equal("storage", Assert.Single(PluginFolderAttribute.Resolve(typeof(LocalStoragePlugin), "/var/lib/coracle")).Key);
        Assert.Equal("/var/lib/coracle/storage", PluginFolderAttribute.Resolve(typeof(LocalStoragePlugin), "/var/lib/coracle")["storage"]);
    }

    [Fact]
    public void Configure_Defaults_WritesK3sObjectsThatParse()
    {
        var manifest = Parse(Render());

        Assert.Equal(["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Deployment", "StorageClass", "ConfigMap"], manifest.Kinds);
        var binding = manifest.Get("ClusterRoleBinding", "local-path-provisioner-bind");
        Assert.Equal("local-path-provisioner-role", Scalar(binding, "roleRef", "name"));
        Assert.Equal("local-path-provisioner-service-account", Scalar(binding, "subjects", 0, "name"));
    }

    [Fact]
    public void Configure_StorageClass_IsTheDefaultLocalPathClass()
    {
        var storageClass = Parse(Render()).Get("StorageClass", "local-path");

        Assert.Equal("true", Scalar(storageClass, "metadata", "annotations", "storageclass.kubernetes.io/is-default-class"));
        Assert.Equal("rancher.io/local-path", Scalar(storageClass, "provisioner"));
        Assert.Equal("WaitForFirstConsumer", Scalar(storageClass, "volumeBindingMode"));
        Assert.Equal("Delete", Scalar(storageClass, "reclaimPolicy"));
    }

    [Fact]
    public void Configure_NoPathSet_KeepsVolumesInTheDataDirsStorageFolder()
    {
        Assert.Equal(Path.Combine(Node.DataDir, "storage"), StoragePath(Parse(Render())));
        Assert.True(Directory.Exists(Path.Combine(Node.DataDir, "storage")));
    }

    [Fact]
    public void Configure_PathOption_IsTheStoragePath()
    {
        Assert.Equal("/srv/volumes \"fast\"", StoragePath(Parse(Render(new() { ["default-local-storage-path"] = "/srv/volumes \"fast\"" }))));
    }

    [Fact]
    public void Configure_Deployment_StartsTheProvisionerWithItsConfig()
    {
        var deployment = Parse(Render()).Get("Deployment", "local-path-provisioner");
        var pod = At(deployment, "spec", "template", "spec");
        var container = At(pod, "containers", 0);

        Assert.Equal("kube-system", Scalar(deployment, "metadata", "namespace"));
        Assert.Equal(LocalStoragePlugin.DefaultImage, Scalar(container, "image"));
        Assert.Equal(["local-path-provisioner", "start", "--config", "/etc/config/config.json"], Scalars(container, "command"));
        Assert.Equal("/etc/config/", Scalar(container, "volumeMounts", 0, "mountPath"));
        Assert.Equal("local-path-config", Scalar(pod, "volumes", 0, "configMap", "name"));
        Assert.Equal("local-path-provisioner-service-account", Scalar(pod, "serviceAccountName"));
        Assert.Equal("metadata.namespace", Scalar(container, "env", 0, "valueFrom", "fieldRef", "fieldPath"));
    }

    [Fact]
    public void Configure_ConfigMap_CarriesTheScriptsAndTheHelperPod()
    {
        var data = At(Parse(Render()).Get("ConfigMap", "local-path-config"), "data");

        Assert.Equal("#!/bin/sh\nset -eu\nmkdir -m 0777 -p \"${VOL_DIR}\"\nchmod 700 \"${VOL_DIR}/..\"", Scalar(data, "setup"));
        Assert.Equal("#!/bin/sh\nset -eu\nrm -rf \"${VOL_DIR}\"", Scalar(data, "teardown"));
        var helper = Parse(Scalar(data, "helperPod.yaml")).Get("Pod", "helper-pod");
        Assert.Equal(LocalStoragePlugin.DefaultHelperImage, Scalar(helper, "spec", "containers", 0, "image"));
        Assert.Equal("IfNotPresent", Scalar(helper, "spec", "containers", 0, "imagePullPolicy"));
    }

    [Fact]
    public void Configure_ImageOptions_ReplaceBothImages()
    {
        var manifest = Parse(Render(new() { ["image"] = "mirror.local/lpp:v1", ["helper-image"] = "mirror.local/busybox:1" }));

        Assert.Equal("mirror.local/lpp:v1", Scalar(manifest.Get("Deployment", "local-path-provisioner"), "spec", "template", "spec", "containers", 0, "image"));
        var helper = Parse(Scalar(manifest.Get("ConfigMap", "local-path-config"), "data", "helperPod.yaml")).Documents[0];
        Assert.Equal("mirror.local/busybox:1", Scalar(helper, "spec", "containers", 0, "image"));
    }

    [Fact]
    public void Configure_SystemDefaultRegistry_TakesBothDefaultImagesFromIt()
    {
        var manifest = Parse(Render(registry: "registry.local:5000"));

        Assert.Equal("registry.local:5000/rancher/local-path-provisioner:v0.0.24",
            Scalar(manifest.Get("Deployment", "local-path-provisioner"), "spec", "template", "spec", "containers", 0, "image"));
        var helper = Parse(Scalar(manifest.Get("ConfigMap", "local-path-config"), "data", "helperPod.yaml")).Documents[0];
        Assert.Equal("registry.local:5000/rancher/mirrored-library-busybox:1.36.1", Scalar(helper, "spec", "containers", 0, "image"));
    }

    [Fact]
    public void Configure_HelperImageOptionAndSystemDefaultRegistry_TheOptionWinsTheOtherDefaultMoves()
    {
        var manifest = Parse(Render(new() { ["image"] = LocalStoragePlugin.DefaultImage, ["helper-image"] = "mirror.local/busybox:1" }, "registry.local:5000"));

        Assert.Equal("registry.local:5000/rancher/local-path-provisioner:v0.0.24",
            Scalar(manifest.Get("Deployment", "local-path-provisioner"), "spec", "template", "spec", "containers", 0, "image"));
        var helper = Parse(Scalar(manifest.Get("ConfigMap", "local-path-config"), "data", "helperPod.yaml")).Documents[0];
        Assert.Equal("mirror.local/busybox:1", Scalar(helper, "spec", "containers", 0, "image"));
    }

    [Fact]
    public void Configure_SameSettings_SameBytes()
    {
        Assert.Equal(Render(), Render());
    }

    [Fact]
    public void ValidateOptions_RelativePath_NamesTheKeyAndTheFix()
    {
        var ex = Assert.Throws<PluginConfigException>(() => new LocalStoragePlugin().ValidateOptions(Node, new Dictionary<string, string> { ["default-local-storage-path"] = "storage" }, _temp.Path));

        Assert.Equal("default-local-storage-path", ex.Key);
        Assert.Equal("'storage' is not an absolute path; give a folder like /var/lib/coracle/storage, or leave it empty for DATA/storage", ex.Message);
    }

    [Fact]
    public void ValidateOptions_EmptyHelperImage_NamesTheKey()
    {
        var ex = Assert.Throws<PluginConfigException>(() => new LocalStoragePlugin().ValidateOptions(Node, new Dictionary<string, string> { ["helper-image"] = "" }, _temp.Path));

        Assert.Equal("helper-image", ex.Key);
    }

    [Fact]
    public void Parse_Manifest_HasNoTabsOrTrailingSpaces()
    {
        var yaml = Render();

        Assert.DoesNotContain('\t', yaml);
        Assert.DoesNotContain(" \n", yaml, StringComparison.Ordinal);
        Assert.IsType<YamlMappingNode>(Parse(yaml).Documents[^1]);
    }
}
