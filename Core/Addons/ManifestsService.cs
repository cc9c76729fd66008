using Coracle.Core.Kubernetes;
using Coracle.Core.Logging;
using Microsoft.Extensions.Logging;

namespace Coracle.Core.Addons;

/// <summary>
/// The in-process component <c>manifests</c>: takes the Lease (<see cref="ManifestsOptions.LeaseName"/>, holder = this
/// node), runs the <see cref="ManifestsController"/> while holding it and renews it every
/// <see cref="ManifestsOptions.LeaseRetry"/>; stops applying when it cannot renew for two thirds of the Lease's duration
/// or another server took it, and stands by (trying again) while another server holds it. On stop it releases the Lease.
/// </summary>
internal sealed class ManifestsService
{
    private readonly ManifestsOptions _options;
    private readonly ILogger _log;
    private readonly TimeProvider _time;
    private readonly Action<string>? _report;
    private readonly AddonBoard? _board;
    private volatile ManifestsController? _controller;
    private volatile bool _standby;

    public ManifestsService(ManifestsOptions options, ILogger log, TimeProvider? time = null, Action<string>? report = null, AddonBoard? board = null)
    {
        _board = board;
        _options = options;
        _log = log;
        _time = time ?? TimeProvider.System;
        _report = report;
    }

    /// <summary>Ready once the first pass is done as the leader, or once another server is seen holding the Lease.</summary>
    public bool Ready => _standby || _controller?.Passes > 0;

    /// <summary>The controller while this node leads (tests watch its passes).</summary>
    public ManifestsController? Controller => _controller;

    /// <summary>Runs until <paramref name="cancellationToken"/> is cancelled; a controller failure propagates (the supervisor restarts the component).</summary>
    public async Task RunAsync(KubeApi api, CancellationToken cancellationToken)
    {
        var lease = new LeaderLease(api, _options.Namespace, _options.LeaseName, _options.Identity, _options.LeaseDuration, _time);
        var held = false;
        string? standingBy = null;
        PublishPending();
        try
        {
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                LeaseResult result;
                try
                {
                    result = await lease.TryAcquireOrRenewAsync(cancellationToken);
                }
                catch (Exception ex) when (ex is KubeApiUnavailableException or InvalidOperationException)
                {
                    _log.ManifestsLeaseProblem(_options.Namespace, _options.LeaseName, ex.Message);
                    await Task.Delay(_options.LeaseRetry, _time, cancellationToken);
                    continue;
                }

                if (!result.Held)
                {
                    var holder = result.Holder ?? "another server";
                    if (standingBy != holder)
                    {
                        standingBy = holder;
                        _log.ManifestsStandby(_options.Namespace, _options.LeaseName, holder);
                        _report?.Invoke($"standing by: Lease {_options.Namespace}/{_options.LeaseName} is held by {holder}");
                    }

                    _standby = true;
                    _board?.Publish([]);
                    await Task.Delay(_options.LeaseRetry, _time, cancellationToken);
                    continue;
                }

                held = true;
                standingBy = null;
                _log.ManifestsLeading(_options.Namespace, _options.LeaseName, _options.Folder);
                var reason = await LeadAsync(api, lease, cancellationToken);
                held = false;
                _controller = null;
                _log.ManifestsLeaseLost(_options.Namespace, _options.LeaseName, reason);
            }
        }
        finally
        {
            if (held)
            {
                await ReleaseAsync(lease);
            }
        }
    }

    /// <summary>
    /// Before the first pass of a node's start: the folder's files as pending (skipped ones as skipped) and the add-ons
    /// that are off. A restart of the component keeps the rows it had until its controller publishes new ones.
    /// </summary>
    private void PublishPending()
    {
        if (_board is null || _board.Rows.Count > 0)
        {
            return;
        }

        IReadOnlyList<ManifestFile> files = [];
        try
        {
            files = Directory.Exists(_options.Folder) ? ManifestFolder.Scan(_options.Folder) : [];
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // The controller reports the folder when it runs.
        }

        _board.Publish(AddonRows.Build(files, new Dictionary<string, AddonState>(), _options.Off, new Dictionary<string, AddonHealth>()));
    }

    /// <summary>Runs the controller while the Lease is renewed; returns why leading ended (the Lease was lost).</summary>
    private async Task<string> LeadAsync(KubeApi api, LeaderLease lease, CancellationToken cancellationToken)
    {
        using var leading = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var controller = new ManifestsController(api, _options, _log, _time, _report, _board);
        _controller = controller;
        _standby = false;
        var work = controller.RunAsync(leading.Token);
        var keep = KeepAsync(lease, leading.Token);
        await Task.WhenAny(work, keep);
        await leading.CancelAsync();
        try
        {
            await work;
        }
        catch (OperationCanceledException) when (leading.IsCancellationRequested)
        {
        }

        string reason;
        try
        {
            reason = await keep;
        }
        catch (OperationCanceledException) when (leading.IsCancellationRequested)
        {
            reason = "stopped";
        }

        cancellationToken.ThrowIfCancellationRequested();
        return reason;
    }

    /// <summary>Renews the Lease until it is lost: taken by another holder, or not renewed for two thirds of its duration.</summary>
    private async Task<string> KeepAsync(LeaderLease lease, CancellationToken cancellationToken)
    {
        var renewed = _time.GetTimestamp();
        var deadline = _options.LeaseDuration * 2 / 3;
        while (true)
        {
            await Task.Delay(_options.LeaseRetry, _time, cancellationToken);
            try
            {
                var result = await lease.TryAcquireOrRenewAsync(cancellationToken);
                if (!result.Held)
                {
                    return $"now held by {result.Holder ?? "another server"}";
                }

                renewed = _time.GetTimestamp();
            }
            catch (Exception ex) when (ex is KubeApiUnavailableException or InvalidOperationException)
            {
                if (_time.GetElapsedTime(renewed) >= deadline)
                {
                    return $"not renewed for {deadline.TotalSeconds:0} s: {ex.Message}";
                }
            }
        }
    }

    private async Task ReleaseAsync(LeaderLease lease)
    {
        using var bounded = new CancellationTokenSource(TimeSpan.FromSeconds(3));
        try
        {
            await lease.ReleaseAsync(bounded.Token);
        }
        catch (Exception ex) when (ex is KubeApiUnavailableException or OperationCanceledException)
        {
            // The Lease expires by itself.
        }
    }
}
