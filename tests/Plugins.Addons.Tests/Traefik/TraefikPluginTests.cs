using Coracle.Plugins.Addons.Tests.Support;
using Coracle.Plugins.Ingress.Traefik;
using YamlDotNet.RepresentationModel;
using static Coracle.Plugins.Addons.Tests.Support.Manifest;

namespace Coracle.Plugins.Addons.Tests.Traefik;

public sealed class TraefikPluginTests : IDisposable
{
    private static readonly string[] CrdKinds =
        ["IngressRoute", "IngressRouteTCP", "IngressRouteUDP", "Middleware", "MiddlewareTCP", "ServersTransport", "ServersTransportTCP", "TLSOption", "TLSStore", "TraefikService"];

    private readonly TempDir _temp = new("coracle-traefik");

    public void Dispose() => _temp.Dispose();

    private NodeSettings Node => FakePluginContext.Settings(_temp.Path);

    private string Render(Dictionary<string, string>? options = null, string registry = "")
    {
        var context = new FakePluginContext(Node with { SystemDefaultRegistry = registry }, options, plugin: typeof(TraefikPlugin));
        new TraefikPlugin().Configure(context);
        return Assert.Single(context.Manifests.Written, w => w.Key == "traefik.yaml").Value;
    }

    private static YamlNode Container(Manifest manifest) => At(manifest.Get("Deployment", "traefik"), "spec", "template", "spec", "containers", 0);

    private PluginConfigException Invalid(Dictionary<string, string> options) =>
        Assert.Throws<PluginConfigException>(() => new TraefikPlugin().ValidateOptions(Node, options, _temp.Path));

    [Fact]
    public void Export_IsTheDefaultIngressWithK3sImage()
    {
        var export = Export(typeof(TraefikPlugin));
        Assert.Equal(("traefik", ExtensionPoints.Ingress, true, true), (export.Name, export.ExtensionPoint, export.IsDefault, export.Implemented));
        Assert.Equal("docker.io/rancher/mirrored-library-traefik:3.3.6", DeclaredDefault(typeof(TraefikPlugin), "image"));
        Assert.Equal("1", DeclaredDefault(typeof(TraefikPlugin), "replicas"));
        Assert.Equal("", DeclaredDefault(typeof(TraefikPlugin), "override"));
    }

