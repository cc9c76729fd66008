using System.Diagnostics;
using System.Text;
using Coracle.Plugins;
using Coracle.Plugins.Runtime.Containerd;
using Coracle.Plugins.Runtime.Containerd.Cri;

namespace Coracle.Plugins.Runtime.Tests.Support;

/// <summary>
/// Runs the real containerd exactly as the plugin's <see cref="ProcessComponent"/> says (file, arguments, environment,
/// BeforeStart, readiness probe) — a stand-in for the host's supervisor, which is being written concurrently.
/// Cleans up everything on dispose: pods via CRI, then containerd, leftover shims and their children, mounts.
/// </summary>
internal sealed class ContainerdHarness : IAsyncDisposable
{
    public const string PauseImage = "docker.io/library/busybox:coracle-pause";
    public const string TestImage = "docker.io/library/busybox:coracle-test";

    private readonly StringBuilder _output = new();
    private readonly HashSet<string> _ids = [];
    private Process? _process;
    private CancellationTokenSource? _airgapStop;
    private Task? _airgapRun;

    private ContainerdHarness(TempDir dir, FakePluginContext context, ProcessComponent spec, InProcessComponent? airgap, RuntimeEndpoint endpoint)
    {
        Dir = dir;
        Context = context;
        Spec = spec;
        Airgap = airgap;
        Endpoint = endpoint;
        Cri = new CriClient(endpoint.CriSocket);
    }

    public TempDir Dir { get; }

    public FakePluginContext Context { get; }

    public ProcessComponent Spec { get; }

    public InProcessComponent? Airgap { get; }

    public RuntimeEndpoint Endpoint { get; }

    public CriClient Cri { get; }

    public string ImagesDir => Dir.Combine("data", "agent", "images");

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>Configures the plugin against the real host and returns the harness (containerd not started yet).</summary>
    public static ContainerdHarness Create(RuntimeOptions? options = null, TempDir? dir = null)
    {
        if (Environment.UserName != "root")
        {
            throw new InvalidOperationException("the containerd integration tests need root (containerd, runc, mounts)");
        }

        dir ??= new TempDir("ctd");
        var context = new FakePluginContext(
            FakePluginContext.Settings(dir.Path, PauseImage),
            new Dictionary<string, string> { ["stream-server-port"] = "0" },
            dir.Combine("data", "plugins", "containerd"),
            typeof(ContainerdPlugin));
        var endpoint = new ContainerdPlugin().Configure(context, options ?? new RuntimeOptions());
        if (context.Supervisor.Unavailable.TryGetValue("containerd", out var reason))
        {
            throw new InvalidOperationException(reason + " (apt-get install -y containerd runc)");
        }

        var spec = context.Supervisor.Components.OfType<ProcessComponent>().Single();
        var airgap = context.Supervisor.Components.OfType<InProcessComponent>().SingleOrDefault();
        return new ContainerdHarness(dir, context, spec, airgap, endpoint);
    }

