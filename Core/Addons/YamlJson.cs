using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace Coracle.Core.Addons;

/// <summary>
/// Reads a YAML stream into JSON documents the way kubectl does (sigs.k8s.io/yaml over go-yaml v2): plain scalars
/// resolve as YAML 1.1 (<c>yes</c>/<c>no</c>/<c>on</c>/<c>off</c> are booleans, <c>0644</c> is octal, <c>~</c> is null),
/// quoted and block scalars stay strings; anchors, aliases and merge keys (<c>&lt;&lt;</c>) work; duplicate keys are an
/// error. Every mapping's start position is kept for error messages.
/// </summary>
internal sealed partial class YamlJson
{
    private const string StrTag = "tag:yaml.org,2002:str";
    private const string BinaryTag = "tag:yaml.org,2002:binary";
    private const string MergeKey = "<<";

    private readonly Dictionary<string, JsonNode?> _anchors = new(StringComparer.Ordinal);
    private readonly Dictionary<JsonNode, Mark> _positions = new(ReferenceEqualityComparer.Instance);

    private YamlJson()
    {
    }

    /// <summary>One document: its root (null for an empty document) and where it starts.</summary>
    public sealed record Document(JsonNode? Root, long Line, long Column, IReadOnlyDictionary<JsonNode, Mark> Positions)
    {
        /// <summary>Where <paramref name="node"/> starts, or the document's start when it was not recorded (an alias's copy).</summary>
        public (long Line, long Column) PositionOf(JsonNode node) =>
            Positions.TryGetValue(node, out var mark) ? (mark.Line, mark.Column) : (Line, Column);
    }

    /// <summary>Every document of <paramref name="text"/>. Throws <see cref="YamlException"/> with positions.</summary>
    public static IReadOnlyList<Document> Read(string text)
    {
        var parser = new Parser(new StringReader(text));
        parser.Consume<StreamStart>();
        var documents = new List<Document>();
        while (!parser.Accept<StreamEnd>(out _))
        {
            var start = parser.Consume<DocumentStart>();
            var reader = new YamlJson();
            var root = reader.ReadNode(parser);
            parser.Consume<DocumentEnd>();
            documents.Add(new Document(root, start.Start.Line, start.Start.Column, reader._positions));
        }

        return documents;
    }

    private JsonNode? ReadNode(IParser parser)
    {
        if (parser.TryConsume<AnchorAlias>(out var alias))
        {
            return _anchors.TryGetValue(alias.Value.Value, out var target)
                ? target?.DeepClone()
                : throw new YamlException(alias.Start, alias.End, $"unknown alias *{alias.Value.Value}");
        }

        JsonNode? node;
        NodeEvent started;
        if (parser.TryConsume<Scalar>(out var scalar))
        {
            started = scalar;
            node = Resolve(scalar);
        }
        else if (parser.TryConsume<SequenceStart>(out var sequenceStart))
        {
            started = sequenceStart;
            var array = new JsonArray();
            while (!parser.TryConsume<SequenceEnd>(out _))
            {
                array.Add(ReadNode(parser));
            }

            node = array;
        }
        else if (parser.TryConsume<MappingStart>(out var mappingStart))
        {
            started = mappingStart;
            node = ReadMapping(parser);
        }
        else
        {
            var unexpected = parser.Current!;
            throw new YamlException(unexpected.Start, unexpected.End, $"unexpected {unexpected.GetType().Name}");
        }

        if (node is not null)
        {
            _positions[node] = started.Start;
        }

        if (!started.Anchor.IsEmpty)
        {
            _anchors[started.Anchor.Value] = node;
        }

        return node;
    }

    private JsonObject ReadMapping(IParser parser)
    {
        var json = new JsonObject();
        var merged = new List<JsonObject>();
        while (!parser.TryConsume<MappingEnd>(out _))
        {
            var keyEvent = parser.Current!;
            if (keyEvent is not Scalar keyScalar)
            {
                throw new YamlException(keyEvent.Start, keyEvent.End, "a mapping key must be a scalar");
            }

            parser.MoveNext();
            var key = keyScalar.Value;
            if (key == MergeKey && keyScalar.Style == ScalarStyle.Plain)
            {
                var valueStart = parser.Current!.Start;
                switch (ReadNode(parser))
                {
                    case JsonObject source:
                        merged.Add(source);
                        break;
                    case JsonArray sources when sources.All(s => s is JsonObject):
                        merged.AddRange(sources.Select(s => (JsonObject)s!));
                        break;
                    default:
                        throw new YamlException(valueStart, valueStart, "a merge key (<<) needs a mapping or a list of mappings");
                }

                continue;
            }

            if (json.ContainsKey(key))
            {
                throw new YamlException(keyScalar.Start, keyScalar.End, $"duplicate key \"{key}\"");
            }

            json[key] = ReadNode(parser);
        }

        // Merged keys never override the mapping's own, and the first merged mapping wins (YAML's merge key rules).
        foreach (var source in merged)
        {
            foreach (var (key, value) in source)
            {
                if (!json.ContainsKey(key))
                {
                    json[key] = value?.DeepClone();
                }
            }
        }

        return json;
    }