    [Fact]
    public void Configure_Defaults_WritesCrdsRbacIngressClassDeploymentAndService()
    {
        var manifest = Parse(Render());

        Assert.Equal(
            [.. Enumerable.Repeat("CustomResourceDefinition", 10), "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "IngressClass", "Deployment", "Service"],
            manifest.Kinds);
        foreach (var kind in new[] { "ServiceAccount", "Deployment", "Service" })
        {
            Assert.Equal("kube-system", Scalar(manifest.Documents.Single(d => Scalar(d, "kind") == kind), "metadata", "namespace"));
        }
    }

    [Fact]
    public void Configure_Crds_TheTraefikIoKindsWithStructuralSchemas()
    {
        var crds = Parse(Render()).Documents.Where(d => Scalar(d, "kind") == "CustomResourceDefinition").ToList();

        Assert.Equal(CrdKinds, crds.Select(c => Scalar(c, "spec", "names", "kind")));
        foreach (var crd in crds)
        {
            var kind = Scalar(crd, "spec", "names", "kind");
            Assert.Equal("apiextensions.k8s.io/v1", Scalar(crd, "apiVersion"));
            Assert.Equal($"{kind.ToLowerInvariant()}s.traefik.io", Scalar(crd, "metadata", "name"));
            Assert.Equal(("traefik.io", "Namespaced", kind + "List"), (Scalar(crd, "spec", "group"), Scalar(crd, "spec", "scope"), Scalar(crd, "spec", "names", "listKind")));
            Assert.Equal(("v1alpha1", "true", "true"), (Scalar(crd, "spec", "versions", 0, "name"), Scalar(crd, "spec", "versions", 0, "served"), Scalar(crd, "spec", "versions", 0, "storage")));
            var schema = At(crd, "spec", "versions", 0, "schema", "openAPIV3Schema");
            Assert.Equal("object", Scalar(schema, "type"));
            Assert.Equal("true", Scalar(schema, "properties", "spec", "x-kubernetes-preserve-unknown-fields"));
        }
    }

    [Fact]
    public void Configure_IngressClass_TraefikIsTheClusterDefault()
    {
        var ingressClass = Parse(Render()).Get("IngressClass", "traefik");

        Assert.Equal("networking.k8s.io/v1", Scalar(ingressClass, "apiVersion"));
        Assert.Equal("true", Scalar(ingressClass, "metadata", "annotations", "ingressclass.kubernetes.io/is-default-class"));
        Assert.Equal("traefik.io/ingress-controller", Scalar(ingressClass, "spec", "controller"));
    }

    [Fact]
    public void Configure_ClusterRole_ReadsWhatBothProvidersWatchAndIsBoundToTheServiceAccount()
    {
        var manifest = Parse(Render());
        var rules = ((YamlSequenceNode)At(manifest.Get("ClusterRole", "traefik-kube-system"), "rules")).Children;
        IReadOnlyList<string> Resources(string group) =>
            rules.Where(r => Scalars(r, "apiGroups").Contains(group)).SelectMany(r => Scalars(r, "resources")).ToList();

        Assert.Equal(CrdKinds.Select(k => k.ToLowerInvariant() + "s"), Resources("traefik.io"));
        Assert.Superset(new HashSet<string> { "services", "secrets", "endpoints", "nodes", "configmaps" }, Resources("").ToHashSet());
        Assert.Superset(new HashSet<string> { "ingresses", "ingressclasses", "ingresses/status" }, Resources("networking.k8s.io").ToHashSet());
        Assert.Contains("endpointslices", Resources("discovery.k8s.io"));
        var binding = manifest.Get("ClusterRoleBinding", "traefik-kube-system");
        Assert.Equal("traefik-kube-system", Scalar(binding, "roleRef", "name"));
        Assert.Equal(("ServiceAccount", "traefik", "kube-system"), (Scalar(binding, "subjects", 0, "kind"), Scalar(binding, "subjects", 0, "name"), Scalar(binding, "subjects", 0, "namespace")));
    }

    [Fact]
    public void Configure_Deployment_K3sImagePriorityTolerationsEntryPointsProvidersAndPing()
    {
        var manifest = Parse(Render());
        var deployment = manifest.Get("Deployment", "traefik");
        var pod = At(deployment, "spec", "template", "spec");
        var container = Container(manifest);

        Assert.Equal("1", Scalar(deployment, "spec", "replicas"));
        Assert.Equal(TraefikPlugin.DefaultImage, Scalar(container, "image"));
        Assert.Equal("IfNotPresent", Scalar(container, "imagePullPolicy"));
        Assert.Equal("system-cluster-critical", Scalar(pod, "priorityClassName"));
        Assert.Equal("traefik", Scalar(pod, "serviceAccountName"));
        Assert.Equal(
            ["CriticalAddonsOnly", "node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master"],
            ((YamlSequenceNode)At(pod, "tolerations")).Children.Select(t => Scalar(t, "key")));
        var args = Scalars(container, "args");
        Assert.Equal(TraefikManifest.Args, args);
        Assert.Contains("--entryPoints.web.address=:8000/tcp", args);
        Assert.Contains("--entryPoints.websecure.address=:8443/tcp", args);
        Assert.Contains("--providers.kubernetescrd", args);
        Assert.Contains("--providers.kubernetesingress", args);
        Assert.Contains("--ping=true", args);
        var ports = ((YamlSequenceNode)At(container, "ports")).Children.ToDictionary(p => Scalar(p, "name"), p => Scalar(p, "containerPort"));
        Assert.Equal(("8000", "8443", "8080"), (ports["web"], ports["websecure"], ports["traefik"]));
        Assert.Equal(("/ping", "8080"), (Scalar(container, "readinessProbe", "httpGet", "path"), Scalar(container, "readinessProbe", "httpGet", "port")));
        Assert.Equal("/ping", Scalar(container, "livenessProbe", "httpGet", "path"));
        var selector = (YamlMappingNode)At(deployment, "spec", "selector", "matchLabels");
        Assert.Equal(selector, At(deployment, "spec", "template", "metadata", "labels"));
    }

    [Fact]
    public void Configure_Service_LoadBalancerOn80And443ToTheEntryPoints()
    {
        var manifest = Parse(Render());
        var service = manifest.Get("Service", "traefik");

        Assert.Equal("LoadBalancer", Scalar(service, "spec", "type"));
        var ports = ((YamlSequenceNode)At(service, "spec", "ports")).Children.Select(p => (Scalar(p, "name"), Scalar(p, "port"), Scalar(p, "targetPort"))).ToList();
        Assert.Equal([("web", "80", "web"), ("websecure", "443", "websecure")], ports);
        Assert.Equal(At(manifest.Get("Deployment", "traefik"), "spec", "selector", "matchLabels"), At(service, "spec", "selector"));
    }

    [Fact]
    public void Configure_SystemDefaultRegistry_TakesTheDefaultImageFromIt()
    {
        var container = Container(Parse(Render(new() { ["image"] = TraefikPlugin.DefaultImage }, "registry.local:5000")));

        Assert.Equal("registry.local:5000/rancher/mirrored-library-traefik:3.3.6", Scalar(container, "image"));
    }

    [Fact]
    public void Configure_ImageOptionAndSystemDefaultRegistry_TheImageOptionWins()
    {
        var container = Container(Parse(Render(new() { ["image"] = "mirror.local/traefik:v3.4.0" }, "registry.local:5000")));

        Assert.Equal("mirror.local/traefik:v3.4.0", Scalar(container, "image"));
    }

    [Fact]
    public void Configure_Replicas_SetOnTheDeployment()
    {
        Assert.Equal("3", Scalar(Parse(Render(new() { ["replicas"] = "3" })).Get("Deployment", "traefik"), "spec", "replicas"));
    }

    [Fact]
    public void Configure_SameSettings_SameBytes()
    {
        var file = _temp.Write("override.yaml", "kind: Service\nmetadata: {name: traefik, annotations: {a: b}}\n");

        Assert.Equal(Render(), Render());
        Assert.Equal(Render(new() { ["override"] = file, ["replicas"] = "2" }), Render(new() { ["override"] = file, ["replicas"] = "2" }));
    }

    [Fact]
    public void Configure_OnAnAgent_WritesNothing()
    {
        var context = new FakePluginContext(Node with { Role = "agent" }, plugin: typeof(TraefikPlugin));

        new TraefikPlugin().Configure(context);

        Assert.Empty(context.Manifests.Written);
    }

    [Fact]
    public void Configure_Override_MergedByKindAndNameNewObjectsAdded()
    {
        var file = _temp.Write("override.yaml", """
            # Extra arguments, one more environment variable, a Service annotation, no dual stack, and a Middleware.
            apiVersion: apps/v1
            kind: Deployment
            metadata:
              name: traefik
              namespace: kube-system
            spec:
              template:
                spec:
                  containers:
                    - name: traefik
                      args: ["--log.level=DEBUG", "--accesslog=true"]
                      env:
                        - name: TZ
                          value: Europe/Berlin
            ---
            kind: Service
            metadata:
              name: traefik
              annotations:
                metallb.universe.tf/address-pool: edge
            spec:
              ipFamilyPolicy: null
            ---
            apiVersion: traefik.io/v1alpha1
            kind: Middleware
            metadata:
              name: redirect-https
              namespace: kube-system
            spec:
              redirectScheme: {scheme: https, permanent: true}
            """);
        var context = new FakePluginContext(Node, new Dictionary<string, string> { ["override"] = file }, plugin: typeof(TraefikPlugin));

        new TraefikPlugin().Configure(context);

        var manifest = Parse(Assert.Single(context.Manifests.Written).Value);
        Assert.Equal(17, manifest.Documents.Count);
        var container = Container(manifest);
        Assert.Equal(["--log.level=DEBUG", "--accesslog=true"], Scalars(container, "args"));
        Assert.Equal(TraefikPlugin.DefaultImage, Scalar(container, "image"));
        Assert.Equal(["POD_NAME", "POD_NAMESPACE", "TZ"], ((YamlSequenceNode)At(container, "env")).Children.Select(e => Scalar(e, "name")));
        Assert.Single(((YamlSequenceNode)At(manifest.Get("Deployment", "traefik"), "spec", "template", "spec", "containers")).Children);
        var service = manifest.Get("Service", "traefik");
        Assert.Equal("edge", Scalar(service, "metadata", "annotations", "metallb.universe.tf/address-pool"));
        Assert.False(((YamlMappingNode)At(service, "spec")).Children.ContainsKey(new YamlScalarNode("ipFamilyPolicy")));
        Assert.Equal("LoadBalancer", Scalar(service, "spec", "type"));
        Assert.Equal("https", Scalar(manifest.Get("Middleware", "redirect-https"), "spec", "redirectScheme", "scheme"));
        Assert.Contains(context.Lines, l => l.Contains($"override {file} merged: 2 object(s) changed, 1 added", StringComparison.Ordinal));
    }

    [Fact]
    public void Configure_OverrideFromTheDocs_ArgsReplacedAnnotationAddedIpFamilyPolicyRemoved()
    {
        // docs/traefik.md's example, as written there.
        var file = _temp.Write("traefik-override.yaml", """
            # /etc/coracle/traefik-override.yaml: access log and debug logging, a Service annotation, HTTP → HTTPS
            kind: Deployment
            metadata: {name: traefik}
            spec:
              template:
                spec:
                  containers:
                    - name: traefik
                      args:               # replaces the list: give all of them (the defaults are above)
                        - --entryPoints.metrics.address=:9100/tcp
                        - --entryPoints.traefik.address=:8080/tcp
                        - --entryPoints.web.address=:8000/tcp
                        - --entryPoints.websecure.address=:8443/tcp
                        - --entryPoints.web.http.redirections.entryPoint.to=websecure
                        - --entryPoints.websecure.http.tls=true
                        - --ping=true
                        - --providers.kubernetescrd
                        - --providers.kubernetesingress
                        - --providers.kubernetesingress.ingressendpoint.publishedservice=kube-system/traefik
                        - --accesslog=true
                        - --log.level=DEBUG
            ---
            kind: Service
            metadata:
              name: traefik
              annotations: {example.com/pool: edge}
            spec:
              ipFamilyPolicy: null        # removed: the API server's default applies
            """);

        var manifest = Parse(Render(new() { ["override"] = file }));

        var args = Scalars(Container(manifest), "args");
        Assert.Equal(12, args.Count);
        Assert.Contains("--entryPoints.web.http.redirections.entryPoint.to=websecure", args);
        Assert.Equal("--log.level=DEBUG", args[^1]);
        Assert.Equal("1", Scalar(manifest.Get("Deployment", "traefik"), "spec", "replicas"));
        var service = manifest.Get("Service", "traefik");
        Assert.Equal("edge", Scalar(service, "metadata", "annotations", "example.com/pool"));
        Assert.False(((YamlMappingNode)At(service, "spec")).Children.ContainsKey(new YamlScalarNode("ipFamilyPolicy")));
        Assert.Equal(16, manifest.Documents.Count);
    }

    [Fact]
    public void Configure_OverrideNamingAnotherNamespace_IsANewObject()
    {
        var file = _temp.Write("override.yaml", "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: traefik, namespace: edge}\n");

        var manifest = Parse(Render(new() { ["override"] = file }));

        Assert.Equal(["kube-system", "edge"], manifest.Documents.Where(d => Scalar(d, "kind") == "ServiceAccount").Select(d => Scalar(d, "metadata", "namespace")));
    }

    [Theory]
    [InlineData("-1")]
    [InlineData("many")]
    [InlineData("101")]
    public void ValidateOptions_BadReplicas_OneLineErrorWithTheRange(string replicas)
    {
        var ex = Invalid(new() { ["replicas"] = replicas });

        Assert.Equal("replicas", ex.Key);
        Assert.Equal($"'{replicas}' is not a number of pods from 0 to 100; give one, for example 1 (0 keeps Traefik's objects but runs no pod)", ex.Message);
    }

    [Theory]
    [InlineData("")]
    [InlineData("rancher/traefik 3.3")]
    public void ValidateOptions_BadImage_OneLineErrorWithAnExample(string image)
    {
        var ex = Invalid(new() { ["image"] = image });

        Assert.Equal("image", ex.Key);
        Assert.Equal($"'{image}' is not an image reference; give REPOSITORY:TAG, for example docker.io/rancher/mirrored-library-traefik:3.3.6", ex.Message);
    }

    [Fact]
    public void ValidateOptions_RelativeOverridePath_SaysGiveTheFullPath()
    {
        var ex = Invalid(new() { ["override"] = "traefik-override.yaml" });

        Assert.Equal("override", ex.Key);
        Assert.Equal("'traefik-override.yaml' is not an absolute path; give the override file's full path, for example /etc/coracle/traefik-override.yaml", ex.Message);
    }

    [Fact]
    public void ValidateOptions_MissingOverrideFile_NamesTheFile()
    {
        var path = _temp.Combine("absent.yaml");

        var ex = Invalid(new() { ["override"] = path });

        Assert.StartsWith($"{path} cannot be read: ", ex.Message, StringComparison.Ordinal);
        Assert.EndsWith("; create it, or set override to \"\" to render Traefik as shipped", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', ex.Message);
    }

    [Theory]
    [InlineData("kind: Service\nmetadata: {name: traefik\n", ":3:1: ", "did not find expected ',' or '}'; fix the YAML")]
    [InlineData("kind: Service\n  metadata: x\n", ":2:11: ", "; fix the YAML")]
    [InlineData("- kind: Service\n", ":1:1: ", "a document is not a mapping; each document is one Kubernetes object with kind and metadata.name")]
    [InlineData("metadata: {name: traefik}\n", ":1:1: ", "the document has no kind; name the object to change with kind and metadata.name, for example kind: Deployment, name: traefik")]
    [InlineData("---\nkind: Service\nmetadata: {name: traefik}\n---\nkind: Deployment\nspec: {replicas: 2}\n", ":5:1: ", "the Deployment has no metadata.name; name the object to change, for example traefik")]
    public void ValidateOptions_BadOverrideFile_FileLineColumnAndTheFix(string yaml, string position, string problem)
    {
        var file = _temp.Write("override.yaml", yaml);

        var ex = Invalid(new() { ["override"] = file });

        Assert.Equal("override", ex.Key);
        Assert.StartsWith(file + position, ex.Message, StringComparison.Ordinal);
        Assert.EndsWith(problem, ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', ex.Message);
    }

    [Fact]
    public void Configure_OverrideNewObjectWithoutApiVersion_SaysAddItOrFixTheName()
    {
        var file = _temp.Write("override.yaml", "kind: Deploymnet\nmetadata: {name: traefik}\nspec: {replicas: 2}\n");
        var context = new FakePluginContext(Node, new Dictionary<string, string> { ["override"] = file }, plugin: typeof(TraefikPlugin));

        var ex = Assert.Throws<PluginConfigException>(() => new TraefikPlugin().Configure(context));

        Assert.Equal("override", ex.Key);
        Assert.Equal($"{file}:1:1: Deploymnet traefik is not one of Traefik's objects, and a new object needs an apiVersion; add it, or fix kind and metadata.name to name a rendered object", ex.Message);
        Assert.Empty(context.Manifests.Written);
        Assert.Equal(ex.Message, Invalid(new() { ["override"] = file }).Message);
    }
}
