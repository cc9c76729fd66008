using System.Threading.Channels;
using Coracle.Plugins.Datastore.Sql.Protos;
using Coracle.Plugins.Datastore.Sql.Storage;
using Microsoft.Extensions.Logging;

namespace Coracle.Plugins.Datastore.Sql.Mvcc;

/// <summary>
/// Fans committed changes out to watchers. Changes are pushed by the log's commit path in revision order;
/// a watcher that starts in the past first replays history from the log while live changes are buffered,
/// so no revision is skipped or reordered.
/// </summary>
public sealed class WatchHub
{
    private const int HistoryChunk = 10_000;

    private readonly RevisionLog _log;
    private readonly KvEngine _kv;
    private readonly ILogger _logger;
    private readonly int _fragmentBytes;
    private readonly Lock _lock = new();
    private readonly HashSet<Watcher> _watchers = [];
    private long _published = -1;

    /// <summary>Creates the hub and subscribes it to the log's commits (before the log opens).</summary>
    public WatchHub(KvEngine kv, ILogger logger, int fragmentBytes)
    {
        _kv = kv;
        _log = kv.Log;
        _logger = logger;
        _fragmentBytes = fragmentBytes;
        _log.Committed = Publish;
    }

    /// <summary>Active watchers.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _watchers.Count;
            }
        }
    }

    private long Published => _published >= 0 ? _published : _log.Revision;

    /// <summary>Opens the state of one Watch RPC.</summary>
    public WatchStream OpenStream() => new(this);

    /// <summary>Sends progress notifications to idle watchers that asked for them.</summary>
    public void NotifyProgress()
    {
        lock (_lock)
        {
            foreach (var w in _watchers)
            {
                if (w.ProgressNotify && !w.CatchingUp && !w.SentSinceTick)
                {
                    w.Stream.Send(new WatchResponse { Header = _kv.Header(Published), WatchId = w.Id });
                }

                w.SentSinceTick = false;
            }
        }
    }

    /// <summary>Sends progress notifications every <paramref name="interval"/> until cancelled.</summary>
    public async Task RunProgressAsync(TimeSpan interval, CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(interval);
        while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
        {
            NotifyProgress();
        }
    }

    private void Publish(IReadOnlyList<LogEvent> events, long revision)
    {
        lock (_lock)
        {
            var plain = new Event?[events.Count];
            var withPrev = new Event?[events.Count];
            foreach (var w in _watchers)
            {
                if (w.StartRevision > revision)
                {
                    continue;
                }

                List<Event>? matched = null;
                for (var i = 0; i < events.Count; i++)
                {
                    var e = events[i];
                    if (!w.Matches(e))
                    {
                        continue;
                    }

                    if (w.CatchingUp)
                    {
                        w.Buffer.Add(e);
                        continue;
                    }

                    matched ??= [];
                    matched.Add(w.PrevKv
                        ? withPrev[i] ??= Kv.EventFrom(e, true)
                        : plain[i] ??= Kv.EventFrom(e, false));
                }

                if (matched is not null)
                {
                    Deliver(w, matched, revision);
                }
            }

            _published = revision;
        }
    }

    private void Deliver(Watcher w, List<Event> events, long revision)
    {
        w.SentSinceTick = true;
        if (!w.Fragment)
        {
            var response = new WatchResponse { Header = _kv.Header(revision), WatchId = w.Id };
            response.Events.AddRange(events);
            w.Stream.Send(response);
            return;
        }

        var part = new WatchResponse { Header = _kv.Header(revision), WatchId = w.Id };
        var size = 0;
        foreach (var e in events)
        {
            var eventSize = e.CalculateSize();
            if (part.Events.Count > 0 && size + eventSize > _fragmentBytes)
            {
                part.Fragment = true;
                w.Stream.Send(part);
                part = new WatchResponse { Header = _kv.Header(revision), WatchId = w.Id };
                size = 0;
            }

            part.Events.Add(e);
            size += eventSize;
        }

        w.Stream.Send(part);
    }

    private void Create(WatchStream stream, WatchCreateRequest request)
    {
        Watcher watcher;
        long from;
        lock (_lock)
        {
            var id = request.WatchId;
            if (id != 0 && stream.Watchers.ContainsKey(id))
            {
                stream.Send(new WatchResponse
                {
                    Header = _kv.Header(Published),
                    WatchId = -1,
                    Created = true,
                    Canceled = true,
                    CancelReason = "mvcc: duplicate watch ID provided on the WatchStream",
                });
                return;
            }

            if (id == 0)
            {
                while (stream.Watchers.ContainsKey(stream.NextId))
                {
                    stream.NextId++;
                }

                id = stream.NextId++;
            }

            var published = Published;
            watcher = new Watcher(stream, id, request);
            from = request.StartRevision;
            if (from <= 0)
            {
                watcher.StartRevision = published + 1;
            }

            watcher.CatchingUp = from > 0 && from <= published;
            watcher.CatchUpTo = published;
            stream.Send(new WatchResponse { Header = _kv.Header(published), WatchId = id, Created = true });
            stream.Watchers[id] = watcher;
            _watchers.Add(watcher);
        }

        if (watcher.CatchingUp)
        {
            _ = Task.Run(() => CatchUp(watcher, from));
        }
    }

    private void CatchUp(Watcher w, long from)
    {
        try
        {
            var to = w.CatchUpTo;
            var next = from;
            while (next <= to)
            {
                var (events, compact) = _log.Read(s => (s.Events(next, to, w.Range, HistoryChunk), s.CompactRevision));
                if (next < compact)
                {
                    Compacted(w, compact);
                    return;
                }

                var last = to;
                if (events.Count >= HistoryChunk)
                {
                    last = events[^1].Row.Revision;
                    if (events[0].Row.Revision == last)
                    {
                        events = _log.Read(s => s.Events(last, last, w.Range, 0));
                    }
                    else
                    {
                        events.RemoveAll(e => e.Row.Revision == last);
                        last--;
                    }
                }

                var matched = events.Where(w.Matches).Select(e => Kv.EventFrom(e, w.PrevKv)).ToList();
                if (matched.Count > 0)
                {
                    lock (_lock)
                    {
                        if (!_watchers.Contains(w))
                        {
                            return;
                        }

                        Deliver(w, matched, to);
                    }
                }

                next = last + 1;
            }

            lock (_lock)
            {
                if (!_watchers.Contains(w))
                {
                    return;
                }

                if (w.Buffer.Count > 0)
                {
                    Deliver(w, w.Buffer.Select(e => Kv.EventFrom(e, w.PrevKv)).ToList(), Published);
                    w.Buffer.Clear();
                }

                w.CatchingUp = false;
                if (w.Stream.ProgressPending && w.Stream.Watchers.Values.All(x => !x.CatchingUp))
                {
                    w.Stream.ProgressPending = false;
                    w.Stream.Send(new WatchResponse { Header = _kv.Header(Published), WatchId = -1 });
                }
            }
        }
        catch (Exception e)
        {
            _logger.LogWarning(e, "watch {WatchId} could not replay history; cancelling it", w.Id);
            lock (_lock)
            {
                _watchers.Remove(w);
                w.Stream.Watchers.Remove(w.Id);
                w.Stream.Send(new WatchResponse { Header = _kv.Header(Published), WatchId = w.Id, Canceled = true, CancelReason = e.Message });
            }
        }
    }

    private void Compacted(Watcher w, long compact)
    {
        lock (_lock)
        {
            _watchers.Remove(w);
            w.Stream.Watchers.Remove(w.Id);
            w.Stream.Send(new WatchResponse
            {
                Header = _kv.Header(Published),
                WatchId = w.Id,
                Canceled = true,
                CompactRevision = compact,
            });
        }
    }

    private void Cancel(WatchStream stream, long id)
    {
        lock (_lock)
        {
            if (stream.Watchers.Remove(id, out var w))
            {
                _watchers.Remove(w);
                stream.Send(new WatchResponse { Header = _kv.Header(Published), WatchId = id, Canceled = true });
            }
        }
    }

    private void Progress(WatchStream stream)
    {
        lock (_lock)
        {
            if (stream.Watchers.Values.Any(w => w.CatchingUp))
            {
                stream.ProgressPending = true;
                return;
            }

            stream.Send(new WatchResponse { Header = _kv.Header(Published), WatchId = -1 });
        }
    }

    private void Close(WatchStream stream)
    {
        lock (_lock)
        {
            foreach (var w in stream.Watchers.Values)
            {
                _watchers.Remove(w);
            }

            stream.Watchers.Clear();
            stream.Complete();
        }
    }

    /// <summary>The watches of one Watch RPC and the responses queued for it, in order.</summary>
    public sealed class WatchStream : IDisposable
    {
        private readonly WatchHub _hub;
        private readonly Channel<WatchResponse> _responses = Channel.CreateUnbounded<WatchResponse>(new UnboundedChannelOptions { SingleReader = true });

        internal WatchStream(WatchHub hub)
        {
            _hub = hub;
        }

        /// <summary>The responses to send, in order.</summary>
        public ChannelReader<WatchResponse> Responses => _responses.Reader;

        internal Dictionary<long, Watcher> Watchers { get; } = [];

        internal long NextId { get; set; }

        internal bool ProgressPending { get; set; }

        /// <summary>Handles one request of the stream.</summary>
        public void Handle(WatchRequest request)
        {
            switch (request.RequestUnionCase)
            {
                case WatchRequest.RequestUnionOneofCase.CreateRequest:
                    _hub.Create(this, request.CreateRequest);
                    break;
                case WatchRequest.RequestUnionOneofCase.CancelRequest:
                    _hub.Cancel(this, request.CancelRequest.WatchId);
                    break;
                case WatchRequest.RequestUnionOneofCase.ProgressRequest:
                    _hub.Progress(this);
                    break;
            }
        }

        /// <summary>Removes every watch of the stream.</summary>
        public void Dispose() => _hub.Close(this);

        internal void Send(WatchResponse response) => _responses.Writer.TryWrite(response);

        internal void Complete() => _responses.Writer.TryComplete();
    }

    internal sealed class Watcher(WatchStream stream, long id, WatchCreateRequest request)
    {
        public WatchStream Stream { get; } = stream;

        public long Id { get; } = id;

        public KeyRange Range { get; } = KeyRange.From(Kv.Bytes(request.Key), Kv.Bytes(request.RangeEnd));

        public long StartRevision { get; set; } = request.StartRevision;

        public bool PrevKv { get; } = request.PrevKv;

        public bool Fragment { get; } = request.Fragment;

        public bool ProgressNotify { get; } = request.ProgressNotify;

        public bool NoPut { get; } = request.Filters.Contains(WatchCreateRequest.Types.FilterType.Noput);

        public bool NoDelete { get; } = request.Filters.Contains(WatchCreateRequest.Types.FilterType.Nodelete);

        public bool CatchingUp { get; set; }

        public long CatchUpTo { get; set; }

        public List<LogEvent> Buffer { get; } = [];

        public bool SentSinceTick { get; set; }

        public bool Matches(LogEvent e) =>
            e.Row.Revision >= StartRevision &&
            (e.Row.Deleted ? !NoDelete : !NoPut) &&
            Range.Contains(e.Row.Key);
    }
}
