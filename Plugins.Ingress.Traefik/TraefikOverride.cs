using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Coracle.Plugins.Ingress.Traefik;

/// <summary>
/// The operator's override file (<c>[plugins.traefik] override</c>), Coracle's answer to K3s's HelmChartConfig: YAML
/// documents merged over the rendered objects they name by kind and <c>metadata.name</c> (and <c>metadata.namespace</c>
/// when given). Mappings merge key by key; a <c>null</c> value removes the key; a list whose items all carry a
/// <c>name</c> (containers, ports, env, volumes, volumeMounts) merges item by item by that name, new names appended; any
/// other list is replaced. A document that names no rendered object is added as a new object (it then needs its
/// <c>apiVersion</c>).
/// </summary>
internal sealed class TraefikOverride
{
    private TraefikOverride(string path, IReadOnlyList<YamlMappingNode> documents)
    {
        Path = path;
        Documents = documents;
    }

    /// <summary>The file it was read from.</summary>
    public string Path { get; }

    /// <summary>Its documents, each a mapping with a kind and a name.</summary>
    public IReadOnlyList<YamlMappingNode> Documents { get; }

    /// <summary>Reads and checks <paramref name="path"/>; a problem is a <see cref="PluginConfigException"/> naming the file and the fix.</summary>
    public static TraefikOverride Read(string path)
    {
        if (!System.IO.Path.IsPathRooted(path))
        {
            throw Bad($"'{path}' is not an absolute path; give the override file's full path, for example /etc/coracle/traefik-override.yaml");
        }

        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw Bad($"{path} cannot be read: {ex.Message}; create it, or set override to \"\" to render Traefik as shipped");
        }

        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(text));
        }
        catch (YamlException ex)
        {
            throw Bad($"{path}:{ex.Start.Line}:{ex.Start.Column}: {FirstLine(ex.InnerException?.Message ?? ex.Message).TrimEnd('.')}; fix the YAML");
        }

        var documents = new List<YamlMappingNode>();
        foreach (var document in stream.Documents)
        {
            var root = document.RootNode;
            if (IsNull(root))
            {
                continue;
            }

            var at = $"{path}:{root.Start.Line}:{root.Start.Column}";
            if (root is not YamlMappingNode mapping)
            {
                throw Bad($"{at}: a document is not a mapping; each document is one Kubernetes object with kind and metadata.name");
            }

            if (ScalarAt(mapping, "kind") is not { Length: > 0 })
            {
                throw Bad($"{at}: the document has no kind; name the object to change with kind and metadata.name, for example kind: Deployment, name: traefik");
            }

            if (ScalarAt(mapping, "metadata", "name") is not { Length: > 0 })
            {
                throw Bad($"{at}: the {ScalarAt(mapping, "kind")} has no metadata.name; name the object to change, for example traefik");
            }

            documents.Add(mapping);
        }

        return new TraefikOverride(path, documents);
    }

    /// <summary>
    /// <paramref name="rendered"/> (the plugin's own YAML) with every document merged in, as YAML; the number of rendered
    /// objects changed and of objects added. The same input gives the same bytes.
    /// </summary>
    public (string Yaml, int Merged, int Added) Apply(string rendered)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(rendered));
        var objects = stream.Documents.Select(d => (YamlMappingNode)d.RootNode).ToList();
        int merged = 0, added = 0;
        foreach (var patch in Documents)
        {
            var target = objects.FirstOrDefault(o => SameObject(o, patch));
            if (target is not null)
            {
                Merge(target, patch);
                merged++;
                continue;
            }

            if (ScalarAt(patch, "apiVersion") is not { Length: > 0 })
            {
                throw Bad($"{Path}:{patch.Start.Line}:{patch.Start.Column}: {ScalarAt(patch, "kind")} {ScalarAt(patch, "metadata", "name")} is not one of Traefik's objects, and a new object needs an apiVersion; add it, or fix kind and metadata.name to name a rendered object");
            }

            objects.Add(patch);
            added++;
        }

        var output = new YamlStream(objects.Select(o => new YamlDocument(o)));
        using var writer = new StringWriter { NewLine = "\n" };
        output.Save(writer, assignAnchors: false);
        return (writer.ToString(), merged, added);
    }

    private static bool SameObject(YamlMappingNode rendered, YamlMappingNode patch) =>
        ScalarAt(rendered, "kind") == ScalarAt(patch, "kind")
        && ScalarAt(rendered, "metadata", "name") == ScalarAt(patch, "metadata", "name")
        && (ScalarAt(patch, "metadata", "namespace") is not { } ns || ns == (ScalarAt(rendered, "metadata", "namespace") ?? ""));

    /// <summary>Merges <paramref name="patch"/> into <paramref name="target"/> (see the class).</summary>
    internal static void Merge(YamlMappingNode target, YamlMappingNode patch)
    {
        foreach (var (key, value) in patch.Children)
        {
            if (IsNull(value))
            {
                target.Children.Remove(key);
            }
            else if (target.Children.TryGetValue(key, out var existing) && existing is YamlMappingNode into && value is YamlMappingNode from)
            {
                Merge(into, from);
            }
            else if (value is YamlMappingNode fresh && existing is not YamlMappingNode)
            {
                // A new mapping (or one replacing a scalar or list) keeps none of the patch's nulls.
                var mapping = new YamlMappingNode();
                Merge(mapping, fresh);
                target.Children[key] = mapping;
            }
            else if (target.Children.TryGetValue(key, out existing) && existing is YamlSequenceNode list && value is YamlSequenceNode items
                && Named(list) && Named(items))
            {
                foreach (var item in items.Children.Cast<YamlMappingNode>())
                {
                    var name = ScalarAt(item, "name");
                    if (list.Children.Cast<YamlMappingNode>().FirstOrDefault(i => ScalarAt(i, "name") == name) is { } same)
                    {
                        Merge(same, item);
                    }
                    else
                    {
                        list.Children.Add(item);
                    }
                }
            }
            else
            {
                target.Children[key] = value;
            }
        }
    }

    /// <summary>A non-empty list of mappings that each have a scalar <c>name</c>.</summary>
    private static bool Named(YamlSequenceNode list) =>
        list.Children.Count > 0 && list.Children.All(i => i is YamlMappingNode m && ScalarAt(m, "name") is not null);

    private static bool IsNull(YamlNode node) =>
        node is YamlScalarNode { Style: ScalarStyle.Plain or ScalarStyle.Any } scalar && scalar.Value is null or "" or "~" or "null" or "Null" or "NULL";

    private static string? ScalarAt(YamlMappingNode node, params string[] path)
    {
        YamlNode current = node;
        foreach (var key in path)
        {
            if (current is not YamlMappingNode mapping || !mapping.Children.TryGetValue(new YamlScalarNode(key), out var next))
            {
                return null;
            }

            current = next;
        }

        return (current as YamlScalarNode)?.Value;
    }

    private static string FirstLine(string text) => text.Split('\n', 2)[0].Trim();

    private static PluginConfigException Bad(string message) => new("override", message);
}
