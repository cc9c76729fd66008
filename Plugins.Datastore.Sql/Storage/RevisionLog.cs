using System.Collections.Concurrent;
using System.Data.Common;
using System.Diagnostics;
using Coracle.Plugins.Datastore.Sql.Logging;
using Microsoft.Extensions.Logging;

namespace Coracle.Plugins.Datastore.Sql.Storage;

/// <summary>Tuning of the revision log.</summary>
public sealed record RevisionLogOptions
{
    /// <summary>Most pending operations one transaction (one fsync) commits.</summary>
    public int MaxBatch { get; init; } = 256;

    /// <summary>Revisions one compaction transaction covers, so that writers are never held up for long.</summary>
    public int CompactBatchRevisions { get; init; } = 500;

    /// <summary>Idle connections kept open for readers.</summary>
    public int MaxIdleConnections { get; init; } = 16;

    /// <summary>The WAL size above which the writer forces a truncating checkpoint (SQLite).</summary>
    public long WalCheckpointBytes { get; init; } = 8L << 20;

    /// <summary>
    /// How long the writer must be idle before it checkpoints and truncates the WAL (SQLite). Longer than a
    /// kubelet heartbeat period (10 s), so periodic small writes are checkpointed by SQLite's 1000-page automatic
    /// checkpoints instead, which write each hot page to the database once per ~4 MiB of WAL rather than once per
    /// burst (measured: 5.6 → 4.0 KB written per heartbeat update). Durability does not depend on it.
    /// </summary>
    public TimeSpan IdleCheckpoint { get; init; } = TimeSpan.FromSeconds(30);
}

/// <summary>The write position within a batch: hands out revisions and row ids and collects events.</summary>
public sealed class WriteScope
{
    private long _pending;
    private int _sub;

    internal WriteScope(long revision, long compactRevision)
    {
        Revision = revision;
        CompactRevision = compactRevision;
    }

    /// <summary>The newest revision written so far (committed before the batch or earlier in it).</summary>
    public long Revision { get; private set; }

    /// <summary>The compacted revision.</summary>
    public long CompactRevision { get; set; }

    /// <summary>The revision the current operation writes, or 0 while it has written nothing.</summary>
    public long PendingRevision => _pending;

    /// <summary>The revision reads inside the current operation see.</summary>
    public long VisibleRevision => _pending != 0 ? _pending : Revision;

    internal List<LogEvent> Events { get; } = [];

    /// <summary>Allocates the next row id, opening the operation's revision on first use.</summary>
    public long NextId()
    {
        if (_pending == 0)
        {
            _pending = Revision + 1;
            _sub = 0;
        }

        if (_sub >= LogIds.MaxRowsPerRevision)
        {
            throw new InvalidOperationException($"one revision cannot change more than {LogIds.MaxRowsPerRevision} keys");
        }

        return LogIds.First(_pending) + _sub++;
    }

    /// <summary>Records a committed-to-be change for watchers.</summary>
    public void Emit(LogEvent e) => Events.Add(e);

    internal void CloseOperation()
    {
        if (_pending != 0)
        {
            Revision = _pending;
            _pending = 0;
        }
    }
}

/// <summary>Counters the metrics endpoint reads.</summary>
public sealed class LogStats
{
    internal long _batches;
    internal long _operations;
    internal long _compactedRows;
    internal long _compactions;
    internal long _commitTicks;

    /// <summary>Committed transactions.</summary>
    public long Batches => Interlocked.Read(ref _batches);

    /// <summary>Operations committed.</summary>
    public long Operations => Interlocked.Read(ref _operations);

    /// <summary>Rows removed by compaction.</summary>
    public long CompactedRows => Interlocked.Read(ref _compactedRows);

    /// <summary>Compactions finished.</summary>
    public long Compactions => Interlocked.Read(ref _compactions);

    /// <summary>Total time spent committing, in seconds.</summary>
    public double CommitSeconds => Interlocked.Read(ref _commitTicks) / (double)Stopwatch.Frequency;
}

