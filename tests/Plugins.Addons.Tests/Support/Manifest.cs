using System.Reflection;
using Coracle.Plugins;
using YamlDotNet.RepresentationModel;

namespace Coracle.Plugins.Addons.Tests.Support;

/// <summary>A rendered manifest parsed back with YamlDotNet, and what the add-on plugins declare.</summary>
internal sealed class Manifest
{
    private Manifest(IReadOnlyList<YamlMappingNode> documents)
    {
        Documents = documents;
    }

    public IReadOnlyList<YamlMappingNode> Documents { get; }

    /// <summary>The kinds of the documents, in order.</summary>
    public IEnumerable<string> Kinds => Documents.Select(d => Scalar(d, "kind"));

    /// <summary>Parses every document of <paramref name="yaml"/>; each must be a mapping with a kind and a name.</summary>
    public static Manifest Parse(string yaml)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(yaml));
        var documents = stream.Documents.Select(d => Assert.IsType<YamlMappingNode>(d.RootNode)).ToList();
        foreach (var document in documents)
        {
            Assert.NotEmpty(Scalar(document, "kind"));
            Assert.NotEmpty(Scalar(document, "metadata", "name"));
        }

        return new Manifest(documents);
    }

    /// <summary>The one document of <paramref name="kind"/> named <paramref name="name"/>.</summary>
    public YamlMappingNode Get(string kind, string name) =>
        Documents.Single(d => Scalar(d, "kind") == kind && Scalar(d, "metadata", "name") == name);

    /// <summary>The node at <paramref name="path"/> (keys, or indexes into sequences).</summary>
    public static YamlNode At(YamlNode node, params object[] path)
    {
        foreach (var step in path)
        {
            node = step switch
            {
                int index => ((YamlSequenceNode)node).Children[index],
                string key => ((YamlMappingNode)node).Children[new YamlScalarNode(key)],
                _ => throw new ArgumentException($"bad path step {step}", nameof(path)),
            };
        }

        return node;
    }

    /// <summary>The scalar at <paramref name="path"/>.</summary>
    public static string Scalar(YamlNode node, params object[] path) => ((YamlScalarNode)At(node, path)).Value!;

    /// <summary>The scalars of the sequence at <paramref name="path"/>.</summary>
    public static IReadOnlyList<string> Scalars(YamlNode node, params object[] path) =>
        ((YamlSequenceNode)At(node, path)).Children.Select(c => ((YamlScalarNode)c).Value!).ToList();

    /// <summary>The default of the setting <paramref name="key"/> that <paramref name="plugin"/> declares.</summary>
    public static string DeclaredDefault(Type plugin, string key) =>
        plugin.GetCustomAttributes<PluginSettingAttribute>().Single(a => a.Key == key).Default;

    /// <summary>The plugin's export: its name and extension point.</summary>
    public static CoraclePluginAttribute Export(Type plugin) => plugin.GetCustomAttribute<CoraclePluginAttribute>()!;
}
