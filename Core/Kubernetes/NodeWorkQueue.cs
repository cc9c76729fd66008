using System.Threading.Channels;

namespace Coracle.Core.Kubernetes;

/// <summary>
/// The work loop of a Node controller: the names of Nodes to bring up to date, worked through one pass at a time. A
/// name added while a pass runs waits for the next pass, a name added twice is worked once, and a name whose work
/// failed is queued again after <paramref name="retryDelay"/> (measured with <paramref name="time"/>). The watch's
/// callback adds names and then calls <see cref="Signal"/>, also with nothing added, so the first (empty) list counts.
/// </summary>
internal sealed class NodeWorkQueue(TimeSpan retryDelay, TimeProvider time)
{
    private readonly Channel<bool> _signal = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private readonly Lock _gate = new();
    private readonly HashSet<string> _queued = new(StringComparer.Ordinal);

    /// <summary>Queues one Node's name; call <see cref="Signal"/> after the names of one watch event.</summary>
    public void Add(string name)
    {
        lock (_gate)
        {
            _queued.Add(name);
        }
    }

    /// <summary>Wakes the loop for a pass.</summary>
    public void Signal() => _signal.Writer.TryWrite(true);

    /// <summary>
    /// Runs passes until cancelled: each one calls <paramref name="reconcile"/> for every queued name (false: try again
    /// after the delay), then <paramref name="afterPass"/>.
    /// </summary>
    public async Task RunAsync(Func<string, CancellationToken, Task<bool>> reconcile, Action afterPass, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(reconcile);
        ArgumentNullException.ThrowIfNull(afterPass);
        while (!cancellationToken.IsCancellationRequested)
        {
            await _signal.Reader.ReadAsync(cancellationToken);
            List<string> names;
            lock (_gate)
            {
                names = [.. _queued];
                _queued.Clear();
            }

            var retry = new List<string>();
            foreach (var name in names)
            {
                if (!await reconcile(name, cancellationToken))
                {
                    retry.Add(name);
                }
            }

            afterPass();
            if (retry.Count > 0)
            {
                await Task.Delay(retryDelay, time, cancellationToken);
                lock (_gate)
                {
                    _queued.UnionWith(retry);
                }

                Signal();
            }
        }
    }
}
