using Coracle.Plugins.Runtime.Containerd;
using Coracle.Plugins.Runtime.Containerd.Cri;
using Coracle.Plugins.Runtime.Tests.Support;
using Xunit;

namespace Coracle.Plugins.Runtime.Tests.Containerd;

/// <summary>Real containerd 1.6 + runc from Debian, started with the generated config. Needs root.</summary>
[Collection(IntegrationCollection.Name)]
[Trait("Category", "Integration")]
public sealed class ContainerdIntegrationTests
{
    private const string ZstImage = "docker.io/library/busybox:coracle-zst";

    [Fact]
    public async Task CriPod_AirgapImagesThenEchoContainer_LogHasHello()
    {
        await using var h = ContainerdHarness.Create();
        WriteImages(h, zst: true, pause: false);
        await h.StartAsync();

        var version = await h.Cri.Runtime.VersionAsync(new VersionRequest { Version = "v1" });
        Assert.Equal("containerd", version.RuntimeName);
        Assert.Equal("v1", version.RuntimeApiVersion);

        await h.RunAirgapImportAsync();
        // No pause image among the tarballs: the plugin builds its own from busybox-static and imports it by that name.
        Assert.Contains(h.Context.Lines, l => l.Contains($"sandbox image {ContainerdHarness.PauseImage} is not in containerd: importing Coracle's own pause image", StringComparison.Ordinal));
        Assert.Contains(h.Context.Lines, l => l.Contains($"sandbox image {ContainerdHarness.PauseImage} imported", StringComparison.Ordinal));
        Assert.Contains(h.Context.Lines, l => l.Contains("airgap images: imported test.tar.gz", StringComparison.Ordinal));
        Assert.Contains(h.Context.Lines, l => l.Contains("airgap images: imported zst.tar.zst", StringComparison.Ordinal));
        Assert.Contains(h.Context.Lines, l => l.StartsWith("Error airgap-images: airgap images: broken.tar.gz could not be imported and is skipped: ", StringComparison.Ordinal));
        var images = await h.Cri.Images.ListImagesAsync(new ListImagesRequest());
        var tags = images.Images.SelectMany(i => i.RepoTags).ToList();
        Assert.Contains(ContainerdHarness.PauseImage, tags);
        Assert.Contains(ContainerdHarness.TestImage, tags);
        Assert.Contains(ZstImage, tags);

        var (podId, podConfig) = await RunPodAsync(h, "echo-pod");
        var containerId = await CreateAndStartAsync(h, podId, podConfig, "hello", ["/bin/echo", "hello"]);
        await h.WaitUntilAsync(async ct =>
            (await h.Cri.Runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = containerId }, cancellationToken: ct)).Status.State
                == ContainerState.ContainerExited,
            "the echo container to exit");

        var status = await h.Cri.Runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = containerId });
        Assert.Equal(0, status.Status.ExitCode);
        var log = await File.ReadAllTextAsync(Path.Combine(podConfig.LogDirectory, "hello.log"));
        Assert.Matches(@"^\S+ stdout F hello\n$", log);

        await h.Cri.Runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = containerId });
        await h.Cri.Runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = podId });
        await h.Cri.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = podId });
        Assert.Empty((await h.Cri.Runtime.ListPodSandboxAsync(new ListPodSandboxRequest())).Items);
    }

    [Fact]
    public async Task KillContainerd_WhileContainerRuns_ContainerSurvivesRestart()
    {
        await using var h = ContainerdHarness.Create();
        WriteImages(h, broken: false);
        await h.StartAsync();
        await h.RunAirgapImportAsync();
        var (podId, podConfig) = await RunPodAsync(h, "sleep-pod");
        var containerId = await CreateAndStartAsync(h, podId, podConfig, "sleeper", ["/bin/sleep", "3600"]);
        Assert.Equal(ContainerState.ContainerRunning,
            (await h.Cri.Runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = containerId })).Status.State);

        await h.KillAsync();
        await h.StartAsync();

        var status = await h.Cri.Runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = containerId });
        Assert.Equal(ContainerState.ContainerRunning, status.Status.State);
        var pod = await h.Cri.Runtime.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = podId });
        Assert.Equal(PodSandboxState.SandboxReady, pod.Status.State);

        await h.Cri.Runtime.StopContainerAsync(new StopContainerRequest { ContainerId = containerId, Timeout = 1 });
        await h.Cri.Runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = containerId });
        await h.Cri.Runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = podId });
        await h.Cri.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = podId });
    }

    [Fact]
    public async Task Cleanup_ContainerdGoneContainerRunning_KillsThisNodesShimAndContainer()
    {
        await using var h = ContainerdHarness.Create();
        WriteImages(h, broken: false);
        await h.StartAsync();
        await h.RunAirgapImportAsync();
        var (podId, podConfig) = await RunPodAsync(h, "doomed-pod");
        await CreateAndStartAsync(h, podId, podConfig, "sleeper", ["/bin/sleep", "3600"]);
        // As coracle killall finds it after stopping the node: containerd gone, the shim and the container still running.
        await h.KillAsync();
        var before = new ContainerdCleanup("/proc").Find(h.Endpoint.CriSocket);
        var processes = ProcessTable.Read("/proc");
        Assert.NotEmpty(before.Shims);
        Assert.Contains(before.Containers, pid => processes.TryGetValue(pid, out var p) && p.CommandLine == "/bin/sleep 3600");

        await new ContainerdPlugin().CleanupAsync(h.Context.Node, h.Context.Options, h.Context.Logger, CancellationToken.None);

        Assert.All(before.Shims.Concat(before.Containers), pid => Assert.False(ProcessTable.Exists("/proc", pid), $"pid {pid} survived"));
        Assert.Empty(new ContainerdCleanup("/proc").Find(h.Endpoint.CriSocket).Shims);
        Assert.Contains(h.Context.Lines, l => l.Contains($"killing {before.Shims.Count} containerd shims of {h.Endpoint.CriSocket} and {before.Containers.Count} container processes", StringComparison.Ordinal));
    }

    [Fact]
    public async Task AirgapImport_SecondPass_SkipsAlreadyImportedContent()
    {
        await using var h = ContainerdHarness.Create();
        WriteImages(h, broken: false);
        await h.StartAsync();
        await h.RunAirgapImportAsync();
        var ctr = Coracle.Plugins.Runtime.Containerd.CtrCommand.FindCtr(
            Coracle.Plugins.Runtime.Containerd.ContainerdSettings.FromOptions(h.Context.Node, h.Context.Options, h.Context.PluginDataDir))!;
        var importer = new Coracle.Plugins.Runtime.Containerd.AirgapImporter(h.ImagesDir,
            Path.Combine(h.Context.PluginDataDir, "airgap-imported.json"), ctr, h.Endpoint.CriSocket, "overlayfs", "/usr/bin/zstd",
            h.Context.LoggerFactory.CreateLogger("second-pass"));

        var result = await importer.ImportAllAsync(CancellationToken.None);

        Assert.Empty(result.Imported);
        Assert.Equal(["pause.tar", "test.tar.gz"], result.AlreadyImported);
    }

    internal static void WriteImages(ContainerdHarness h, bool broken = true, bool zst = false, bool pause = true)
    {
        Directory.CreateDirectory(h.ImagesDir);
        if (pause)
        {
            ImageBuilder.WriteArchive(Path.Combine(h.ImagesDir, "pause.tar"), ContainerdHarness.PauseImage, ["/bin/sleep"], ["2147483647"]);
        }

        ImageBuilder.WriteArchive(Path.Combine(h.ImagesDir, "test.tar.gz"), ContainerdHarness.TestImage, [], ["/bin/sh"]);
        if (zst)
        {
            var plain = Path.Combine(h.Dir.Path, "zst.tar");
            ImageBuilder.WriteArchive(plain, ZstImage, [], ["/bin/sh"]);
            using var zstd = System.Diagnostics.Process.Start("zstd", ["-q", "-o", Path.Combine(h.ImagesDir, "zst.tar.zst"), plain])
                ?? throw new InvalidOperationException("zstd missing: apt-get install -y zstd");
            zstd.WaitForExit();
            Assert.Equal(0, zstd.ExitCode);
        }

        if (broken)
        {
            File.WriteAllBytes(Path.Combine(h.ImagesDir, "broken.tar.gz"), [0x1f, 0x8b, 0x08, 0x00, 0xde, 0xad, 0xbe, 0xef, 0x00, 0x01, 0x02]);
        }
    }

    internal static async Task<(string Id, PodSandboxConfig Config)> RunPodAsync(ContainerdHarness h, string name, string handler = "")
    {
        var uid = Guid.NewGuid().ToString();
        var config = new PodSandboxConfig
        {
            Metadata = new PodSandboxMetadata { Name = name, Uid = uid, Namespace = "default" },
            // No hostname: a host-network pod shares the node's UTS namespace (kubelet sends none either).
            LogDirectory = h.Dir.Combine("pods", uid),
            Linux = new LinuxPodSandboxConfig
            {
                SecurityContext = new LinuxSandboxSecurityContext
                {
                    NamespaceOptions = new NamespaceOption { Network = NamespaceMode.Node },
                },
            },
        };
        Directory.CreateDirectory(config.LogDirectory);
        var response = await h.Cri.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = config, RuntimeHandler = handler });
        h.Track(response.PodSandboxId);
        return (response.PodSandboxId, config);
    }

    private static async Task<string> CreateAndStartAsync(ContainerdHarness h, string podId, PodSandboxConfig podConfig, string name, string[] command)
    {
        var config = new ContainerConfig
        {
            Metadata = new ContainerMetadata { Name = name },
            Image = new ImageSpec { Image = ContainerdHarness.TestImage },
            LogPath = name + ".log",
            Linux = new LinuxContainerConfig
            {
                SecurityContext = new LinuxContainerSecurityContext
                {
                    NamespaceOptions = new NamespaceOption { Network = NamespaceMode.Node },
                },
            },
        };
        config.Command.AddRange(command);
        var created = await h.Cri.Runtime.CreateContainerAsync(new CreateContainerRequest
        {
            PodSandboxId = podId,
            Config = config,
            SandboxConfig = podConfig,
        });
        h.Track(created.ContainerId);
        await h.Cri.Runtime.StartContainerAsync(new StartContainerRequest { ContainerId = created.ContainerId });
        return created.ContainerId;
    }
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class IntegrationCollection
{
    public const string Name = "containerd integration";
}