/// <summary>
/// The revision log: an append-only table of key versions with a current-key index. One writer thread
/// drains pending operations into one transaction (group commit, strict revision order); readers run
/// snapshot transactions on pooled connections; committed changes are pushed to <see cref="Committed"/>
/// in revision order (and, on a shared database, other servers' changes are followed by notification and polling).
/// </summary>
public sealed class RevisionLog : IAsyncDisposable
{
    private readonly SqlDialect _dialect;
    private readonly ILogger _logger;
    private readonly RevisionLogOptions _options;
    private readonly ConcurrentBag<PooledConnection> _idle = [];
    private readonly BlockingCollection<WriteOp> _queue = new(new ConcurrentQueue<WriteOp>());
    private readonly Lock _publishLock = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly SemaphoreSlim _pollSignal = new(0, 1);
    private Thread? _writer;
    private Task _follower = Task.CompletedTask;
    private long _revision;
    private long _compactRevision;
    private long _publishedRevision;
    private long _compactDone;
    private bool _opened;

    /// <summary>Creates the log over a dialect; nothing is opened yet.</summary>
    public RevisionLog(SqlDialect dialect, ILogger logger, RevisionLogOptions? options = null)
    {
        _dialect = dialect;
        _logger = logger;
        _options = options ?? new RevisionLogOptions();
    }

    /// <summary>Receives committed changes in revision order with the newest revision; set before <see cref="OpenAsync"/>.</summary>
    public Action<IReadOnlyList<LogEvent>, long>? Committed { get; set; }

    /// <summary>The dialect.</summary>
    public SqlDialect Dialect => _dialect;

    /// <summary>Counters.</summary>
    public LogStats Stats { get; } = new();

    /// <summary>The newest revision this server knows is committed.</summary>
    public long Revision => Interlocked.Read(ref _revision);

    /// <summary>The compacted revision.</summary>
    public long CompactRevision => Interlocked.Read(ref _compactRevision);

    /// <summary>The revision up to which rows were physically removed.</summary>
    public long CompactedPhysically => Interlocked.Read(ref _compactDone);

    /// <summary>Checks and opens the store, creates the schema and starts the writer.</summary>
    public async Task OpenAsync(CancellationToken cancellationToken)
    {
        if (_dialect.Verify is not null)
        {
            await _dialect.Verify(cancellationToken);
        }

        PooledConnection connection;
        try
        {
            connection = Open();
        }
        catch (DbException e)
        {
            throw new DatastoreOpenException($"cannot open the {_dialect.Name} datastore at {_dialect.Location}: {e.Message}", e);
        }

        try
        {
            foreach (var statement in _dialect.Schema)
            {
                connection.Command(statement).ExecuteNonQuery();
            }

            var session = BeginSession(connection, write: false);
            try
            {
                var schema = session.GetMeta("schema");
                if (schema != 1)
                {
                    throw new DatastoreOpenException($"the datastore at {_dialect.Location} has schema version {schema}; this Coracle reads version 1");
                }

                _revision = session.Revision;
                _publishedRevision = session.Revision;
                _compactRevision = session.CompactRevision;
                _compactDone = session.GetMeta("compact_done");
            }
            finally
            {
                EndSession(connection, commit: true);
            }
        }
        catch (DbException e)
        {
            connection.Dispose();
            throw new DatastoreOpenException($"cannot prepare the {_dialect.Name} datastore at {_dialect.Location}: {e.Message}", e);
        }

        _writer = new Thread(() => WriterLoop(connection)) { IsBackground = true, Name = "coracle-sql-writer" };
        _writer.Start();
        _opened = true;
        if (_dialect.SharedWriters)
        {
            _follower = Task.Run(() => FollowAsync(_stop.Token), CancellationToken.None);
        }
    }

