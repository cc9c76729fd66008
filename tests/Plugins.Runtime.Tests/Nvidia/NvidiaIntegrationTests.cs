using Coracle.Plugins;
using Coracle.Plugins.Runtime.Containerd;
using Coracle.Plugins.Runtime.Containerd.Cri;
using Coracle.Plugins.Runtime.Nvidia;
using Coracle.Plugins.Runtime.Tests.Containerd;
using Coracle.Plugins.Runtime.Tests.Support;
using Xunit;

namespace Coracle.Plugins.Runtime.Tests.Nvidia;

/// <summary>No GPU here: a fake toolkit whose nvidia-container-runtime records its arguments and execs runc.</summary>
[Collection(IntegrationCollection.Name)]
[Trait("Category", "Integration")]
public sealed class NvidiaIntegrationTests
{
    [Fact]
    public async Task RunPodSandbox_NvidiaHandler_WrapperInvokedByContainerd()
    {
        var dir = new TempDir("nvi");
        var runc = BinaryLocator.Find("runc", null, null, Environment.GetEnvironmentVariable("PATH") + ":/usr/sbin:/sbin", out _)
            ?? throw new InvalidOperationException("runc not found: apt-get install -y runc");
        var record = dir.Combine("invocations.log");
        dir.WriteExecutable("fakeroot/usr/local/nvidia/toolkit/nvidia-container-runtime",
            $"#!/bin/sh\necho \"$@\" >> {record}\nexec {runc} \"$@\"\n");
        var discoveryContext = new FakePluginContext(FakePluginContext.Settings(dir.Path));
        var handlers = new NvidiaPlugin(dir.Combine("fakeroot"), pathVariable: null).Discover(discoveryContext);
        Assert.Equal(["nvidia"], handlers.Select(h => h.Name));

        await using var h = ContainerdHarness.Create(new RuntimeOptions { Handlers = handlers }, dir);
        Assert.Contains("runtimes.nvidia.options]\n  BinaryName = ", File.ReadAllText(dir.Combine("data/agent/etc/containerd/config.toml")), StringComparison.Ordinal);
        ContainerdIntegrationTests.WriteImages(h, broken: false);
        await h.StartAsync();
        await h.RunAirgapImportAsync();

        var (podId, _) = await ContainerdIntegrationTests.RunPodAsync(h, "gpu-pod", handler: "nvidia");

        var status = await h.Cri.Runtime.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = podId });
        Assert.Equal("nvidia", status.Status.RuntimeHandler);
        var invocations = File.ReadAllLines(record);
        Assert.Contains(invocations, l => l.Contains(" create ", StringComparison.Ordinal) && l.Contains(podId, StringComparison.Ordinal));
        await h.Cri.Runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = podId });
        await h.Cri.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = podId });
    }
}
