using System.Collections.Concurrent;
using Coracle.Core.Logging;
using Coracle.Plugins;
using Microsoft.Extensions.Logging;

namespace Coracle.Core.Supervision;

/// <summary>
/// Runs every registered component in dependency order and stops them in reverse order.
/// </summary>
internal sealed class Supervisor : ISupervisor
{
    private readonly ILoggerFactory _loggers;
    private readonly TimeProvider _time;
    private readonly ProcessSpawner _spawner;
    private readonly string? _logDir;
    private readonly string? _pidDir;
    private readonly ILogger _log;
    private readonly List<ComponentRunner> _runners = [];
    private readonly ConcurrentDictionary<string, string> _unavailable = new(StringComparer.Ordinal);
    private readonly object _gate = new();
    private readonly List<ComponentRunner> _early = [];
    private List<ComponentRunner>? _order;
    private List<ComponentRunner>? _stopOrder;

    /// <param name="loggers">Coracle's log.</param>
    /// <param name="time">The clock (backoff, rate limits); the system clock by default.</param>
    /// <param name="spawner">Starts the child processes; the shared spawner thread by default.</param>
    /// <param name="logDir">
    /// Folder for the child processes' output, one <c>NAME.log</c> each (0600, folder 0700, rotated at 10 MiB); only
    /// error lines and unexpected exits reach the log. Null logs every output line instead.
    /// </param>
    /// <param name="pidDir">Folder for each child's pid record (<see cref="PidRecords"/>), which <c>coracle killall</c> reads; null keeps none.</param>
    public Supervisor(ILoggerFactory loggers, TimeProvider? time = null, ProcessSpawner? spawner = null, string? logDir = null, string? pidDir = null)
    {
        _pidDir = pidDir;
        _loggers = loggers;
        _time = time ?? TimeProvider.System;
        _spawner = spawner ?? ProcessSpawner.Shared;
        _logDir = logDir;
        _log = loggers.CreateLogger("supervisor");
    }

    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _runners.Count;
            }
        }
    }

    public void Add(ComponentSpec component)
    {
        ArgumentNullException.ThrowIfNull(component);
        lock (_gate)
        {
            if (_order is not null)
            {
                throw new InvalidOperationException($"component {component.Name} added after the supervisor started");
            }

            if (_runners.Any(r => r.Spec.Name == component.Name) || _unavailable.ContainsKey(component.Name))
            {
                throw new InvalidOperationException($"component {component.Name} is registered twice");
            }

            _runners.Add(new ComponentRunner(component, _loggers, _time, _spawner, _logDir, _pidDir));
        }
    }

    public void ReportUnavailable(string name, string reason)
    {
        _unavailable[name] = reason;
        _log.Unavailable(name, reason);
    }

    public void ReportDetail(string name, string detail)
    {
        ComponentRunner? runner;
        lock (_gate)
        {
            runner = _runners.FirstOrDefault(r => r.Spec.Name == name);
        }

        if (runner is null)
        {
            throw new InvalidOperationException($"no component named {name}");
        }

        runner.ReportedDetail = detail;
    }

    /// <summary>
    /// An in-process component's own verdict on what it watches: <paramref name="detail"/> as its detail line and, while
    /// <paramref name="degraded"/> and ready, the state <see cref="ComponentState.Degraded"/> in <c>coracle status</c>.
    /// </summary>
    public void ReportHealth(string name, string detail, bool degraded)
    {
        ComponentRunner? runner;
        lock (_gate)
        {
            runner = _runners.FirstOrDefault(r => r.Spec.Name == name);
        }

        if (runner is null)
        {
            throw new InvalidOperationException($"no component named {name}");
        }

        runner.ReportedDetail = detail;
        runner.ReportedDegraded = degraded;
    }

    public Task WaitReadyAsync(string name, CancellationToken cancellationToken)
    {
        ComponentRunner? runner;
        lock (_gate)
        {
            runner = _runners.FirstOrDefault(r => r.Spec.Name == name);
        }

        return runner is null
            ? throw new InvalidOperationException($"no component named {name}")
            : runner.Ready.WaitAsync(cancellationToken);
    }

    /// <summary>
    /// Starts one registered component that depends on nothing before the others are registered, so it runs while the
    /// start-up steps go on (the datastore opens while the runtime and the Kubernetes components are configured);
    /// <see cref="Start"/> then starts the rest and leaves this one running. False, starting nothing, for a component that
    /// is not registered or depends on another. <see cref="StopAsync"/> stops it, also when <see cref="Start"/> never ran.
    /// </summary>
    public bool StartEarly(string name)
    {
        lock (_gate)
        {
            if (_order is not null)
            {
                throw new InvalidOperationException($"component {name} started early after the supervisor started");
            }

            var runner = _runners.FirstOrDefault(r => r.Spec.Name == name);
            if (runner is null || runner.Spec.DependsOn.Count > 0)
            {
                return false;
            }

            if (!_early.Contains(runner))
            {
                PrepareLogDir();
                _early.Add(runner);
                _log.StartedEarly(name);
                runner.Start([], CancellationToken.None);
            }

            return true;
        }
    }

    /// <summary>Starts every component; dependencies gate each start. Throws on unknown dependencies or cycles.</summary>
    public void Start(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            var byName = _runners.ToDictionary(r => r.Spec.Name);
            foreach (var runner in _runners)
            {
                foreach (var dependency in runner.Spec.DependsOn)
                {
                    if (!byName.ContainsKey(dependency))
                    {
                        throw new InvalidOperationException(
                            _unavailable.TryGetValue(dependency, out var why)
                                ? $"{runner.Spec.Name} depends on {dependency}, which is not available: {why}"
                                : $"{runner.Spec.Name} depends on {dependency}, which is not registered");
                    }
                }
            }

            _order = TopologicalOrder(byName, r => r.Spec.DependsOn);
            // Stopping: a component stops only after everything that depends on it, and after every component that
            // asked to stop before it (the clients of a server: an API watch left open holds kube-apiserver's shutdown).
            // Independent components stop in reverse start order, as before (visiting the runners from the last started).
            var reversed = _order.AsEnumerable().Reverse().ToDictionary(r => r.Spec.Name);
            _stopOrder = TopologicalOrder(reversed, r => reversed.Values
                .Where(o => o.Spec.DependsOn.Contains(r.Spec.Name) || o.Spec.StopsBefore.Contains(r.Spec.Name))
                .Select(o => o.Spec.Name)
                .ToList());
            PrepareLogDir();
            foreach (var runner in _order.Where(r => !_early.Contains(r)))
            {
                runner.Start(runner.Spec.DependsOn.Select(d => byName[d]).ToList(), cancellationToken);
            }
        }
    }

    private void PrepareLogDir()
    {
        if (_logDir is not null)
        {
            const UnixFileMode Private = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
            Directory.CreateDirectory(_logDir, Private);
            File.SetUnixFileMode(_logDir, Private);
        }
    }

    /// <summary>
    /// The node is stopping (a signal arrived): every component learns it at once, before <see cref="StopAsync"/> reaches
    /// it, so one that ends by itself on the same signal meanwhile (ASP.NET Core's console lifetime stops a Kestrel host
    /// that is still starting) is neither restarted nor reported as a failure.
    /// </summary>
    public void BeginShutdown()
    {
        List<ComponentRunner> runners;
        lock (_gate)
        {
            runners = [.. _runners];
        }

        foreach (var runner in runners)
        {
            runner.BeginShutdown();
        }
    }

    /// <summary>
    /// Stops components in reverse dependency order (and each <see cref="ComponentSpec.StopsBefore"/> before its
    /// server), each bounded by its stop timeout.
    /// </summary>
    public async Task StopAsync()
    {
        List<ComponentRunner> order;
        lock (_gate)
        {
            // Before Start only the components started early run (a later start-up step failed): the last one first.
            order = _stopOrder ?? _early.AsEnumerable().Reverse().ToList();
        }

        // Every component learns first that the node is stopping: one that exits now, because a peer it needs is
        // already gone, is not restarted and not reported as a failure.
        foreach (var runner in order)
        {
            runner.BeginShutdown();
        }

        foreach (var runner in order)
        {
            await runner.StopAsync();
        }
    }

    /// <summary>
    /// Restarts the chosen components one after another, in start order, each gracefully (as at a node stop) and
    /// without backoff, waiting until each is ready again (or <paramref name="readyTimeout"/> passed) before the next.
    /// Components that are not running are skipped. Returns the names restarted.
    /// </summary>
    public async Task<IReadOnlyList<string>> RestartAsync(Func<ComponentSpec, bool> which, string reason, TimeSpan readyTimeout, CancellationToken cancellationToken)
    {
        List<ComponentRunner> runners;
        lock (_gate)
        {
            runners = (_order ?? []).Where(r => which(r.Spec)).ToList();
        }

        var restarted = new List<string>();
        foreach (var runner in runners)
        {
            if (!runner.RequestRestart(reason, out var generation))
            {
                continue;
            }

            restarted.Add(runner.Spec.Name);
            var deadline = _time.GetUtcNow() + readyTimeout;
            while (_time.GetUtcNow() < deadline
                && !(runner.Generation > generation && runner.Status.State is ComponentState.Ready or ComponentState.Degraded or ComponentState.Failed))
            {
                await Task.Delay(TimeSpan.FromMilliseconds(200), _time, cancellationToken);
            }
        }

        return restarted;
    }

    public IReadOnlyList<ComponentStatus> Snapshot()
    {
        lock (_gate)
        {
            var list = (_order ?? _runners).Select(r => r.Status).ToList();
            list.AddRange(_unavailable.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv =>
                new ComponentStatus(kv.Key, "-", ComponentState.Unavailable, null, 0, DateTimeOffset.MinValue, kv.Value)));
            return list;
        }
    }

    private static List<ComponentRunner> TopologicalOrder(Dictionary<string, ComponentRunner> byName, Func<ComponentRunner, IReadOnlyList<string>> before)
    {
        var order = new List<ComponentRunner>();
        var state = new Dictionary<string, int>();
        void Visit(ComponentRunner runner, Stack<string> path)
        {
            var name = runner.Spec.Name;
            if (state.GetValueOrDefault(name) == 2)
            {
                return;
            }

            if (state.GetValueOrDefault(name) == 1)
            {
                throw new InvalidOperationException($"dependency cycle: {string.Join(" -> ", path.Reverse())} -> {name}");
            }

            state[name] = 1;
            path.Push(name);
            foreach (var dependency in before(runner))
            {
                Visit(byName[dependency], path);
            }

            path.Pop();
            state[name] = 2;
            order.Add(runner);
        }

        foreach (var runner in byName.Values)
        {
            Visit(runner, new Stack<string>());
        }

        return order;
    }
}
