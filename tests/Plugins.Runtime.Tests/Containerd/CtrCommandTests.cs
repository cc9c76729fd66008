using Coracle.Plugins.Runtime.Containerd;
using Xunit;

namespace Coracle.Plugins.Runtime.Tests.Containerd;

public sealed class CtrCommandTests
{
    [Fact]
    public void BuildArguments_PlainCommand_AddsAddressAndK8sNamespace()
    {
        Assert.Equal(
            ["--address", "/run/coracle/containerd/containerd.sock", "--namespace", "k8s.io", "images", "ls"],
            CtrCommand.BuildArguments("/run/coracle/containerd/containerd.sock", ["images", "ls"]));
    }

    [Fact]
    public void BuildArguments_UserNamespace_Kept()
    {
        Assert.Equal(
            ["--address", "/s", "-n", "default", "containers", "ls"],
            CtrCommand.BuildArguments("/s", ["-n", "default", "containers", "ls"]));
    }

    [Fact]
    public void BuildArguments_UserAddressAndNamespaceFlags_NothingAdded()
    {
        Assert.Equal(
            ["-a", "/other.sock", "--namespace=x", "version"],
            CtrCommand.BuildArguments("/s", ["-a", "/other.sock", "--namespace=x", "version"]));
    }

    [Fact]
    public void BuildArguments_NamespaceFromEnvironment_NotOverridden()
    {
        Assert.Equal(["--address", "/s", "tasks", "ls"], CtrCommand.BuildArguments("/s", ["tasks", "ls"], environmentNamespace: "moby"));
    }

    [Fact]
    public void BuildArguments_FlagAfterSubcommand_NotTakenAsGlobal()
    {
        Assert.Equal(
            ["--address", "/s", "--namespace", "k8s.io", "images", "ls", "-n", "x"],
            CtrCommand.BuildArguments("/s", ["images", "ls", "-n", "x"]));
    }
}
