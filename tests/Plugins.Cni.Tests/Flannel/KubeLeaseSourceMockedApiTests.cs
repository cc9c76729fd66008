using System.Net;
using System.Runtime.CompilerServices;
using Coracle.Plugins.Cni.Flannel;
using Microsoft.Extensions.Logging.Abstractions;
using Moq;
using Xunit;

namespace Coracle.Plugins.Cni.Tests.Flannel;

/// <summary>
/// The Kubernetes lease source against a mocked kube-apiserver seam (<c>INodeClient</c>): no API server can run here yet
/// (the Kubernetes binaries and cluster identity are being built), so Moq stands in, and the names say so.
/// </summary>
public sealed class KubeLeaseSourceMockedApiTests
{
    private static readonly LocalAttributes Local = new(IPAddress.Parse("192.168.1.5"), "vxlan", "02:aa:bb:cc:dd:01");

    private static NodeInfo Annotated(string name, string cidr, string ip, string mac) =>
        new(name, cidr, FlannelAnnotations.For(new LocalAttributes(IPAddress.Parse(ip), "vxlan", mac)));

    [Fact]
    public async Task AcquireAsync_MockedApiPodCidrAssignedOnSecondRead_PublishesAnnotationsAndReturnsIt()
    {
        var api = new Mock<INodeClient>(MockBehavior.Strict);
        api.SetupSequence(c => c.GetNodeAsync("n1", It.IsAny<CancellationToken>()))
            .ReturnsAsync(new NodeInfo("n1", null, new Dictionary<string, string>()))
            .ReturnsAsync(new NodeInfo("n1", "10.42.3.0/24", new Dictionary<string, string>()));
        IReadOnlyDictionary<string, string>? published = null;
        api.Setup(c => c.PatchAnnotationsAsync("n1", It.IsAny<IReadOnlyDictionary<string, string>>(), It.IsAny<CancellationToken>()))
            .Callback<string, IReadOnlyDictionary<string, string>, CancellationToken>((_, a, _) => published = a)
            .Returns(Task.CompletedTask);

        var source = new KubeLeaseSource(api.Object, "n1", NullLogger.Instance, retry: TimeSpan.FromMilliseconds(1));
        var subnet = await source.AcquireAsync(Local, CancellationToken.None);

        Assert.Equal("10.42.3.0/24", subnet.ToString());
        Assert.Equal("{\"VNI\":1,\"VtepMAC\":\"02:aa:bb:cc:dd:01\"}", published!["flannel.alpha.coreos.com/backend-data"]);
        Assert.Equal("192.168.1.5", published["flannel.alpha.coreos.com/public-ip"]);
        api.Verify(c => c.PatchAnnotationsAsync("n1", It.IsAny<IReadOnlyDictionary<string, string>>(), It.IsAny<CancellationToken>()), Times.Once);
    }

    [Fact]
    public async Task WatchPeersAsync_MockedApiListThenDelete_AddsPeersSkipsSelfAndRemovesDeletedNode()
    {
        var api = new Mock<INodeClient>(MockBehavior.Strict);
        api.Setup(c => c.ListNodesAsync(It.IsAny<CancellationToken>())).ReturnsAsync(((IReadOnlyList<NodeInfo>)
        [
            Annotated("n1", "10.42.1.0/24", "192.168.1.5", "02:aa:bb:cc:dd:01"),
            Annotated("n2", "10.42.2.0/24", "192.168.1.6", "02:aa:bb:cc:dd:02"),
            new NodeInfo("n3", null, new Dictionary<string, string>()),
        ], "100"));
        api.Setup(c => c.WatchNodesAsync("100", It.IsAny<CancellationToken>())).Returns(Changes(
            new NodeChange(false, Annotated("n3", "10.42.3.0/24", "192.168.1.7", "02:aa:bb:cc:dd:03")),
            new NodeChange(true, Annotated("n2", "10.42.2.0/24", "192.168.1.6", "02:aa:bb:cc:dd:02"))));

        var source = new KubeLeaseSource(api.Object, "n1", NullLogger.Instance, retry: TimeSpan.FromMilliseconds(1));
        var events = new List<PeerEvent>();
        using var cts = new CancellationTokenSource();
        await foreach (var e in source.WatchPeersAsync(cts.Token))
        {
            events.Add(e);
            if (events.Count == 3)
            {
                break;
            }
        }

        Assert.Equal((PeerEventKind.Upsert, "n2"), (events[0].Kind, events[0].Peer.Name));
        Assert.Equal((PeerEventKind.Upsert, "n3"), (events[1].Kind, events[1].Peer.Name));
        Assert.Equal("10.42.3.0/24", events[1].Peer.Subnet.ToString());
        Assert.Equal((PeerEventKind.Remove, "n2"), (events[2].Kind, events[2].Peer.Name));
    }

    private static async IAsyncEnumerable<NodeChange> Changes(params NodeChange[] changes)
    {
        foreach (var change in changes)
        {
            await Task.Yield();
            yield return change;
        }
    }
}