    /// <summary>Runs a read in a snapshot transaction.</summary>
    public T Read<T>(Func<LogSession, T> body)
    {
        var connection = Rent();
        var ok = false;
        try
        {
            var session = BeginSession(connection, write: false);
            var result = body(session);
            EndSession(connection, commit: true);
            ok = true;
            return result;
        }
        finally
        {
            if (!ok)
            {
                TryRollback(connection);
            }

            Return(connection);
        }
    }

    /// <summary>
    /// Queues a write. The body runs on the writer thread inside the batch transaction; it must throw before
    /// changing anything when it rejects the request (then only it fails). The task completes after commit.
    /// </summary>
    public Task<T> WriteAsync<T>(Func<LogSession, WriteScope, T> body)
    {
        var op = new WriteOp<T>(body);
        Enqueue(op);
        return op.Task;
    }

    /// <summary>Runs work on the writer's connection outside any transaction (defragment, snapshot, checkpoint).</summary>
    public Task<T> ExclusiveAsync<T>(Func<DbConnection, T> body)
    {
        var op = new ExclusiveOp<T>(body);
        Enqueue(op);
        return op.Task;
    }

    /// <summary>Marks revisions up to <paramref name="revision"/> compacted (validated by the caller inside a write).</summary>
    public void SetCompacted(LogSession session, WriteScope context, long revision)
    {
        session.SetMeta("compact", revision);
        context.CompactRevision = revision;
    }

    /// <summary>Physically removes rows no read at or after the compacted revision needs, in short batches.</summary>
    public async Task CompactPhysicallyAsync(CancellationToken cancellationToken)
    {
        var target = CompactRevision;
        var done = CompactedPhysically;
        var removed = 0L;
        while (done < target && !cancellationToken.IsCancellationRequested)
        {
            var from = done + 1;
            var to = Math.Min(target, done + _options.CompactBatchRevisions);
            removed += await WriteAsync((s, _) =>
            {
                var n = s.CompactRows(LogIds.First(from), LogIds.End(to), LogIds.End(target));
                s.SetMeta("compact_done", to);
                return n;
            });
            done = to;
            Interlocked.Exchange(ref _compactDone, done);
        }

        Interlocked.Add(ref Stats._compactedRows, removed);
        Interlocked.Increment(ref Stats._compactions);
        if (removed > 0 && _dialect.CheckpointsWal)
        {
            await ExclusiveAsync(c =>
            {
                using var cmd = c.CreateCommand();
                cmd.CommandText = "PRAGMA incremental_vacuum(2000)";
                cmd.ExecuteNonQuery();
                return 0;
            });
        }
    }

    /// <summary>Stops accepting writes, finishes the queued ones and closes every connection.</summary>
    public async ValueTask DisposeAsync()
    {
        if (!_queue.IsAddingCompleted)
        {
            _queue.CompleteAdding();
        }

        await _stop.CancelAsync();
        if (_writer is not null)
        {
            await Task.Run(() => _writer.Join(), CancellationToken.None);
        }

        try
        {
            await _follower;
        }
        catch (OperationCanceledException)
        {
        }

        while (_idle.TryTake(out var connection))
        {
            connection.Dispose();
        }

        _stop.Dispose();
        _pollSignal.Dispose();
        _queue.Dispose();
    }

    private void Enqueue(WriteOp op)
    {
        if (!_opened)
        {
            throw new InvalidOperationException("the revision log is not open");
        }

        try
        {
            _queue.Add(op);
        }
        catch (InvalidOperationException)
        {
            throw new ObjectDisposedException(nameof(RevisionLog), "the datastore is shutting down");
        }
    }

