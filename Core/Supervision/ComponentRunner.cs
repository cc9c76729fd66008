using System.Diagnostics;
using CliWrap;
using Coracle.Core.Logging;
using Coracle.Plugins;
using Microsoft.Extensions.Logging;

namespace Coracle.Core.Supervision;

/// <summary>Runs one component: start, probe, watch, restart with backoff, stop on request.</summary>
internal sealed class ComponentRunner : IDisposable
{
    private readonly ComponentSpec _spec;
    private readonly ILogger _log;
    private readonly TimeProvider _time;
    private readonly ProcessSpawner _spawner;
    private readonly RestartTracker _restarts;
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _stop = new();
    private readonly object _gate = new();
    private readonly ComponentOutput? _output;
    private readonly string? _pidDir;
    private Task? _loop;
    private volatile bool _shuttingDown;
    private bool _outputAnnounced;
    private ComponentState _state = ComponentState.Pending;
    private DateTimeOffset _since;
    private string _detail = "";
    private int? _pid;
    private CancellationTokenSource? _cycle;
    private string? _restartReason;
    private int _generation;

    /// <param name="logDir">
    /// Folder for a process component's output file (<c>NAME.log</c>); null sends every output line to the log at
    /// information level (tests, in-process uses).
    /// </param>
    /// <param name="pidDir">Folder for the process's pid record (<see cref="PidRecords"/>, read by <c>coracle killall</c>); null keeps none.</param>
    public ComponentRunner(ComponentSpec spec, ILoggerFactory loggers, TimeProvider time, ProcessSpawner spawner, string? logDir = null, string? pidDir = null)
    {
        _pidDir = pidDir;
        _spec = spec;
        _log = loggers.CreateLogger(spec.Name);
        _time = time;
        _spawner = spawner;
        _restarts = new RestartTracker(spec.Restart, time);
        _since = time.GetUtcNow();
        if (logDir is not null && spec is ProcessComponent)
        {
            _output = new ComponentOutput(Path.Combine(logDir, LogFileName(spec.Name)), _log, time);
        }
    }

    /// <summary>The output file's name for a component: <c>NAME.log</c>, with path separators replaced.</summary>
    public static string LogFileName(string component) => component.Replace('/', '_') + ".log";

    public ComponentSpec Spec => _spec;

    /// <summary>A plugin-reported detail, shown when the supervisor has nothing more urgent to say.</summary>
    public string ReportedDetail { get; set; } = "";

    /// <summary>Set by the component itself: while it is ready, <c>coracle status</c> shows it <see cref="ComponentState.Degraded"/>.</summary>
    public bool ReportedDegraded { get; set; }

    public void Dispose()
    {
        _stop.Dispose();
        _output?.Dispose();
    }

    public Task Ready => _ready.Task;

    public ComponentStatus Status
    {
        get
        {
            lock (_gate)
            {
                return new ComponentStatus(_spec.Name, _spec is ProcessComponent ? "process" : "in-process",
                    _state == ComponentState.Ready && ReportedDegraded ? ComponentState.Degraded : _state, _pid, _restarts.Restarts, _since, _detail.Length > 0 ? _detail : ReportedDetail);
            }
        }
    }

    public void Start(IReadOnlyList<ComponentRunner> dependencies, CancellationToken cancellationToken)
    {
        _loop = Task.Run(() => LoopAsync(dependencies, cancellationToken), CancellationToken.None);
    }

    /// <summary>
    /// The node is stopping: from now on an exit is expected (a peer this component needs may already be gone), so it
    /// is neither restarted nor reported as a failure, and error lines in the output are shutdown noise.
    /// </summary>
    public void BeginShutdown()
    {
        _shuttingDown = true;
        _output?.BeginStop();
    }

    /// <summary>Graceful stop: SIGTERM (or cancellation), wait up to the stop timeout, then kill.</summary>
    public async Task StopAsync()
    {
        BeginShutdown();
        await _stop.CancelAsync();
        if (_loop is not null)
        {
            await _loop;
        }
    }