    /// <summary>Runs BeforeStart, starts the process and waits until the readiness probe passes (60 s bound).</summary>
    public async Task StartAsync()
    {
        await Spec.BeforeStart!(CancellationToken.None);
        var info = new ProcessStartInfo(Spec.FileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = Spec.WorkingDirectory ?? Context.Node.DataDir,
        };
        foreach (var arg in Spec.Arguments)
        {
            info.ArgumentList.Add(arg);
        }

        foreach (var (key, value) in Spec.Environment)
        {
            info.Environment[key] = value;
        }

        Directory.CreateDirectory(info.WorkingDirectory);
        _process = Process.Start(info)!;
        _process.OutputDataReceived += (_, e) => Append(e.Data);
        _process.ErrorDataReceived += (_, e) => Append(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        await WaitUntilAsync(Spec.Readiness is CustomProbe probe ? probe.Check : _ => Task.FromResult(true), "containerd CRI readiness");
    }

    /// <summary>SIGKILL to containerd alone (not its process group), as a crash would.</summary>
    public async Task KillAsync()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill(entireProcessTree: false);
            await _process.WaitForExitAsync();
        }
    }

    /// <summary>Starts the airgap component's Run and waits for its readiness (the import pass finished).</summary>
    public async Task RunAirgapImportAsync()
    {
        var airgap = Airgap ?? throw new InvalidOperationException("no airgap component registered (ctr missing?)");
        _airgapStop = new CancellationTokenSource();
        _airgapRun = Task.Run(() => airgap.Run(_airgapStop.Token));
        await WaitUntilAsync(((CustomProbe)airgap.Readiness!).Check, "airgap import");
    }

    public void Track(string id) => _ids.Add(id);

    public async Task WaitUntilAsync(Func<CancellationToken, Task<bool>> check, string what, int seconds = 60)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(seconds));
        while (true)
        {
            if (_process is { HasExited: true })
            {
                throw new InvalidOperationException($"containerd exited with {_process.ExitCode} while waiting for {what}:\n{Output}");
            }

            if (await check(cts.Token))
            {
                return;
            }

            try
            {
                await Task.Delay(200, cts.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"gave up waiting for {what} after {seconds} s; containerd output:\n{Output}");
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_airgapStop is not null)
        {
            await _airgapStop.CancelAsync();
            try
            {
                await _airgapRun!;
            }
            catch (OperationCanceledException)
            {
            }

            _airgapStop.Dispose();
        }

        if (_process is { HasExited: false })
        {
            await RemovePodsAsync();
            await KillAsync();
        }

        Cri.Dispose();
        _process?.Dispose();
        KillLeftoverShims();
        Unmount();
        CleanRuncState();
        Dir.Dispose();
    }

    private async Task RemovePodsAsync()
    {
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            var pods = await Cri.Runtime.ListPodSandboxAsync(new ListPodSandboxRequest(), cancellationToken: cts.Token);
            foreach (var pod in pods.Items)
            {
                _ids.Add(pod.Id);
                await Cri.Runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = pod.Id }, cancellationToken: cts.Token);
                await Cri.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = pod.Id }, cancellationToken: cts.Token);
            }
        }
        catch (Exception e) when (e is Grpc.Core.RpcException or OperationCanceledException or HttpRequestException)
        {
            // Fall through to the hard clean-up below.
        }
    }

    /// <summary>Kills shims started for this harness's socket, and everything below them (the containers).</summary>
    private void KillLeftoverShims()
    {
        var processes = new Dictionary<int, (int Parent, string CommandLine)>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid))
            {
                continue;
            }

            try
            {
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                var cmdline = File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ');
                processes[pid] = (int.Parse(fields[1], System.Globalization.CultureInfo.InvariantCulture), cmdline);
            }
            catch (IOException)
            {
            }
        }

        var shims = processes.Where(p => p.Value.CommandLine.Contains("containerd-shim", StringComparison.Ordinal)
            && p.Value.CommandLine.Contains(Endpoint.CriSocket, StringComparison.Ordinal)).Select(p => p.Key).ToList();
        var doomed = new List<int>();
        var frontier = new Queue<int>(shims);
        while (frontier.TryDequeue(out var pid))
        {
            doomed.Add(pid);
            foreach (var child in processes.Where(p => p.Value.Parent == pid).Select(p => p.Key))
            {
                frontier.Enqueue(child);
            }
        }

        doomed.Reverse();
        foreach (var pid in doomed)
        {
            try
            {
                using var p = Process.GetProcessById(pid);
                p.Kill();
                p.WaitForExit(5000);
            }
            catch (ArgumentException)
            {
            }
            catch (InvalidOperationException)
            {
            }
        }
    }

    private void Unmount()
    {
        var prefix = Dir.Path + "/";
        var mounts = File.ReadAllLines("/proc/self/mountinfo")
            .Select(l => l.Split(' ')[4].Replace("\\040", " ", StringComparison.Ordinal))
            .Where(m => m.StartsWith(prefix, StringComparison.Ordinal))
            .OrderByDescending(m => m.Length)
            .ToList();
        foreach (var mount in mounts)
        {
            _ = Umount2(mount, 2);
        }
    }

    private void CleanRuncState()
    {
        foreach (var id in _ids)
        {
            var state = Path.Combine("/run/containerd/runc/k8s.io", id);
            if (Directory.Exists(state))
            {
                try
                {
                    Directory.Delete(state, recursive: true);
                }
                catch (IOException)
                {
                }
            }
        }
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "umount2", SetLastError = true)]
    private static extern int Umount2([System.Runtime.InteropServices.MarshalAs(System.Runtime.InteropServices.UnmanagedType.LPUTF8Str)] string target, int flags);
}