    private void WriterLoop(PooledConnection connection)
    {
        var batch = new List<WriteOp>(_options.MaxBatch);
        var dirty = false;
        var lastCheckpoint = Stopwatch.GetTimestamp();
        while (true)
        {
            WriteOp? first;
            try
            {
                if (!_queue.TryTake(out first, dirty ? (int)_options.IdleCheckpoint.TotalMilliseconds : Timeout.Infinite))
                {
                    if (_queue.IsCompleted)
                    {
                        break;
                    }

                    // Idle: give the WAL back.
                    Checkpoint(connection, "TRUNCATE", BriefWait);
                    dirty = false;
                    lastCheckpoint = Stopwatch.GetTimestamp();
                    continue;
                }
            }
            catch (InvalidOperationException)
            {
                break;
            }

            if (first is ExclusiveOp)
            {
                connection = RunExclusive(connection, first);
                continue;
            }

            batch.Clear();
            batch.Add(first);
            WriteOp? held = null;
            while (batch.Count < _options.MaxBatch && _queue.TryTake(out var next))
            {
                if (next is ExclusiveOp)
                {
                    held = next;
                    break;
                }

                batch.Add(next);
            }

            connection = Commit(connection, batch);
            dirty = true;
            if (held is not null)
            {
                connection = RunExclusive(connection, held);
            }

            if (_dialect.CheckpointsWal && Stopwatch.GetElapsedTime(lastCheckpoint) > TimeSpan.FromSeconds(5))
            {
                lastCheckpoint = Stopwatch.GetTimestamp();
                var wal = new FileInfo(_dialect.Location + "-wal");
                if (wal.Exists && wal.Length > _options.WalCheckpointBytes)
                {
                    Checkpoint(connection, "TRUNCATE", BriefWait);
                }
            }
        }

        if (dirty)
        {
            Checkpoint(connection, "TRUNCATE");
        }

        connection.Dispose();
    }

    /// <summary>
    /// How long a checkpoint while the store runs waits for readers (SQLite's busy handler). A TRUNCATE checkpoint waits
    /// until no reader uses the WAL, and it runs on the writer thread: with the connection's 30 s busy timeout, steady
    /// readers could hold every write for that long. One that finds readers gives up and the next pass tries again.
    /// </summary>
    private const int BriefWait = 200;

    /// <summary>Checkpoints the WAL; <paramref name="waitMs"/> bounds the wait for readers (0: the connection's busy timeout).</summary>
    private void Checkpoint(PooledConnection connection, string mode, int waitMs = 0)
    {
        if (!_dialect.CheckpointsWal)
        {
            return;
        }

        try
        {
            if (waitMs > 0)
            {
                connection.Command($"PRAGMA busy_timeout = {waitMs}").ExecuteNonQuery();
            }

            connection.Command($"PRAGMA wal_checkpoint({mode})").ExecuteNonQuery();
        }
        catch (DbException e)
        {
            _logger.CheckpointFailed(e, _dialect.Location);
        }
        finally
        {
            if (waitMs > 0)
            {
                RestoreBusyTimeout(connection);
            }
        }
    }

    private void RestoreBusyTimeout(PooledConnection connection)
    {
        foreach (var statement in _dialect.OnOpen.Where(s => s.StartsWith("PRAGMA busy_timeout", StringComparison.Ordinal)))
        {
            connection.Command(statement).ExecuteNonQuery();
        }
    }

    private PooledConnection RunExclusive(PooledConnection connection, WriteOp op)
    {
        try
        {
            ((ExclusiveOp)op).Run(connection.Connection);
        }
        catch (Exception e)
        {
            op.Fail(e);
        }

        op.Complete();
        return connection;
    }

    private PooledConnection Commit(PooledConnection connection, List<WriteOp> batch)
    {
        var started = Stopwatch.GetTimestamp();
        WriteScope context;
        try
        {
            context = RunBatch(connection, batch);
        }
        catch (Exception e)
        {
            TryRollback(connection);
            if (connection.Broken || e is DbException)
            {
                connection.Dispose();
                connection = ReopenWriter();
            }

            if (batch.Count > 1)
            {
                // One operation broke the shared transaction: retry each alone so only it fails.
                foreach (var op in batch)
                {
                    op.Reset();
                    connection = Commit(connection, [op]);
                }

                return connection;
            }

            _logger.WriteFailed(e, _dialect.Name);
            batch[0].Fail(e is DbException ? new DatastoreUnavailableException(e.Message, e) : e);
            batch[0].Complete();
            return connection;
        }

        Interlocked.Add(ref Stats._commitTicks, Stopwatch.GetTimestamp() - started);
        Interlocked.Increment(ref Stats._batches);
        Interlocked.Add(ref Stats._operations, batch.Count);
        Interlocked.Exchange(ref _compactRevision, context.CompactRevision);
        Publish(context);
        foreach (var op in batch)
        {
            op.Complete();
        }

        return connection;
    }

