using Coracle.Core.Node;

namespace Coracle.Core.Tests.Node;

/// <summary><c>coracle ctr</c>'s arguments (moved here from the containerd plugin, whose copy of the rule is gone).</summary>
public sealed class NodeToolsTests
{
    [Fact]
    public void CtrArguments_PlainCommand_AddsAddressAndK8sNamespace()
    {
        Assert.Equal(
            ["--address", "/run/coracle/containerd/containerd.sock", "--namespace", "k8s.io", "images", "ls"],
            NodeTools.CtrArguments("/run/coracle/containerd/containerd.sock", ["images", "ls"], null));
    }

    [Fact]
    public void CtrArguments_UserNamespace_Kept()
    {
        Assert.Equal(
            ["--address", "/s", "-n", "default", "containers", "ls"],
            NodeTools.CtrArguments("/s", ["-n", "default", "containers", "ls"], null));
    }

    [Fact]
    public void CtrArguments_UserAddressAndNamespaceFlags_NothingAdded()
    {
        Assert.Equal(
            ["-a", "/other.sock", "--namespace=x", "version"],
            NodeTools.CtrArguments("/s", ["-a", "/other.sock", "--namespace=x", "version"], null));
    }

    [Fact]
    public void CtrArguments_NamespaceFromEnvironment_NotOverridden()
    {
        Assert.Equal(["--address", "/s", "tasks", "ls"], NodeTools.CtrArguments("/s", ["tasks", "ls"], "moby"));
    }

    [Fact]
    public void CtrArguments_FlagAfterSubcommand_NotTakenAsGlobal()
    {
        Assert.Equal(
            ["--address", "/s", "--namespace", "k8s.io", "images", "ls", "-n", "x"],
            NodeTools.CtrArguments("/s", ["images", "ls", "-n", "x"], null));
    }
}
