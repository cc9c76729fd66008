using System.Text.Json;

namespace Coracle.Core.Tunnel;

/// <summary>Null-tolerant reads of Kubernetes objects as JSON: a missing or mistyped field is null, never an exception.</summary>
internal static class KubeJson
{
    /// <summary>The element at <paramref name="path"/>, or null when a step is missing or not an object.</summary>
    public static JsonElement? Element(JsonElement element, params string[] path)
    {
        foreach (var step in path)
        {
            if (element.ValueKind != JsonValueKind.Object || !element.TryGetProperty(step, out element))
            {
                return null;
            }
        }

        return element;
    }

    public static string? String(JsonElement element, params string[] path) =>
        Element(element, path) is { ValueKind: JsonValueKind.String } value ? value.GetString() : null;

    public static int? Int(JsonElement element, params string[] path) =>
        Element(element, path) is { ValueKind: JsonValueKind.Number } value && value.TryGetInt32(out var number) ? number : null;

    /// <summary>The items of the array at <paramref name="path"/>; empty when there is none.</summary>
    public static IEnumerable<JsonElement> Array(JsonElement element, params string[] path) =>
        Element(element, path) is { ValueKind: JsonValueKind.Array } array ? array.EnumerateArray() : [];
}