    /// <summary>A scalar's JSON value: strings unless plain (or tagged otherwise), then go-yaml v2's resolution.</summary>
    internal static JsonNode? Resolve(Scalar scalar)
    {
        var tag = scalar.Tag.IsEmpty ? "" : scalar.Tag.Value;
        if (tag is StrTag or BinaryTag or "!" || (tag.Length == 0 && scalar.Style != ScalarStyle.Plain))
        {
            return JsonValue.Create(scalar.Value);
        }

        try
        {
            return ResolvePlain(scalar.Value);
        }
        catch (FormatException ex)
        {
            throw new YamlException(scalar.Start, scalar.End, ex.Message);
        }
    }

    /// <summary>go-yaml v2's <c>resolve</c> for an untagged plain scalar, as kubectl reads manifests.</summary>
    internal static JsonNode? ResolvePlain(string value)
    {
        switch (value)
        {
            case "" or "~" or "null" or "Null" or "NULL":
                return null;
            case "y" or "Y" or "yes" or "Yes" or "YES" or "on" or "On" or "ON" or "true" or "True" or "TRUE":
                return JsonValue.Create(true);
            case "n" or "N" or "no" or "No" or "NO" or "off" or "Off" or "OFF" or "false" or "False" or "FALSE":
                return JsonValue.Create(false);
            case ".inf" or ".Inf" or ".INF" or "+.inf" or "+.Inf" or "+.INF" or "-.inf" or "-.Inf" or "-.INF" or ".nan" or ".NaN" or ".NAN":
                throw new FormatException($"{value} cannot be represented in JSON; quote it to make it a string");
        }

        var first = value[0];
        if (first == '.')
        {
            return double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var fraction) && FloatPattern().IsMatch(value)
                ? JsonValue.Create(fraction)
                : JsonValue.Create(value);
        }

        if (!char.IsAsciiDigit(first) && first is not ('+' or '-'))
        {
            return JsonValue.Create(value);
        }

        var plain = value.Replace("_", "", StringComparison.Ordinal);
        if (ParseInteger(plain) is { } integer)
        {
            return integer;
        }

        if (FloatPattern().IsMatch(plain) && double.TryParse(plain, NumberStyles.Float, CultureInfo.InvariantCulture, out var number))
        {
            return JsonValue.Create(number);
        }

        return JsonValue.Create(value);
    }

    /// <summary>Go's <c>strconv.ParseInt(s, 0, 64)</c> then <c>ParseUint</c>: sign, then 0x, 0o, 0b or a leading 0 (octal).</summary>
    private static JsonNode? ParseInteger(string text)
    {
        var negative = text.StartsWith('-');
        var body = text.StartsWith('-') || text.StartsWith('+') ? text[1..] : text;
        var (digits, radix) = body switch
        {
            _ when body.StartsWith("0x", StringComparison.OrdinalIgnoreCase) => (body[2..], 16),
            _ when body.StartsWith("0o", StringComparison.OrdinalIgnoreCase) => (body[2..], 8),
            _ when body.StartsWith("0b", StringComparison.OrdinalIgnoreCase) => (body[2..], 2),
            _ when body.Length > 1 && body[0] == '0' => (body[1..], 8),
            _ => (body, 10),
        };
        if (digits.Length == 0)
        {
            return null;
        }

        System.Numerics.BigInteger magnitude = 0;
        foreach (var c in digits)
        {
            var digit = c switch
            {
                >= '0' and <= '9' => c - '0',
                >= 'a' and <= 'f' => c - 'a' + 10,
                >= 'A' and <= 'F' => c - 'A' + 10,
                _ => int.MaxValue,
            };
            if (digit >= radix)
            {
                return null;
            }

            magnitude = (magnitude * radix) + digit;
        }

        var result = negative ? -magnitude : magnitude;
        if (result >= long.MinValue && result <= long.MaxValue)
        {
            return JsonValue.Create((long)result);
        }

        return !negative && result <= ulong.MaxValue ? JsonValue.Create((ulong)result) : null;
    }

    [GeneratedRegex(@"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")]
    private static partial Regex FloatPattern();
}
