using System.Text.Json.Serialization;

namespace Coracle.Core.Status;

/// <summary>What <c>coracle status</c> receives from a running node.</summary>
internal sealed record NodeStatus(
    string Role,
    string NodeName,
    string Version,
    int Pid,
    DateTimeOffset StartedAt,
    IReadOnlyList<ComponentView> Components,
    IReadOnlyList<PluginView> Plugins);

internal sealed record ComponentView(string Name, string Kind, string State, int? Pid, int Restarts, DateTimeOffset Since, string Detail);

internal sealed record PluginView(string Name, string Point, string Version, string Architectures, bool Selected, string Why, string Folder);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.KebabCaseLower, WriteIndented = false)]
[JsonSerializable(typeof(NodeStatus))]
internal sealed partial class StatusJson : JsonSerializerContext;
