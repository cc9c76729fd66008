using Coracle.Plugins.Datastore.Sql.Logging;
using Coracle.Plugins.Datastore.Sql.Protos;
using Coracle.Plugins.Datastore.Sql.Storage;
using Grpc.Core;
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
    private readonly long _streamBufferBytes;
    private readonly Lock _lock = new();
    private readonly HashSet<Watcher> _watchers = [];
    private long _published = -1;

    /// <summary>The message a watch stream ends with when its client does not keep up (gRPC status Unavailable).</summary>
    public const string SlowStreamMessage = "etcdserver: watch stream closed: the client is not reading its events fast enough";

    /// <summary>
    /// Creates the hub and subscribes it to the log's commits (before the log opens). A stream whose unsent
    /// responses exceed <paramref name="streamBufferBytes"/> is closed (see <see cref="SlowStreamMessage"/>).
    /// </summary>
    public WatchHub(KvEngine kv, ILogger logger, int fragmentBytes, long streamBufferBytes = 64L * 1024 * 1024)
    {
        _kv = kv;
        _log = kv.Log;
        _logger = logger;
        _fragmentBytes = fragmentBytes;
        _streamBufferBytes = streamBufferBytes;
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
    public WatchStream OpenStream() => new(this, _streamBufferBytes);

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
                if (w.StartRevision > revision || w.Stream.Overflowed)
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
            _ = Task.Run(() => CatchUpAsync(watcher, from));
        }
    }

    private async Task CatchUpAsync(Watcher w, long from)
    {
        try
        {
            var to = w.CatchUpTo;
            var next = from;
            while (next <= to)
            {
                // History is read no faster than the client takes it: a replay never overflows the stream.
                while (w.Stream.QueuedBytes > _streamBufferBytes / 2 && !w.Stream.Overflowed && !w.Stream.Closed)
                {
                    await Task.Delay(10);
                }

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
                foreach (var batch in SplitAtRevisions(matched, _streamBufferBytes / 4))
                {
                    while (w.Stream.QueuedBytes > _streamBufferBytes / 2 && !w.Stream.Overflowed && !w.Stream.Closed)
                    {
                        await Task.Delay(10);
                    }

                    lock (_lock)
                    {
                        if (!_watchers.Contains(w))
                        {
                            return;
                        }

                        Deliver(w, batch, to);
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
            _logger.ReplayFailed(e, w.Id);
            lock (_lock)
            {
                _watchers.Remove(w);
                w.Stream.Watchers.Remove(w.Id);
                w.Stream.Send(new WatchResponse { Header = _kv.Header(Published), WatchId = w.Id, Canceled = true, CancelReason = e.Message });
            }
        }
    }

    // Replayed history in responses of about maxBytes, never splitting one revision's events.
    private static IEnumerable<List<Event>> SplitAtRevisions(List<Event> events, long maxBytes)
    {
        var batch = new List<Event>();
        var size = 0L;
        foreach (var e in events)
        {
            if (size >= maxBytes && batch[^1].Kv.ModRevision != e.Kv.ModRevision)
            {
                yield return batch;
                batch = [];
                size = 0;
            }

            batch.Add(e);
            size += e.CalculateSize();
        }

        if (batch.Count > 0)
        {
            yield return batch;
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

    // As etcd 3.5.13+ (the version kube-apiserver 1.32 needs for consistent reads from its watch cache): one response
    // with watch id -1 (the client broadcasts it to every watcher of the stream) at the current revision; deferred while
    // any watcher of the stream still replays history; nothing at all for a stream without watchers.
    private void Progress(WatchStream stream)
    {
        lock (_lock)
        {
            if (stream.Watchers.Count == 0)
            {
                return;
            }

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
            if (stream.Overflowed)
            {
                _logger.SlowWatchStreamClosed(_streamBufferBytes);
            }
        }
    }

    // Streams with responses to write, taken by one thread-pool work item: a commit seen by many watchers costs one
    // wake-up, not one per stream (the idle workers' spinning after each wake-up was most of a watch event's CPU).
    private readonly Lock _readyLock = new();
    private List<WatchStream> _ready = [];
    private List<WatchStream> _spare = [];
    private bool _dispatching;

    private void Schedule(WatchStream stream)
    {
        lock (_readyLock)
        {
            _ready.Add(stream);
            if (_dispatching)
            {
                return;
            }

            _dispatching = true;
        }

        ThreadPool.UnsafeQueueUserWorkItem(static hub => hub.Dispatch(), this, preferLocal: false);
    }

    private void Dispatch()
    {
        while (true)
        {
            List<WatchStream> streams;
            lock (_readyLock)
            {
                if (_ready.Count == 0)
                {
                    _dispatching = false;
                    return;
                }

                streams = _ready;
                _ready = _spare;
                _spare = streams;
            }

            foreach (var stream in streams)
            {
                stream.Drain();
            }

            streams.Clear();
        }
    }

    /// <summary>The watches of one Watch RPC and the responses queued for it, in order.</summary>
    public sealed class WatchStream : IDisposable
    {
        private const int DrainBatch = 64;
        private static readonly WriteOptions Buffered = new(WriteFlags.BufferHint);
        private readonly WatchHub _hub;
        private readonly long _limit;
        private readonly Lock _queueLock = new();
        private readonly Queue<(WatchResponse Response, int Size)> _responses = new();
        private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly CancellationTokenSource _aborted = new();
        private IServerStreamWriter<WatchResponse>? _writer;
        private CancellationToken _token;
        private CancellationTokenRegistration _cancelled;
        private bool _writing;
        private long _queued;

        internal WatchStream(WatchHub hub, long limit)
        {
            _hub = hub;
            _limit = limit;
        }

        /// <summary>Cancelled when the client fell too far behind; the RPC then ends with <see cref="SlowStreamMessage"/>.</summary>
        public CancellationToken Aborted => _aborted.Token;

        /// <summary>True once the unsent responses exceeded the limit; nothing more is queued.</summary>
        public bool Overflowed { get; private set; }

        /// <summary>Bytes of responses queued and not yet taken by the sender.</summary>
        public long QueuedBytes => Interlocked.Read(ref _queued);

        internal bool Closed { get; private set; }

        internal Dictionary<long, Watcher> Watchers { get; } = [];

        internal long NextId { get; set; }

        internal bool ProgressPending { get; set; }

        /// <summary>
        /// Writes the queued responses to <paramref name="writer"/>, in order, one write at a time, until the stream
        /// overflows or closes (the task then ends), <paramref name="cancellationToken"/> is cancelled (cancelled) or a
        /// write fails (faulted with its error).
        /// </summary>
        public Task RunAsync(IServerStreamWriter<WatchResponse> writer, CancellationToken cancellationToken)
        {
            lock (_queueLock)
            {
                _writer = writer;
                _token = cancellationToken;
            }

            _cancelled = cancellationToken.UnsafeRegister(static s => ((WatchStream)s!).Wake(), this);
            Wake();
            return _done.Task;
        }

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
        public void Dispose()
        {
            _hub.Close(this);
            _cancelled.Dispose();
            _aborted.Dispose();
        }

        // Called under the hub's lock. Past the limit the stream stops queueing and is aborted: its client resumes
        // from the last revision it received (etcd's clientv3 does so on Unavailable), so no event is lost.
        internal void Send(WatchResponse response)
        {
            if (Overflowed || Closed)
            {
                return;
            }

            // One response larger than the limit still goes out when nothing else is queued.
            var size = response.CalculateSize();
            var queued = Interlocked.Add(ref _queued, size);
            if (queued > _limit && queued > size)
            {
                Overflowed = true;
                Wake();
                _ = Task.Run(() =>
                {
                    try
                    {
                        _aborted.Cancel();
                    }
                    catch (ObjectDisposedException)
                    {
                    }
                });
                return;
            }

            lock (_queueLock)
            {
                _responses.Enqueue((response, size));
                if (_writing || _writer is null)
                {
                    return;
                }

                _writing = true;
            }

            _hub.Schedule(this);
        }

        internal void Complete()
        {
            Closed = true;
            Wake();
        }

        // Lets a sender see an overflow, a close or a cancellation when none is running.
        private void Wake()
        {
            lock (_queueLock)
            {
                if (_writing || _writer is null)
                {
                    return;
                }

                _writing = true;
            }

            _hub.Schedule(this);
        }

        // Runs with _writing set, as the only sender of the stream; writes until the queue is empty or a write has
        // to wait (its completion then carries on). Responses queued together go out in one flush (one HTTP/2 DATA
        // write for the connection), as etcd coalesces the events pending for a stream; after DrainBatch writes the
        // stream goes to the back of the hub's queue, so one busy stream does not hold up the others.
        internal void Drain()
        {
            try
            {
                for (var written = 0; ; written++)
                {
                    WatchResponse response;
                    bool more;
                    lock (_queueLock)
                    {
                        if (_token.IsCancellationRequested)
                        {
                            _writing = false;
                            _done.TrySetCanceled(_token);
                            return;
                        }

                        if (Overflowed || Closed)
                        {
                            _writing = false;
                            _done.TrySetResult();
                            return;
                        }

                        if (written == DrainBatch && _responses.Count > 0)
                        {
                            _hub.Schedule(this);
                            return;
                        }

                        if (!_responses.TryDequeue(out var next))
                        {
                            _writing = false;
                            return;
                        }

                        Interlocked.Add(ref _queued, -next.Size);
                        response = next.Response;
                        more = _responses.Count > 0 && written + 1 < DrainBatch;
                    }

                    _writer!.WriteOptions = more ? Buffered : null;
                    var write = _writer.WriteAsync(response, _token);
                    if (!write.IsCompletedSuccessfully)
                    {
                        _ = ContinueAsync(write);
                        return;
                    }
                }
            }
            catch (Exception e)
            {
                Fail(e);
            }
        }

        private async Task ContinueAsync(Task write)
        {
            try
            {
                await write.ConfigureAwait(false);
            }
            catch (Exception e)
            {
                Fail(e);
                return;
            }

            Drain();
        }

        // A failed write ends the sender; the stream keeps _writing set, so nothing is written after it.
        private void Fail(Exception e)
        {
            if (e is OperationCanceledException && _token.IsCancellationRequested)
            {
                _done.TrySetCanceled(_token);
            }
            else
            {
                _done.TrySetException(e);
            }
        }
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
