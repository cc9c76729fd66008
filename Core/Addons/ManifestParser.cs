using System.Text.Json;
using System.Text.Json.Nodes;
using YamlDotNet.Core;

namespace Coracle.Core.Addons;

/// <summary>A manifest file that cannot be read into objects; the message starts with <c>FILE:LINE:COLUMN</c>.</summary>
internal sealed class ManifestException(string message) : Exception(message);

/// <summary>
/// Reads a manifest file into the objects it declares: every document of a YAML file (<c>.yaml</c>, <c>.yml</c>), or the
/// one JSON value of a <c>.json</c> file; a <c>kind: List</c> (or any <c>…List</c> with <c>items</c>) is replaced by its
/// items. Empty documents are ignored. Each object needs <c>apiVersion</c>, <c>kind</c> and <c>metadata.name</c>.
/// </summary>
internal static class ManifestParser
{
    /// <summary>Parses <paramref name="text"/>; <paramref name="file"/> (the path in the manifests folder) names it in errors.</summary>
    public static IReadOnlyList<ManifestObject> Parse(string text, string file) =>
        file.EndsWith(".json", StringComparison.Ordinal) ? ParseJson(text, file) : ParseYaml(text, file);

    public static IReadOnlyList<ManifestObject> ParseYaml(string text, string file)
    {
        IReadOnlyList<YamlJson.Document> documents;
        try
        {
            documents = YamlJson.Read(text);
        }
        catch (YamlException ex)
        {
            throw new ManifestException($"{file}:{ex.Start.Line}:{ex.Start.Column}: {YamlReason(ex)}");
        }

        var objects = new List<ManifestObject>();
        var errors = new List<string>();
        foreach (var document in documents)
        {
            if (document.Root is null)
            {
                continue;
            }

            string Where(JsonNode node)
            {
                var (line, column) = document.PositionOf(node);
                return $"{file}:{line}:{column}";
            }

            Collect(document.Root, Where(document.Root), Where, objects, errors);
        }

        return errors.Count == 0 ? objects : throw new ManifestException(string.Join("; ", errors));
    }

    public static IReadOnlyList<ManifestObject> ParseJson(string text, string file)
    {
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(text, documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        }
        catch (JsonException ex)
        {
            var reason = ex.Message;
            var cut = reason.IndexOf(" LineNumber:", StringComparison.Ordinal);
            throw new ManifestException($"{file}:{(ex.LineNumber ?? 0) + 1}:{(ex.BytePositionInLine ?? 0) + 1}: {(cut > 0 ? reason[..cut] : reason)}");
        }
        catch (ArgumentException ex)
        {
            // A duplicate property name.
            throw new ManifestException($"{file}: {ex.Message}");
        }

        if (root is null)
        {
            return [];
        }

        var objects = new List<ManifestObject>();
        var errors = new List<string>();
        Collect(root, file, null, objects, errors);
        return errors.Count == 0 ? objects : throw new ManifestException(string.Join("; ", errors));
    }

    /// <summary>One object, or a list's items (recursively), with <c>apiVersion</c>, <c>kind</c> and a name checked.</summary>
    private static void Collect(JsonNode node, string where, Func<JsonNode, string>? positionOf, List<ManifestObject> objects, List<string> errors)
    {
        if (node is not JsonObject json)
        {
            errors.Add($"{where}: expected a Kubernetes object (a mapping with apiVersion and kind), found {Describe(node)}");
            return;
        }

        var kind = ObjectRef.Text(json["kind"]);
        var apiVersion = ObjectRef.Text(json["apiVersion"]);
        if (kind is null || apiVersion is null)
        {
            errors.Add($"{where}: {(kind is null ? "kind" : "apiVersion")} is missing{(kind is null && apiVersion is null ? " (and apiVersion)" : "")}");
            return;
        }

        if (kind == "List" || (kind.EndsWith("List", StringComparison.Ordinal) && json["items"] is JsonArray))
        {
            if (json["items"] is not (JsonArray or null))
            {
                errors.Add($"{where}: {kind}: items must be a list");
                return;
            }

            var index = 0;
            foreach (var item in json["items"] as JsonArray ?? [])
            {
                var itemWhere = item is not null && positionOf is not null ? positionOf(item) : $"{where}: items[{index}]";
                if (item is null)
                {
                    errors.Add($"{itemWhere}: items[{index}] is empty");
                }
                else
                {
                    Collect(item, itemWhere, positionOf, objects, errors);
                }

                index++;
            }

            return;
        }

        if (json["metadata"] is not (JsonObject or null))
        {
            errors.Add($"{where}: {kind}: metadata must be a mapping");
            return;
        }

        if (ObjectRef.Text(json["metadata"]?["name"]) is null)
        {
            errors.Add($"{where}: {kind}: metadata.name is missing (an applied object needs a name; generateName cannot be applied)");
            return;
        }

        if (json["metadata"]?["namespace"] is { } ns && ns.GetValueKind() != JsonValueKind.String)
        {
            errors.Add($"{where}: {kind}: metadata.namespace must be a string");
            return;
        }

        objects.Add(new ManifestObject(json, where));
    }

    private static string Describe(JsonNode node) => node switch
    {
        JsonArray => "a list",
        JsonValue value => value.GetValueKind() switch
        {
            JsonValueKind.String => $"the string \"{Shorten(value.GetValue<string>())}\"",
            var other => $"a {other.ToString().ToLowerInvariant()}",
        },
        _ => "something else",
    };

    private static string Shorten(string text) => text.Length > 40 ? text[..40] + "…" : text;

    /// <summary>YamlDotNet's message without its <c>(Line: …) - (Line: …): </c> prefix (the position is given separately).</summary>
    private static string YamlReason(YamlException ex)
    {
        var message = ex.Message;
        var cut = message.IndexOf("): ", StringComparison.Ordinal);
        return message.StartsWith('(') && cut > 0 ? message[(cut + 3)..] : message;
    }
}
