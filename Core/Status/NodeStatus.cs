using System.Text.Json.Serialization;

namespace Coracle.Core.Status;

/// <summary>
/// What <c>coracle status</c> receives from a running node; <c>JoinedFrom</c> is the server a server joined (its
/// <c>--server</c>, kept in <c>DATA/server/joined.json</c>), null on a first server and on agents.
/// </summary>
internal sealed record NodeStatus(
    string Role,
    string NodeName,
    string Version,
    int Pid,
    DateTimeOffset StartedAt,
    IReadOnlyList<ComponentView> Components,
    IReadOnlyList<PluginView> Plugins,
    IReadOnlyList<AddonView>? Addons = null,
    string? JoinedFrom = null);

internal sealed record ComponentView(string Name, string Kind, string State, int? Pid, int Restarts, DateTimeOffset Since, string Detail);

/// <summary>
/// One add-on (a file of <c>DATA/server/manifests</c>, or an add-on plugin that is off) as the manifests controller last
/// saw it: state <c>applied</c>, <c>failed</c>, <c>skipped</c>, <c>disabled</c> or <c>pending</c>; the objects its Addon owns;
/// pods ready of pods wanted for its workloads (null without any); the images its pods cannot get; one line of detail.
/// </summary>
internal sealed record AddonView(
    string Name, string Source, string State, int Objects, int? PodsReady, int? PodsWanted, IReadOnlyList<string> MissingImages, string Detail);

internal sealed record PluginView(string Name, string Point, string Version, string Architectures, bool Selected, string Why, string Folder);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.KebabCaseLower, WriteIndented = false)]
[JsonSerializable(typeof(NodeStatus))]
internal sealed partial class StatusJson : JsonSerializerContext;
