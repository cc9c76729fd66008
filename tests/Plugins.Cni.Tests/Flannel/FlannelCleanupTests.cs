using Coracle.Plugins;
using Coracle.Plugins.Cni.Flannel;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;

namespace Coracle.Plugins.Cni.Tests.Flannel;

/// <summary>
/// The devices <c>coracle killall</c>'s flannel cleanup deletes, read from <c>ip -j -d link show</c> as a recording
/// command runner answers it (the real kernel side runs in the node tests).
/// </summary>
public sealed class FlannelCleanupTests : IDisposable
{
    private const string Links = """
        [
          {"ifindex":2,"ifname":"eth0","flags":["UP"],"mtu":1500},
          {"ifindex":3,"ifname":"cni0","mtu":1450,"linkinfo":{"info_kind":"bridge"}},
          {"ifindex":4,"ifname":"flannel.1","mtu":1450,"linkinfo":{"info_kind":"vxlan"}},
          {"ifindex":5,"ifname":"veth1a2b3c","master":"cni0","linkinfo":{"info_kind":"veth","info_slave_kind":"bridge"}},
          {"ifindex":6,"ifname":"vethd4e5f6","master":"cni0","linkinfo":{"info_kind":"veth","info_slave_kind":"bridge"}},
          {"ifindex":7,"ifname":"vethuser","master":"br-lan","linkinfo":{"info_kind":"veth","info_slave_kind":"bridge"}},
          {"ifindex":8,"ifname":"eth1","master":"cni0"},
          {"ifindex":9,"ifname":"flannel.dummy","linkinfo":{"info_kind":"dummy"}},
          {"ifindex":10,"ifname":"br-lan","linkinfo":{"info_kind":"bridge"}}
        ]
        """;

    private readonly TempDir _dir = new("flclean");

    public void Dispose() => _dir.Dispose();

    private sealed class RecordingRunner : ICommandRunner
    {
        public List<KernelCommand> Commands { get; } = [];

        public Task<CommandResult> RunAsync(KernelCommand command, CancellationToken cancellationToken)
        {
            Commands.Add(command);
            var output = command.ToString() switch
            {
                "ip -j -d link show" => Links,
                "ip -j -4 route show" => "[]",
                _ => "",
            };
            return Task.FromResult(new CommandResult(0, output, ""));
        }
    }

    [Fact]
    public async Task CleanupAsync_PodVethsOnTheBridge_DeletedBeforeFlannelsOwnDevicesAndNothingElse()
    {
        var runner = new RecordingRunner();
        var plugin = new FlannelPlugin(_dir.Combine("net"), null, _ => runner);

        await plugin.CleanupAsync(FakePluginContext.Settings(_dir.Path), new Dictionary<string, string>(), NullLogger.Instance, CancellationToken.None);

        var deleted = runner.Commands.Where(c => c.Arguments is ["link", "del", _]).Select(c => c.Arguments[2]).ToList();
        Assert.Equal(["veth1a2b3c", "vethd4e5f6", "cni0", "flannel.1"], deleted);
    }
}
