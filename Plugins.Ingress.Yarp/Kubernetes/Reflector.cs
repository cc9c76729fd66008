using System.Collections.Concurrent;
using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging;

namespace Coracle.Plugins.Ingress.Yarp.Kubernetes;

/// <summary>
/// A cache of one resource kind kept by list-then-watch (client-go's reflector, reduced): lists, watches from the list's
/// resource version, and lists again when the watch ends or fails. Calls <c>changed</c> after every change.
/// </summary>
internal sealed class Reflector<T>
    where T : class, IKubernetesObject<V1ObjectMeta>
{
    private readonly string _resource;
    private readonly Func<CancellationToken, Task<(IList<T> Items, string ResourceVersion)>> _list;
    private readonly Func<string, CancellationToken, IAsyncEnumerable<(WatchEventType Type, T Item)>> _watch;
    private readonly Action _changed;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, T> _items = new(StringComparer.Ordinal);

    public Reflector(
        string resource,
        Func<CancellationToken, Task<(IList<T> Items, string ResourceVersion)>> list,
        Func<string, CancellationToken, IAsyncEnumerable<(WatchEventType Type, T Item)>> watch,
        Action changed,
        ILogger logger)
    {
        _resource = resource;
        _list = list;
        _watch = watch;
        _changed = changed;
        _logger = logger;
    }

    /// <summary>True once the first list arrived.</summary>
    public bool Synced { get; private set; }

    /// <summary>The cached objects.</summary>
    public IReadOnlyList<T> Items => _items.Values.ToList();

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var delay = TimeSpan.FromMilliseconds(500);
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                var (items, rv) = await _list(cancellationToken);
                _items.Clear();
                foreach (var item in items)
                {
                    _items[Key(item)] = item;
                }

                Synced = true;
                _changed();
                delay = TimeSpan.FromMilliseconds(500);
                await foreach (var (type, item) in _watch(rv, cancellationToken).WithCancellation(cancellationToken))
                {
                    switch (type)
                    {
                        case WatchEventType.Added or WatchEventType.Modified:
                            _items[Key(item)] = item;
                            _changed();
                            break;
                        case WatchEventType.Deleted:
                            _items.TryRemove(Key(item), out _);
                            _changed();
                            break;
                        case WatchEventType.Error:
                            throw new InvalidOperationException("the watch returned an error event (resource version expired?)");
                        default:
                            break;
                    }
                }
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested)
            {
                Log.WatchRestart(_logger, _resource, e.Message);
                await Task.Delay(delay, cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(10).Ticks));
            }
        }
    }

    private static string Key(T item) => $"{item.Metadata?.NamespaceProperty}/{item.Metadata?.Name}";
}
