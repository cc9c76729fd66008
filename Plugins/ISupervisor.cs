namespace Coracle.Plugins;

/// <summary>
/// Runs the node's components: starts them in dependency order, probes readiness, restarts them with
/// backoff and stops them in reverse order.
/// </summary>
public interface ISupervisor
{
    /// <summary>Registers a component. Names are unique; dependencies must be registered before start.</summary>
    void Add(ComponentSpec component);

    /// <summary>Completes when the named component is ready (first time), or throws when it gives up.</summary>
    Task WaitReadyAsync(string name, CancellationToken cancellationToken);

    /// <summary>
    /// Records a component that is part of the node but cannot run here (binary missing, not implemented),
    /// so that <c>coracle status</c> reports it plainly.
    /// </summary>
    void ReportUnavailable(string name, string reason);

    /// <summary>
    /// Sets the one-line detail <c>coracle status</c> shows beside a registered component (for example a
    /// CNI's subnet, backend and peers). Replaces the previous detail; cheap enough to call on every change.
    /// </summary>
    void ReportDetail(string name, string detail);
}

/// <summary>What the supervisor does when a component exits or fails.</summary>
/// <param name="InitialBackoff">First wait before a restart.</param>
/// <param name="MaxBackoff">The wait doubles up to this.</param>
/// <param name="CrashLoopLimit">Restarts within <paramref name="CrashLoopWindow"/> before the component is marked failed.</param>
/// <param name="CrashLoopWindow">The window for <paramref name="CrashLoopLimit"/>.</param>
public sealed record RestartPolicy(
    TimeSpan InitialBackoff,
    TimeSpan MaxBackoff,
    int CrashLoopLimit,
    TimeSpan CrashLoopWindow)
{
    /// <summary>1 s doubling to 30 s; failed after 10 restarts in 5 minutes.</summary>
    public static RestartPolicy Default { get; } =
        new(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(30), 10, TimeSpan.FromMinutes(5));

    /// <summary>Never restart: the first exit marks the component failed (or stopped, when it exits 0).</summary>
    public static RestartPolicy Never { get; } = new(TimeSpan.Zero, TimeSpan.Zero, 0, TimeSpan.Zero);
}

/// <summary>A supervised component: a child process or an in-process service.</summary>
public abstract record ComponentSpec
{
    /// <summary>Unique name; also the logger name of its output.</summary>
    public required string Name { get; init; }

    /// <summary>Components that must be ready before this one starts.</summary>
    public IReadOnlyList<string> DependsOn { get; init; } = [];

    /// <summary>
    /// Components this one must stop before, when they are registered, without waiting for them at start: a client of
    /// a server that may run on this node (<see cref="WellKnownComponents.KubeApiServer"/>), whose open watches would
    /// otherwise hold the server's graceful shutdown.
    /// </summary>
    public IReadOnlyList<string> StopsBefore { get; init; } = [];

    /// <summary>How readiness is decided; null means ready as soon as it started.</summary>
    public ReadinessProbe? Readiness { get; init; }

    /// <summary>Restart behaviour.</summary>
    public RestartPolicy Restart { get; init; } = RestartPolicy.Default;

    /// <summary>How long a graceful stop may take before the component is killed.</summary>
    public TimeSpan StopTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// True when the component reads the node's certificates or kubeconfigs only at start: when certificates are
    /// renewed while the node runs (or rotated with <c>coracle certificate rotate</c>), the host restarts it, in start
    /// order, gracefully and without backoff, so it presents and trusts the new ones.
    /// </summary>
    public bool RestartOnCertificateRenewal { get; init; }
}

/// <summary>
/// A child process. Its stdout and stderr go to <c>DATA/logs/NAME.log</c>; its error lines are also logged under
/// <see cref="ComponentSpec.Name"/>.
/// </summary>
public sealed record ProcessComponent : ComponentSpec
{
    /// <summary>The executable's path.</summary>
    public required string FileName { get; init; }

    /// <summary>The arguments, one element each.</summary>
    public IReadOnlyList<string> Arguments { get; init; } = [];

    /// <summary>Extra environment variables.</summary>
    public IReadOnlyDictionary<string, string> Environment { get; init; } = new Dictionary<string, string>();

    /// <summary>Working directory; null for the data dir.</summary>
    public string? WorkingDirectory { get; init; }

    /// <summary>Argument names (like <c>--token</c>) whose values are redacted when the command line is logged.</summary>
    public IReadOnlyList<string> SecretArguments { get; init; } = [];

    /// <summary>Runs before every start (create folders, clean stale sockets).</summary>
    public Func<CancellationToken, Task>? BeforeStart { get; init; }
}

/// <summary>
/// An in-process service. <see cref="Run"/> runs until the token is cancelled (graceful stop);
/// returning or throwing before that counts as a crash and is restarted under the policy.
/// </summary>
public sealed record InProcessComponent : ComponentSpec
{
    /// <summary>The service body.</summary>
    public required Func<CancellationToken, Task> Run { get; init; }
}