    private WriteScope RunBatch(PooledConnection connection, List<WriteOp> batch)
    {
        connection.Transaction = _dialect.BeginWrite(connection.Connection);
        var revision = Convert.ToInt64(connection.Command(_dialect.Sql.LockRevision).ExecuteScalar());
        var session = new LogSession(connection, _dialect.Sql, revision, 0);
        session.CompactRevision = session.GetMeta("compact");
        var context = new WriteScope(revision, session.CompactRevision);
        foreach (var op in batch)
        {
            try
            {
                op.Run(session, context);
            }
            catch (Exception e) when (context.PendingRevision == 0 && e is not DbException)
            {
                // Rejected before it changed anything: only this operation fails.
                op.Fail(e);
            }

            context.CloseOperation();
        }

        if (context.Revision != revision)
        {
            session.SetMeta("rev", context.Revision);
            if (_dialect.NotifyStatement is not null)
            {
                session.Execute(_dialect.NotifyStatement);
            }
        }

        connection.Transaction.Commit();
        connection.Transaction.Dispose();
        connection.Transaction = null;
        return context;
    }

    private void Publish(WriteScope context)
    {
        lock (_publishLock)
        {
            if (context.Revision <= _publishedRevision)
            {
                return;
            }

            var first = context.Events.Count > 0 ? context.Events[0].Row.Revision : context.Revision;
            if (_dialect.SharedWriters && first != _publishedRevision + 1)
            {
                // Another server committed in between: the follower reads the gap from the database in order.
                if (_pollSignal.CurrentCount == 0)
                {
                    _pollSignal.Release();
                }

                return;
            }

            if (context.Events.Count > 0)
            {
                Committed?.Invoke(context.Events, context.Revision);
            }

            _publishedRevision = context.Revision;
            Interlocked.Exchange(ref _revision, context.Revision);
        }
    }

