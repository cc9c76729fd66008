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

    /// <summary>
    /// Write economy (SQLite only): keys under these prefixes are served from memory and written to disk at most every
    /// <see cref="VolatileFlushInterval"/>; empty turns the mode off (every write is committed with an fsync).
    /// </summary>
    public IReadOnlyList<string> VolatilePrefixes { get; init; } = [];

    /// <summary>How often changes of volatile keys reach the disk: at most this much of them is lost in a power cut.</summary>
    public TimeSpan VolatileFlushInterval { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Revisions reserved on disk ahead of use, so that revisions never repeat after a crash lost volatile ones.</summary>
    public long RevisionReserveBlock { get; init; } = 10_000;
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
    internal long _volatileFlushes;
    internal long _volatileFlushedRows;
    internal long _volatileFlushedBytes;
    internal long _volatileBatches;

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

    /// <summary>Write economy: flushes of volatile rows to disk.</summary>
    public long VolatileFlushes => Interlocked.Read(ref _volatileFlushes);

    /// <summary>Write economy: volatile rows written to disk (by flushes and by transactions that also wrote durable keys).</summary>
    public long VolatileFlushedRows => Interlocked.Read(ref _volatileFlushedRows);

    /// <summary>Write economy: bytes of keys and values (plus 48 per row) of the volatile rows written to disk.</summary>
    public long VolatileFlushedBytes => Interlocked.Read(ref _volatileFlushedBytes);

    /// <summary>Write economy: batches that changed only volatile keys and so needed no commit.</summary>
    public long VolatileBatches => Interlocked.Read(ref _volatileBatches);
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
    private readonly VolatileStore? _volatile;
    private long _reserved;
    private long _volatileCompactFlushed;
    private long _lastFlush = Stopwatch.GetTimestamp();

    /// <summary>Creates the log over a dialect; nothing is opened yet.</summary>
    public RevisionLog(SqlDialect dialect, ILogger logger, RevisionLogOptions? options = null)
    {
        _dialect = dialect;
        _logger = logger;
        _options = options ?? new RevisionLogOptions();
        if (_options.VolatilePrefixes.Count > 0)
        {
            if (!dialect.SupportsWriteEconomy)
            {
                throw new ArgumentException($"write economy (volatile prefixes) is supported by the SQLite datastore only, not by {dialect.Name}");
            }

            _volatile = new VolatileStore(_options.VolatilePrefixes);
        }
    }

    /// <summary>True when write economy is on: volatile keys are kept in memory and flushed periodically.</summary>
    public bool WriteEconomy => _volatile is not null;

    /// <summary>Volatile rows in memory and how many of them are not on disk yet (0, 0 when write economy is off).</summary>
    public (int Rows, int Unflushed) VolatileRows => _volatile is null ? (0, 0) : (_volatile.Count, _volatile.Unflushed);

    /// <summary>The revision up to which revisions are reserved on disk (write economy).</summary>
    public long ReservedRevision => Interlocked.Read(ref _reserved);

    /// <summary>Writes every volatile change that is not on disk yet (before a snapshot, for example).</summary>
    public Task<long> FlushVolatileAsync() => _volatile is null
        ? Task.FromResult(0L)
        : EnqueueExclusive(new ExclusiveOp<long>(_ => 0) { FlushVolatileFirst = true });

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

            if (_dialect.SupportsWriteEconomy)
            {
                foreach (var statement in VolatileStore.Schema)
                {
                    connection.Command(statement).ExecuteNonQuery();
                }

                OpenVolatile(connection);
            }

            var session = BeginSession(connection, write: false);
            try
            {
                var schema = session.GetMeta("schema");
                if (schema != 1)
                {
                    throw new DatastoreOpenException($"the datastore at {_dialect.Location} has schema version {schema}; this Coracle reads version 1");
                }

                var start = session.Revision;
                if (_dialect.SupportsWriteEconomy)
                {
                    // After a crash with write economy on, volatile revisions up to the reservation may have been
                    // handed out and lost: continue above all of them.
                    _reserved = session.GetMeta("reserved");
                    if (_reserved > start)
                    {
                        _logger.RevisionsSkipped(start, _reserved);
                        start = _reserved;
                    }
                }

                _revision = start;
                _publishedRevision = start;
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
    public Task<T> ExclusiveAsync<T>(Func<DbConnection, T> body) => EnqueueExclusive(new ExclusiveOp<T>(body));

    /// <summary>
    /// Like <see cref="ExclusiveAsync{T}(Func{DbConnection, T})"/>, but every volatile change is written to the database
    /// first, in the same turn of the writer, so <paramref name="body"/> sees the whole store (a snapshot).
    /// </summary>
    public Task<T> ExclusiveWithVolatileFlushedAsync<T>(Func<DbConnection, T> body) =>
        EnqueueExclusive(new ExclusiveOp<T>(body) { FlushVolatileFirst = _volatile is not null });

    private Task<T> EnqueueExclusive<T>(ExclusiveOp<T> op)
    {
        Enqueue(op);
        return op.Task;
    }

    /// <summary>
    /// Write economy at open: moves the rows of keys that became volatile out of the log into <c>coracle_volatile</c>
    /// and those of keys no longer volatile (or all, with the mode off) back, then loads the volatile rows.
    /// </summary>
    private void OpenVolatile(PooledConnection connection)
    {
        var (condition, parameters) = _volatile?.Condition() ?? ("1 = 0", []);
        var columns = "id, name, create_revision, version, lease, value, deleted, prev_id";
        string[] statements =
        [
            $"INSERT OR REPLACE INTO coracle_volatile({columns}) SELECT {columns} FROM coracle_log WHERE {condition}",
            $"DELETE FROM coracle_log WHERE {condition}",
            $"DELETE FROM coracle_current WHERE {condition}",
            $"INSERT OR REPLACE INTO coracle_log({columns}) SELECT {columns} FROM coracle_volatile WHERE NOT ({condition})",
            $"INSERT OR REPLACE INTO coracle_current(name, id, lease) SELECT v.name, v.id, v.lease FROM coracle_volatile v WHERE v.deleted = 0 AND NOT ({condition.Replace("name", "v.name", StringComparison.Ordinal)}) AND v.id = (SELECT MAX(w.id) FROM coracle_volatile w WHERE w.name = v.name)",
            $"DELETE FROM coracle_volatile WHERE NOT ({condition})",
            VolatileStore.RaiseCompactToFloor,
        ];
        connection.Transaction = _dialect.BeginWrite(connection.Connection);
        try
        {
            foreach (var statement in statements)
            {
                var cmd = connection.Command(statement);
                foreach (var (name, value) in parameters)
                {
                    LogSession.Add(cmd, name, value);
                }

                cmd.ExecuteNonQuery();
            }

            connection.Transaction.Commit();
        }
        finally
        {
            connection.Transaction.Dispose();
            connection.Transaction = null;
        }

        if (_volatile is null)
        {
            return;
        }

        using var reader = connection.Command(VolatileStore.LoadRows).ExecuteReader();
        while (reader.Read())
        {
            _volatile.Add(
                new LogRow(
                    reader.GetInt64(0),
                    reader.GetFieldValue<byte[]>(1),
                    reader.GetInt64(2),
                    reader.GetInt64(3),
                    reader.GetInt64(4),
                    reader.IsDBNull(5) ? [] : reader.GetFieldValue<byte[]>(5),
                    reader.GetInt64(6) != 0,
                    reader.GetInt64(7)),
                flushed: true);
        }
    }

    /// <summary>
    /// Writes the volatile rows not yet on disk and removes the ones compaction made invisible, in one transaction on
    /// the writer's connection. Only what a restart needs is written: the newest row of each changed key (a deleted
    /// key's rows are removed), the older rows of those keys are deleted, and the flush's revision is recorded as the
    /// floor below which the next open treats history as compacted. With <paramref name="final"/> (a clean stop) the
    /// reservation is brought back to the newest revision, so the next start continues without a gap. Returns the
    /// rows taken off the unflushed queue.
    /// </summary>
    private int FlushVolatile(PooledConnection connection, bool final)
    {
        _lastFlush = Stopwatch.GetTimestamp();
        if (_volatile is null)
        {
            return 0;
        }

        var rows = _volatile.TakeUnflushed();
        var compact = CompactRevision;
        var revision = Revision;
        if (rows.Count == 0 && compact <= _volatileCompactFlushed && !(final && _reserved > revision))
        {
            return 0;
        }

        try
        {
            connection.Transaction = _dialect.BeginWrite(connection.Connection);
            var session = new LogSession(connection, _dialect.Sql, revision, compact);
            var newest = VolatileStore.NewestPerKey(rows);
            var bytes = session.WriteVolatile(newest.Where(r => !r.Deleted));
            foreach (var row in newest)
            {
                var delete = connection.Command(VolatileStore.DeleteOlderRows);
                LogSession.Add(delete, "@k", row.Key);
                LogSession.Add(delete, "@id", row.Id);
                delete.ExecuteNonQuery();
            }

            if (newest.Count > 0)
            {
                session.SetMeta(VolatileStore.FloorMeta, revision);
            }

            if (compact > _volatileCompactFlushed)
            {
                session.CompactVolatile(LogIds.End(compact));
            }

            if (final)
            {
                session.SetMeta("rev", Math.Max(revision, Convert.ToInt64(connection.Command(_dialect.Sql.LockRevision).ExecuteScalar())));
                session.SetMeta("reserved", revision);
            }

            connection.Transaction.Commit();
            connection.Transaction.Dispose();
            connection.Transaction = null;
            _volatile.MarkFlushed(rows);
            _volatileCompactFlushed = compact;
            if (final)
            {
                _reserved = revision;
            }

            Interlocked.Increment(ref Stats._volatileFlushes);
            Interlocked.Add(ref Stats._volatileFlushedRows, newest.Count(r => !r.Deleted));
            Interlocked.Add(ref Stats._volatileFlushedBytes, bytes);
            return rows.Count;
        }
        catch (DbException e)
        {
            TryRollback(connection);
            _logger.VolatileFlushFailed(e, _dialect.Location);
            return 0;
        }
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
                var wait = dirty ? (int)_options.IdleCheckpoint.TotalMilliseconds : Timeout.Infinite;
                var flushDue = FlushDueInMs();
                var waitForFlush = false;
                if (flushDue >= 0 && (wait == Timeout.Infinite || flushDue < wait))
                {
                    wait = flushDue;
                    waitForFlush = true;
                }

                if (!_queue.TryTake(out first, wait))
                {
                    if (_queue.IsCompleted)
                    {
                        break;
                    }

                    // A timed wait may end a few milliseconds early: when it was the flush's, flush (not the idle
                    // checkpoint, which would copy the WAL into the database before every flush).
                    if (waitForFlush || FlushDueInMs() == 0)
                    {
                        dirty |= FlushVolatile(connection, final: false) > 0;
                        continue;
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

            var volatileBatches = Stats.VolatileBatches;
            connection = Commit(connection, batch);
            dirty |= Stats.VolatileBatches == volatileBatches;
            if (FlushDueInMs() == 0)
            {
                dirty |= FlushVolatile(connection, final: false) > 0;
            }

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

        // A clean stop writes every volatile change, so the next start continues without a revision gap.
        dirty |= FlushVolatile(connection, final: true) > 0 || _volatile is not null;
        if (dirty)
        {
            Checkpoint(connection, "TRUNCATE");
        }

        connection.Dispose();
    }

    /// <summary>Milliseconds until volatile rows are due to be flushed; -1 when none wait (or write economy is off).</summary>
    private int FlushDueInMs()
    {
        if (_volatile is null || _volatile.Unflushed == 0)
        {
            return -1;
        }

        var left = _options.VolatileFlushInterval - Stopwatch.GetElapsedTime(_lastFlush);
        return left <= TimeSpan.Zero ? 0 : (int)Math.Ceiling(left.TotalMilliseconds);
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
            if (((ExclusiveOp)op).FlushVolatileFirst)
            {
                FlushVolatile(connection, final: false);
            }

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
        var volatileBatches = Stats.VolatileBatches;
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
        if (Stats.VolatileBatches == volatileBatches)
        {
            Interlocked.Increment(ref Stats._batches);
        }

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
        if (_volatile is not null)
        {
            // Revisions of volatile-only batches are not in the database's counter.
            revision = Math.Max(revision, Revision);
        }

        var session = new LogSession(connection, _dialect.Sql, revision, 0, _volatile);
        session.CompactRevision = session.GetMeta("compact");
        var context = new WriteScope(revision, session.CompactRevision);
        try
        {
            foreach (var op in batch)
            {
                var durableBefore = session.DurableWrites;
                try
                {
                    op.Run(session, context);
                }
                catch (Exception e) when (context.PendingRevision == 0 && e is not DbException)
                {
                    // Rejected before it changed anything: only this operation fails.
                    op.Fail(e);
                }

                if (session.OperationVolatileRows.Count > 0)
                {
                    if (session.DurableWrites != durableBefore)
                    {
                        // A transaction that mixes volatile and durable keys is durable as a whole.
                        var bytes = session.WriteVolatile(session.OperationVolatileRows);
                        _volatile!.MarkFlushed(session.OperationVolatileRows);
                        Interlocked.Add(ref Stats._volatileFlushedRows, session.OperationVolatileRows.Count);
                        Interlocked.Add(ref Stats._volatileFlushedBytes, bytes);
                    }

                    session.OperationVolatileRows.Clear();
                }

                context.CloseOperation();
            }

            if (context.Revision != revision)
            {
                var durable = session.DurableWrites > 0;
                long reserve = 0;
                if (_volatile is not null && context.Revision > _reserved)
                {
                    reserve = context.Revision + _options.RevisionReserveBlock;
                    session.SetMeta("reserved", reserve);
                }

                if (_volatile is not null && !durable && reserve == 0)
                {
                    // Only volatile keys changed: nothing to commit (they reach the disk with the next flush).
                    connection.Transaction.Rollback();
                    connection.Transaction.Dispose();
                    connection.Transaction = null;
                    Interlocked.Increment(ref Stats._volatileBatches);
                    return context;
                }

                session.SetMeta("rev", context.Revision);
                if (_dialect.NotifyStatement is not null)
                {
                    session.Execute(_dialect.NotifyStatement);
                }

                connection.Transaction.Commit();
                if (reserve != 0)
                {
                    Interlocked.Exchange(ref _reserved, reserve);
                }
            }
            else
            {
                connection.Transaction.Commit();
            }
        }
        catch (Exception)
        {
            _volatile?.RemoveFrom(LogIds.First(revision + 1));
            throw;
        }

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
        // Write economy: batches of volatile changes only are not committed to the database, so its revision may lag
        // the published one; every change up to the published revision is in memory or in this snapshot.
        var floor = Revision;
        connection.Transaction = write ? _dialect.BeginWrite(connection.Connection) : _dialect.BeginRead(connection.Connection);
        using var reader = connection.Command(_dialect.Sql.ReadMeta).ExecuteReader();
        reader.Read();
        var revision = reader.GetInt64(0);
        var compact = reader.GetInt64(1);
        if (_volatile is null)
        {
            return new LogSession(connection, _dialect.Sql, revision, compact);
        }

        revision = Math.Max(revision, floor);
        return new LogSession(connection, _dialect.Sql, revision, compact, _volatile, revision);
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
        var connection = new PooledConnection(db, _dialect.PrepareStatements, _dialect.NativeRowReads);
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
        public bool FlushVolatileFirst { get; init; }

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
