using System.Text.Json;
using Coracle.Core.Hosting;

namespace Coracle.Core.Node;

/// <summary>
/// What a running node tells the tools that work beside it (<c>coracle ctr</c>, <c>coracle killall</c>): the runtime
/// socket, the kubelet's cgroup root and root dir. Written to <c>DATA/run/node.json</c> at every start.
/// </summary>
internal sealed record NodeState
{
    public string Role { get; init; } = "";
    public string NodeName { get; init; } = "";
    public string? CriSocket { get; init; }
    public string CgroupDriver { get; init; } = "cgroupfs";
    public string CgroupRoot { get; init; } = "/";
    public string KubeletRootDir { get; init; } = "/var/lib/kubelet";
    public string ClusterCidr { get; init; } = "";

    public static string PathFor(string runDir) => System.IO.Path.Combine(runDir, "node.json");

    public void Save(string runDir) =>
        FileUtil.WriteAtomic(PathFor(runDir), JsonSerializer.Serialize(this, Options), UnixFileMode.UserRead | UnixFileMode.UserWrite);

    public static NodeState? Load(string runDir)
    {
        var file = PathFor(runDir);
        try
        {
            return File.Exists(file) ? JsonSerializer.Deserialize<NodeState>(File.ReadAllText(file), Options) : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static readonly JsonSerializerOptions Options = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase };
}
