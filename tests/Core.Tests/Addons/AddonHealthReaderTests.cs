using System.Text.Json.Nodes;
using Coracle.Core.Addons;

namespace Coracle.Core.Tests.Addons;

/// <summary>Reading pods and selectors for the add-on status (the parts that need no kube-apiserver).</summary>
public sealed class AddonHealthReaderTests
{
    private static JsonObject Pod(string json) => (JsonObject)JsonNode.Parse(json)!;

    [Fact]
    public void Read_ImagePullBackOff_ImageFromTheContainerStatus()
    {
        var facts = AddonHealthReader.Read(Pod("""
            {"spec": {"containers": [{"name": "coredns", "image": "spec/image:1"}]},
             "status": {"conditions": [{"type": "Ready", "status": "False"}],
                        "containerStatuses": [{"name": "coredns", "image": "docker.io/rancher/mirrored-coredns-coredns:1.10.1",
                                               "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}}}]}}
            """));

        Assert.False(facts.Ready);
        Assert.Equal(["docker.io/rancher/mirrored-coredns-coredns:1.10.1"], facts.MissingImages);
        Assert.Null(facts.Waiting);
    }

    [Fact]
    public void Read_InitContainerErrImagePullWithoutStatusImage_ImageFromTheSpec()
    {
        var facts = AddonHealthReader.Read(Pod("""
            {"spec": {"initContainers": [{"name": "setup", "image": "busybox:1.36.1"}], "containers": [{"name": "main", "image": "main:1"}]},
             "status": {"initContainerStatuses": [{"name": "setup", "state": {"waiting": {"reason": "ErrImagePull"}}}],
                        "containerStatuses": [{"name": "main", "image": "main:1", "state": {"waiting": {"reason": "PodInitializing"}}}]}}
            """));

        Assert.Equal(["busybox:1.36.1"], facts.MissingImages);
        Assert.Null(facts.Waiting);
    }

    [Theory]
    [InlineData("ErrImagePull", "", true)]
    [InlineData("ImagePullBackOff", "", true)]
    [InlineData("ErrImageNeverPull", "Container image \"x\" is not present with pull policy of Never", true)]
    [InlineData("CreateContainerError", "failed to get image \"docker.io/x:1\": not found", true)]
    [InlineData("CrashLoopBackOff", "back-off 10s restarting failed container", false)]
    [InlineData("CreateContainerConfigError", "configmap \"x\" not found", false)]
    public void IsImageMissing_Reason_Expected(string reason, string message, bool expected)
    {
        Assert.Equal(expected, AddonHealthReader.IsImageMissing(reason, message));
    }

    [Fact]
    public void Read_ReadyPodAndCrashLoop_ReadyOrWaitingReason()
    {
        Assert.True(AddonHealthReader.Read(Pod("""{"status": {"conditions": [{"type": "Ready", "status": "True"}]}}""")).Ready);
        var crashing = AddonHealthReader.Read(Pod("""
            {"status": {"containerStatuses": [{"name": "m", "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s"}}}]}}
            """));
        Assert.Equal("CrashLoopBackOff: back-off 10s", crashing.Waiting);
        Assert.Empty(crashing.MissingImages);
    }

    [Fact]
    public void LabelSelector_LabelsAndExpressions_QueryText()
    {
        var selector = JsonNode.Parse("""
            {"matchLabels": {"k8s-app": "kube-dns"},
             "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}, {"key": "x", "operator": "NotIn", "values": ["c"]},
                                  {"key": "y", "operator": "Exists"}, {"key": "z", "operator": "DoesNotExist"}]}
            """);

        Assert.Equal("k8s-app=kube-dns,tier in (a,b),x notin (c),y,!z", AddonHealthReader.LabelSelector(selector));
        Assert.Null(AddonHealthReader.LabelSelector(null));
        Assert.Null(AddonHealthReader.LabelSelector(JsonNode.Parse("{}")));
    }

    [Fact]
    public void Workloads_AppsKindsOnly()
    {
        var workloads = AddonHealthReader.Workloads(
        [
            new ObjectRef("apps/v1", "Deployment", "kube-system", "coredns"),
            new ObjectRef("apps/v1", "DaemonSet", "kube-system", "svclb"),
            new ObjectRef("v1", "Service", "kube-system", "kube-dns"),
            new ObjectRef("apps/v1", "ReplicaSet", "kube-system", "rs"),
        ]).Select(w => $"{w.Resource}/{w.Ref.Name}");

        Assert.Equal(["deployments/coredns", "daemonsets/svclb"], workloads);
    }
}