    /// <summary>
    /// A planned restart (new certificates, new configuration): the running process or service is stopped gracefully
    /// as at a node stop and started again at once, without backoff and without counting as a crash. False when the
    /// component is not running (not started yet, stopping, or failed).
    /// </summary>
    public bool RequestRestart(string reason, out int generation)
    {
        lock (_gate)
        {
            generation = _generation;
            if (_cycle is null || _shuttingDown || _state is not (ComponentState.Ready or ComponentState.Starting))
            {
                return false;
            }

            _restartReason = reason;
            _cycle.Cancel();
            return true;
        }
    }

    /// <summary>How many times the component was started (1 while its first run lasts).</summary>
    public int Generation
    {
        get
        {
            lock (_gate)
            {
                return _generation;
            }
        }
    }

    private void SetState(ComponentState state, string detail, int? pid = null)
    {
        lock (_gate)
        {
            _state = state;
            _detail = detail;
            _pid = pid;
            _since = _time.GetUtcNow();
        }
    }

    private async Task LoopAsync(IReadOnlyList<ComponentRunner> dependencies, CancellationToken cancellationToken)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stop.Token);
        var stop = linked.Token;
        try
        {
            foreach (var dependency in dependencies)
            {
                if (!dependency.Ready.IsCompleted)
                {
                    SetState(ComponentState.Pending, $"waiting for {dependency.Spec.Name}");
                    await WaitLoggedAsync(dependency.Ready, dependency.Spec.Name, stop);
                }
            }

            while (!stop.IsCancellationRequested)
            {
                var started = _time.GetTimestamp();
                string reason;
                using var cycle = CancellationTokenSource.CreateLinkedTokenSource(stop);
                lock (_gate)
                {
                    _cycle = cycle;
                    _restartReason = null;
                    _generation++;
                }

                try
                {
                    reason = _spec switch
                    {
                        ProcessComponent process => await RunProcessAsync(process, cycle.Token),
                        InProcessComponent inProcess => await RunInProcessAsync(inProcess, cycle.Token),
                        _ => throw new InvalidOperationException($"unknown component kind {_spec.GetType().Name}"),
                    };
                }
                catch (Exception ex) when (ex is not OperationCanceledException || !cycle.IsCancellationRequested)
                {
                    reason = ex.Message;
                    if (!_shuttingDown)
                    {
                        _log.StartFailed(reason);
                    }
                }
                finally
                {
                    lock (_gate)
                    {
                        _cycle = null;
                    }
                }

                if (stop.IsCancellationRequested)
                {
                    break;
                }

                if (cycle.IsCancellationRequested)
                {
                    // Asked to restart: no backoff, not a crash.
                    _log.PlannedRestart(_restartReason ?? "requested");
                    continue;
                }

                if (_shuttingDown)
                {
                    _log.ExitedWhileStopping(reason);
                    break;
                }

                if (reason == "exit code 0" && _spec.Restart == RestartPolicy.Never)
                {
                    _log.Completed();
                    SetState(ComponentState.Stopped, "completed");
                    return;
                }

                var delay = _restarts.OnExit(_time.GetElapsedTime(started));
                if (delay is null)
                {
                    _log.CrashLoop(_restarts.Restarts, SettingText(_spec.Restart.CrashLoopWindow), reason);
                    SetState(ComponentState.Failed, $"crash loop: {reason}");
                    _ready.TrySetException(new InvalidOperationException($"{_spec.Name} failed: {reason}"));
                    return;
                }

                _log.Restarting(reason, _restarts.Restarts, (long)delay.Value.TotalMilliseconds);
                SetState(ComponentState.Backoff, $"{reason}; restarting");
                await Task.Delay(delay.Value, _time, stop);
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }

        SetState(ComponentState.Stopped, "");
        _ready.TrySetCanceled(CancellationToken.None);
    }

    private static string SettingText(TimeSpan t) => Configuration.SettingParser.FormatDuration(t);

    private async Task WaitLoggedAsync(Task task, string what, CancellationToken stop)
    {
        var waited = Stopwatch.StartNew();
        while (!task.IsCompleted)
        {
            var tick = Task.Delay(TimeSpan.FromSeconds(30), _time, stop);
            await Task.WhenAny(task, tick);
            stop.ThrowIfCancellationRequested();
            if (!task.IsCompleted)
            {
                _log.Waiting(what, (long)waited.Elapsed.TotalSeconds);
            }
        }

        await task;
    }

    private async Task<string> RunProcessAsync(ProcessComponent spec, CancellationToken stop)
    {
        if (spec.BeforeStart is not null)
        {
            await spec.BeforeStart(stop);
        }

        if (!File.Exists(spec.FileName))
        {
            throw new FileNotFoundException($"{spec.FileName} not found");
        }

        SetState(ComponentState.Starting, "");
        _log.ProcessStarting(Redact(spec));
        if (_output is not null && !_outputAnnounced)
        {
            _outputAnnounced = true;
            _log.OutputTo(_output.Path);
        }

        using var forceful = new CancellationTokenSource();
        var command = _spawner.Wrap(spec.FileName, spec.Arguments)
            .WithEnvironmentVariables(spec.Environment.ToDictionary(kv => kv.Key, kv => (string?)kv.Value))
            .WithWorkingDirectory(spec.WorkingDirectory ?? Environment.CurrentDirectory)
            .WithStandardOutputPipe(_output?.Target() ?? PipeTarget.ToDelegate(line => _log.Output(line)))
            .WithStandardErrorPipe(_output?.Target() ?? PipeTarget.ToDelegate(line => _log.Output(line)))
            .WithValidation(CommandResultValidation.None);
        _output?.Open();
        CommandTask<CommandResult> running;
        try
        {
            running = await _spawner.StartAsync(command, forceful.Token);
        }
        catch
        {
            _output?.Close(null);
            throw;
        }

        var pid = running.ProcessId;
        _log.ProcessStarted(pid);
        RecordPid(pid, running.Task);
        SetState(ComponentState.Starting, "probing readiness", pid);

        var exited = running.Task;
        var probe = ProbeUntilReadyAsync(exited, pid, stop);
        try
        {
            await Task.WhenAny(exited, Task.Delay(Timeout.Infinite, stop));
        }
        catch (OperationCanceledException)
        {
        }

        if (stop.IsCancellationRequested && !exited.IsCompleted)
        {
            _output?.BeginStop();
            SetState(ComponentState.Stopping, "", pid);
            _log.Stopping((long)spec.StopTimeout.TotalMilliseconds);
            Native.Kill(pid, Native.SigTerm);
            var finished = await Task.WhenAny(exited, Task.Delay(spec.StopTimeout, _time, CancellationToken.None));
            if (finished != exited)
            {
                _log.Killing((long)spec.StopTimeout.TotalMilliseconds);
                Native.Kill(pid, Native.SigKill);
                await forceful.CancelAsync();
            }

            await SwallowAsync(exited);
            await SwallowAsync(probe);
            _output?.Close(null);
            _log.ComponentStopped();
            return "stopped";
        }

        CommandResult result;
        try
        {
            result = await exited;
        }
        catch
        {
            _output?.Close(null);
            throw;
        }

        await SwallowAsync(probe);
        // .NET reports a child killed by signal N as 128+N; signals end at 64, so 193-255 are real exit codes
        // (klog's fatal exit is 255).
        var reason = result.ExitCode switch
        {
            0 => "exit code 0",
            > 128 and <= 128 + 64 => $"killed by signal {result.ExitCode - 128}",
            < 0 => $"killed by signal {-result.ExitCode}",
            _ => $"exit code {result.ExitCode}",
        };

        // Asked to stop, stopping with the node, or done (exit 0 of a run-once component): nothing to warn about.
        var expected = stop.IsCancellationRequested || _shuttingDown || (result.ExitCode == 0 && spec.Restart == RestartPolicy.Never);
        _output?.Close(expected ? null : reason);
        return reason;
    }

    private async Task<string> RunInProcessAsync(InProcessComponent spec, CancellationToken stop)
    {
        SetState(ComponentState.Starting, "probing readiness");
        _log.ProcessStarting($"in-process service {spec.Name}");
        var body = Task.Run(() => spec.Run(stop), CancellationToken.None);
        var probe = ProbeUntilReadyAsync(body, null, stop);
        try
        {
            await Task.WhenAny(body, Task.Delay(Timeout.Infinite, stop));
        }
        catch (OperationCanceledException)
        {
        }

        if (stop.IsCancellationRequested)
        {
            SetState(ComponentState.Stopping, "");
            var finished = await Task.WhenAny(body, Task.Delay(spec.StopTimeout, _time, CancellationToken.None));
            if (finished != body)
            {
                _log.Killing((long)spec.StopTimeout.TotalMilliseconds);
            }

            await SwallowAsync(probe);
            _log.ComponentStopped();
            return "stopped";
        }

        await SwallowAsync(probe);
        try
        {
            await body;
            return "exit code 0";
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            return $"failed: {ex.Message}";
        }
    }

    /// <summary>Records the child's pid for <c>coracle killall</c> while it runs; the record goes when it exits.</summary>
    private void RecordPid(int pid, Task exited)
    {
        if (_pidDir is null)
        {
            return;
        }

        try
        {
            PidRecords.Record(_pidDir, _spec.Name, pid);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Without the record killall still finds the process by its cgroup or after the node; nothing else depends on it.
        }

        exited.ContinueWith(
            _ =>
            {
                try
                {
                    PidRecords.Remove(_pidDir, _spec.Name, pid);
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                }
            },
            CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    /// <summary>The wait after the first failed readiness probe; each next wait doubles, up to the probe's interval.</summary>
    public static readonly TimeSpan FirstProbeRetry = TimeSpan.FromMilliseconds(50);

    /// <summary>
    /// The waits between readiness probes: <see cref="FirstProbeRetry"/>, doubling, then <paramref name="interval"/> for
    /// ever. A component that is up within a few hundred milliseconds (an in-process service, containerd, the kubelet's
    /// healthz) is seen at once, and one that takes seconds (kube-apiserver's first start) is still asked only once per
    /// interval. With a fixed interval every readiness, and so every component waiting for it, came up to one interval late.
    /// </summary>
    public static IEnumerable<TimeSpan> ProbeWaits(TimeSpan interval)
    {
        var wait = FirstProbeRetry < interval ? FirstProbeRetry : interval;
        while (true)
        {
            yield return wait;
            wait = wait * 2 < interval ? wait * 2 : interval;
        }
    }

    private async Task ProbeUntilReadyAsync(Task exited, int? pid, CancellationToken stop)
    {
        var started = Stopwatch.StartNew();
        var lastLog = TimeSpan.Zero;
        if (_spec.Readiness is { } probe)
        {
            using var waits = ProbeWaits(probe.Interval).GetEnumerator();
            while (!exited.IsCompleted && !stop.IsCancellationRequested)
            {
                if (await Probes.ProbeAsync(probe, stop))
                {
                    break;
                }

                if (started.Elapsed - lastLog >= TimeSpan.FromSeconds(30))
                {
                    lastLog = started.Elapsed;
                    if (lastLog > TimeSpan.Zero)
                    {
                        _log.Waiting($"{_spec.Name} to become ready", (long)lastLog.TotalSeconds);
                    }
                }

                waits.MoveNext();
                await Task.WhenAny(exited, Task.Delay(waits.Current, _time, stop));
            }
        }

        if (!exited.IsCompleted && !stop.IsCancellationRequested)
        {
            _log.Ready(started.ElapsedMilliseconds);
            SetState(ComponentState.Ready, "", pid);
            _ready.TrySetResult();
        }
    }

    private static async Task SwallowAsync(Task task)
    {
        try
        {
            await task;
        }
        catch (Exception)
        {
            // Already observed through the component's state.
        }
    }

    private static string Redact(ProcessComponent spec)
    {
        var parts = new List<string> { spec.FileName };
        for (var i = 0; i < spec.Arguments.Count; i++)
        {
            var arg = spec.Arguments[i];
            var secret = spec.SecretArguments.FirstOrDefault(s => arg.StartsWith(s + "=", StringComparison.Ordinal));
            if (secret is not null)
            {
                parts.Add(secret + "=********");
            }
            else if (spec.SecretArguments.Contains(arg) && i + 1 < spec.Arguments.Count)
            {
                parts.Add(arg);
                parts.Add("********");
                i++;
            }
            else
            {
                parts.Add(arg.Contains(' ', StringComparison.Ordinal) ? $"\"{arg}\"" : arg);
            }
        }

        return string.Join(' ', parts);
    }
}
