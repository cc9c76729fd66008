using Coracle.Plugins;
using Coracle.Plugins.Runtime.Nvidia;
using Coracle.Plugins.Runtime.Tests.Support;
using Xunit;

namespace Coracle.Plugins.Runtime.Tests.Nvidia;

public sealed class NvidiaDiscoveryTests : IDisposable
{
    private readonly TempDir _root = new("nv");

    public void Dispose() => _root.Dispose();

    [Theory]
    [InlineData("usr/local/nvidia/toolkit")]
    [InlineData("usr/bin")]
    [InlineData("usr/local/bin")]
    public void Discover_RuntimeInLocation_Found(string location)
    {
        var binary = _root.WriteExecutable($"{location}/nvidia-container-runtime", "#!/bin/sh\n");

        var handlers = NvidiaDiscovery.Discover(_root.Path);

        Assert.Equal([new RuntimeHandler("nvidia", binary)], handlers);
    }

    [Fact]
    public void Discover_GpuOperatorAndPackage_GpuOperatorWins()
    {
        var operatorBinary = _root.WriteExecutable("usr/local/nvidia/toolkit/nvidia-container-runtime", "#!/bin/sh\n");
        _root.WriteExecutable("usr/bin/nvidia-container-runtime", "#!/bin/sh\n");

        var handler = Assert.Single(NvidiaDiscovery.Discover(_root.Path));

        Assert.Equal(operatorBinary, handler.BinaryPath);
    }

    [Fact]
    public void Discover_PackageAndManualInstall_PackageWins()
    {
        var package = _root.WriteExecutable("usr/bin/nvidia-container-runtime", "#!/bin/sh\n");
        _root.WriteExecutable("usr/local/bin/nvidia-container-runtime", "#!/bin/sh\n");

        Assert.Equal(package, Assert.Single(NvidiaDiscovery.Discover(_root.Path)).BinaryPath);
    }

    [Fact]
    public void Discover_AllThreeRuntimes_HandlersInFixedOrder()
    {
        _root.WriteExecutable("usr/bin/nvidia-container-runtime.cdi", "#!/bin/sh\n");
        _root.WriteExecutable("usr/bin/nvidia-container-runtime-experimental", "#!/bin/sh\n");
        _root.WriteExecutable("usr/local/nvidia/toolkit/nvidia-container-runtime", "#!/bin/sh\n");

        var handlers = NvidiaDiscovery.Discover(_root.Path);

        Assert.Equal(["nvidia", "nvidia-experimental", "nvidia-cdi"], handlers.Select(h => h.Name));
        Assert.All(handlers, h => Assert.Equal("", h.RuntimeType)); // the runtime's runc-compatible default
    }

    [Fact]
    public void Discover_DirectoryOrNonExecutable_Skipped()
    {
        Directory.CreateDirectory(_root.Combine("usr/local/nvidia/toolkit/nvidia-container-runtime"));
        _root.Write("usr/bin/nvidia-container-runtime", "not executable");
        var manual = _root.WriteExecutable("usr/local/bin/nvidia-container-runtime", "#!/bin/sh\n");

        Assert.Equal(manual, Assert.Single(NvidiaDiscovery.Discover(_root.Path)).BinaryPath);
    }

    [Fact]
    public void Discover_ExtraDirs_SearchedLast()
    {
        var onPath = _root.WriteExecutable("opt/bin/nvidia-container-runtime-experimental", "#!/bin/sh\n");

        var handler = Assert.Single(NvidiaDiscovery.Discover(_root.Combine("emptyroot"), [_root.Combine("opt/bin")]));

        Assert.Equal(new RuntimeHandler("nvidia-experimental", onPath), handler);
    }

    [Fact]
    public void Discover_Plugin_WritesRuntimeClassPerHandler()
    {
        _root.WriteExecutable("usr/bin/nvidia-container-runtime", "#!/bin/sh\n");
        _root.WriteExecutable("usr/bin/nvidia-container-runtime.cdi", "#!/bin/sh\n");
        var context = new FakePluginContext(FakePluginContext.Settings(_root.Path));

        var handlers = new NvidiaPlugin(_root.Path, pathVariable: null).Discover(context);

        Assert.Equal(2, handlers.Count);
        Assert.Equal(["nvidia-cdi.yaml", "nvidia.yaml"], context.Manifests.Written.Keys.Order());
        Assert.Equal(
            """
            apiVersion: node.k8s.io/v1
            kind: RuntimeClass
            metadata:
              name: nvidia
              labels:
                app.kubernetes.io/managed-by: coracle
            handler: nvidia

            """,
            context.Manifests.Written["nvidia.yaml"]);
        Assert.Equal(["nvidia-experimental.yaml"], context.Manifests.Removed);
    }

    [Fact]
    public void Discover_NothingFound_NoHandlersOneInfoLine()
    {
        var context = new FakePluginContext(FakePluginContext.Settings(_root.Path));

        var handlers = new NvidiaPlugin(_root.Path, pathVariable: null).Discover(context);

        Assert.Empty(handlers);
        Assert.Empty(context.Manifests.Written);
        var line = Assert.Single(context.Lines);
        Assert.Equal("Information plugin: no NVIDIA container runtime found (searched /usr/local/nvidia/toolkit, /usr/bin, /usr/local/bin and PATH)", line);
    }
}