    private async Task FollowAsync(CancellationToken cancellationToken)
    {
        var listener = _dialect.ListenForCommits?.Invoke(
            () =>
            {
                try
                {
                    if (_pollSignal.CurrentCount == 0)
                    {
                        _pollSignal.Release();
                    }
                }
                catch (ObjectDisposedException)
                {
                }
                catch (SemaphoreFullException)
                {
                }
            },
            cancellationToken) ?? Task.CompletedTask;
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await _pollSignal.WaitAsync(_dialect.PollInterval, cancellationToken);
                CatchUp();
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                break;
            }
            catch (DbException e)
            {
                _logger.FollowFailed(e, _dialect.Name);
            }
        }

        try
        {
            await listener;
        }
        catch (OperationCanceledException)
        {
        }
    }

    private void CatchUp()
    {
        var from = Interlocked.Read(ref _publishedRevision);
        var (events, revision, compact) = Read(s => (s.Revision > from ? s.Events(from + 1, s.Revision, new KeyRange(RangeKind.Open, [], []), 0) : [], s.Revision, s.CompactRevision));
        lock (_publishLock)
        {
            Interlocked.Exchange(ref _compactRevision, Math.Max(compact, CompactRevision));
            if (revision <= _publishedRevision)
            {
                return;
            }

            var fresh = events.Where(e => e.Row.Revision > _publishedRevision).ToList();
            if (fresh.Count > 0)
            {
                Committed?.Invoke(fresh, revision);
            }

            _publishedRevision = revision;
            Interlocked.Exchange(ref _revision, revision);
        }
    }

    private PooledConnection ReopenWriter()
    {
        while (true)
        {
            try
            {
                return Open();
            }
            catch (DbException e) when (!_stop.IsCancellationRequested)
            {
                _logger.ReconnectingWriter(e, _dialect.Name);
                Thread.Sleep(1000);
            }
        }
    }

    private LogSession BeginSession(PooledConnection connection, bool write)
    {
        connection.Transaction = write ? _dialect.BeginWrite(connection.Connection) : _dialect.BeginRead(connection.Connection);
        using var reader = connection.Command(_dialect.Sql.ReadMeta).ExecuteReader();
        reader.Read();
        var revision = reader.GetInt64(0);
        var compact = reader.GetInt64(1);
        return new LogSession(connection, _dialect.Sql, revision, compact);
    }

    private static void EndSession(PooledConnection connection, bool commit)
    {
        if (connection.Transaction is { } txn)
        {
            if (commit)
            {
                txn.Commit();
            }
            else
            {
                txn.Rollback();
            }

            txn.Dispose();
            connection.Transaction = null;
        }
    }

    private static void TryRollback(PooledConnection connection)
    {
        try
        {
            EndSession(connection, commit: false);
        }
        catch (Exception)
        {
            connection.Broken = true;
            connection.Transaction = null;
        }
    }

    private PooledConnection Rent()
    {
        if (_idle.TryTake(out var connection))
        {
            return connection;
        }

        try
        {
            return Open();
        }
        catch (DbException e)
        {
            throw new DatastoreUnavailableException(e.Message, e);
        }
    }

    private void Return(PooledConnection connection)
    {
        if (connection.Broken || _stop.IsCancellationRequested || _idle.Count >= _options.MaxIdleConnections)
        {
            connection.Dispose();
            return;
        }

        _idle.Add(connection);
    }

    private PooledConnection Open()
    {
        var db = _dialect.CreateConnection();
        db.Open();
        var connection = new PooledConnection(db);
        foreach (var statement in _dialect.OnOpen)
        {
            connection.Command(statement).ExecuteNonQuery();
        }

        return connection;
    }

    private abstract class WriteOp
    {
        public abstract void Run(LogSession session, WriteScope context);

        public abstract void Fail(Exception error);

        public abstract void Reset();

        public abstract void Complete();
    }

    private sealed class WriteOp<T>(Func<LogSession, WriteScope, T> body) : WriteOp
    {
        private readonly TaskCompletionSource<T> _tcs = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private T? _result;
        private Exception? _error;

        public Task<T> Task => _tcs.Task;

        public override void Run(LogSession session, WriteScope context) => _result = body(session, context);

        public override void Fail(Exception error) => _error = error;

        public override void Reset()
        {
            _result = default;
            _error = null;
        }

        public override void Complete()
        {
            if (_error is not null)
            {
                _tcs.TrySetException(_error);
            }
            else
            {
                _tcs.TrySetResult(_result!);
            }
        }
    }

    private abstract class ExclusiveOp : WriteOp
    {
        public override void Run(LogSession session, WriteScope context) => throw new InvalidOperationException();

        public abstract void Run(DbConnection connection);
    }

    private sealed class ExclusiveOp<T>(Func<DbConnection, T> body) : ExclusiveOp
    {
        private readonly TaskCompletionSource<T> _tcs = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private T? _result;
        private Exception? _error;

        public Task<T> Task => _tcs.Task;

        public override void Run(DbConnection connection) => _result = body(connection);

        public override void Fail(Exception error) => _error = error;

        public override void Reset() => _error = null;

        public override void Complete()
        {
            if (_error is not null)
            {
                _tcs.TrySetException(_error);
            }
            else
            {
                _tcs.TrySetResult(_result!);
            }
        }
    }
}

/// <summary>The database failed a request (connection lost, disk error); the request may be retried.</summary>
public sealed class DatastoreUnavailableException : Exception
{
    /// <summary>Creates the error.</summary>
    public DatastoreUnavailableException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
