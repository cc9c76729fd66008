namespace Coracle.Plugins.Datastore.Sql.Storage;

/// <summary>
/// Write economy: the keys under the volatile prefixes (by default leases and events), served from memory with their
/// history and written to the <c>coracle_volatile</c> table at most every flush interval. The revision log owns it:
/// the writer adds rows while it runs a batch (and removes them again when the batch rolls back), readers see the
/// rows up to their snapshot's revision. SQLite only (the statements below are SQLite's).
/// </summary>
internal sealed class VolatileStore
{
    /// <summary>Creates the table of flushed volatile rows; the same columns as <c>coracle_log</c>.</summary>
    public static readonly IReadOnlyList<string> Schema =
    [
        "CREATE TABLE IF NOT EXISTS coracle_volatile(id INTEGER PRIMARY KEY, name BLOB NOT NULL, create_revision INTEGER NOT NULL, version INTEGER NOT NULL, lease INTEGER NOT NULL, value BLOB, deleted INTEGER NOT NULL, prev_id INTEGER NOT NULL)",
        "CREATE INDEX IF NOT EXISTS coracle_volatile_name ON coracle_volatile(name, id)",
        "INSERT OR IGNORE INTO coracle_meta(name, value) VALUES ('reserved', 0)",
        $"INSERT OR IGNORE INTO coracle_meta(name, value) VALUES ('{FloorMeta}', 0)",
    ];

    public const string InsertRow =
        "INSERT OR REPLACE INTO coracle_volatile(id, name, create_revision, version, lease, value, deleted, prev_id) VALUES (@id, @k, @cr, @ver, @lease, @val, @del, @prev)";

    /// <summary>Removes a key's flushed rows older than the one a flush writes now (a restart needs only the newest).</summary>
    public const string DeleteOlderRows =
        "DELETE FROM coracle_volatile WHERE name = @k AND id < @id";

    /// <summary>
    /// The meta entry holding the revision of the newest flush: the flushed history of volatile keys is complete only
    /// from there on, so the next open treats every revision below it as compacted (etcd's answer for history it no
    /// longer holds).
    /// </summary>
    public const string FloorMeta = "volatile_floor";

    /// <summary>At open: the compacted revision is raised to the floor of the last flush.</summary>
    public const string RaiseCompactToFloor =
        $"UPDATE coracle_meta SET value = (SELECT f.value FROM coracle_meta f WHERE f.name = '{FloorMeta}') WHERE name = 'compact' AND value < (SELECT f.value FROM coracle_meta f WHERE f.name = '{FloorMeta}')";

    public const string CompactRows =
        "DELETE FROM coracle_volatile WHERE id < @idEnd AND (deleted = 1 OR EXISTS (SELECT 1 FROM coracle_volatile n WHERE n.name = coracle_volatile.name AND n.id > coracle_volatile.id AND n.id < @idEnd))";

    public const string LoadRows =
        "SELECT id, name, create_revision, version, lease, value, deleted, prev_id FROM coracle_volatile ORDER BY id";

    private static readonly Comparer<byte[]> KeyOrder = Comparer<byte[]>.Create((a, b) => a.AsSpan().SequenceCompareTo(b));

    private readonly KeyRange[] _prefixes;
    private readonly Lock _lock = new();
    private readonly SortedDictionary<byte[], List<LogRow>> _keys = new(KeyOrder);
    private readonly List<LogRow> _rows = [];
    private readonly SortedDictionary<long, LogRow> _unflushed = [];
    private long _compactedEnd;

    public VolatileStore(IReadOnlyList<string> prefixes)
    {
        Prefixes = prefixes;
        _prefixes = prefixes.Select(p =>
        {
            var key = System.Text.Encoding.UTF8.GetBytes(p);
            return KeyRange.From(key, PrefixEnd(key));
        }).ToArray();
    }

    public IReadOnlyList<string> Prefixes { get; }

    /// <summary>Rows not yet written to disk.</summary>
    public int Unflushed
    {
        get
        {
            lock (_lock)
            {
                return _unflushed.Count;
            }
        }
    }

    /// <summary>Rows held in memory.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _rows.Count;
            }
        }
    }

    /// <summary>SQL conditions (on <c>name</c>) selecting the volatile keys, with their parameters.</summary>
    public (string Condition, List<(string Name, byte[] Value)> Parameters) Condition()
    {
        var parts = new List<string>();
        var parameters = new List<(string, byte[])>();
        for (var i = 0; i < _prefixes.Length; i++)
        {
            var p = _prefixes[i];
            parameters.Add(($"@p{i}", p.Start));
            if (p.Kind == RangeKind.Open)
            {
                parts.Add($"name >= @p{i}");
            }
            else
            {
                parameters.Add(($"@e{i}", p.End));
                parts.Add($"(name >= @p{i} AND name < @e{i})");
            }
        }

        return (parts.Count == 0 ? "1 = 0" : string.Join(" OR ", parts), parameters);
    }

    public bool IsVolatile(ReadOnlySpan<byte> key)
    {
        foreach (var p in _prefixes)
        {
            if (p.Contains(key))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>True when the range may hold volatile keys.</summary>
    public bool Touches(KeyRange range)
    {
        foreach (var p in _prefixes)
        {
            if (p.Intersects(range))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>True when every key of the range is volatile (then the database need not be asked).</summary>
    public bool Covers(KeyRange range) => range.Kind == RangeKind.Single && IsVolatile(range.Start);

    /// <summary>Adds a row (the writer, in revision order); it is unflushed unless loaded from disk.</summary>
    public void Add(LogRow row, bool flushed)
    {
        lock (_lock)
        {
            if (!_keys.TryGetValue(row.Key, out var history))
            {
                history = [];
                _keys[row.Key] = history;
            }

            history.Add(row);
            _rows.Add(row);
            if (!flushed)
            {
                _unflushed[row.Id] = row;
            }
        }
    }

    /// <summary>Removes the rows with ids at or after <paramref name="firstId"/> (a rolled back batch).</summary>
    public void RemoveFrom(long firstId)
    {
        lock (_lock)
        {
            while (_rows.Count > 0 && _rows[^1].Id >= firstId)
            {
                var row = _rows[^1];
                _rows.RemoveAt(_rows.Count - 1);
                _unflushed.Remove(row.Id);
                var history = _keys[row.Key];
                history.RemoveAt(history.Count - 1);
                if (history.Count == 0)
                {
                    _keys.Remove(row.Key);
                }
            }
        }
    }

    /// <summary>Marks rows written to disk by the batch that wrote them (a transaction that also changed durable keys).</summary>
    public void MarkFlushed(IEnumerable<LogRow> rows)
    {
        lock (_lock)
        {
            foreach (var row in rows)
            {
                _unflushed.Remove(row.Id);
            }
        }
    }

    /// <summary>The rows to flush, oldest first (compacted ones included, so their removal reaches the disk too).</summary>
    public List<LogRow> TakeUnflushed()
    {
        lock (_lock)
        {
            return [.. _unflushed.Values];
        }
    }

    /// <summary>
    /// The rows a flush writes: the newest of each key among <paramref name="rows"/> (oldest first, as
    /// <see cref="TakeUnflushed"/> returns them). A restart needs no more: the intermediate revisions of a volatile key
    /// are history only, and the next open treats that history as compacted (<see cref="FloorMeta"/>).
    /// </summary>
    public static List<LogRow> NewestPerKey(List<LogRow> rows)
    {
        var newest = new Dictionary<byte[], LogRow>(ByteArrayEquality.Instance);
        foreach (var row in rows)
        {
            newest[row.Key] = row;
        }

        return [.. newest.Values.OrderBy(r => r.Id)];
    }

    /// <summary>Rows live at <paramref name="revision"/> in key order, at most <paramref name="limit"/> (0: all).</summary>
    public List<LogRow> Range(KeyRange range, long revision, long limit)
    {
        var rows = new List<LogRow>();
        lock (_lock)
        {
            foreach (var row in LiveRows(range, revision))
            {
                rows.Add(row);
                if (limit > 0 && rows.Count >= limit)
                {
                    break;
                }
            }
        }

        return rows;
    }

    public long CountLive(KeyRange range, long revision)
    {
        lock (_lock)
        {
            return LiveRows(range, revision).LongCount();
        }
    }

    /// <summary>Keys live at <paramref name="revision"/> attached to a lease.</summary>
    public List<byte[]> KeysByLease(long lease, long revision)
    {
        lock (_lock)
        {
            return [.. LiveRows(new KeyRange(RangeKind.Open, [], []), revision).Where(r => r.Lease == lease).Select(r => r.Key)];
        }
    }

    /// <summary>Changes with revisions in [from, to] in the range, oldest first, with the key's previous row when held.</summary>
    public List<LogEvent> Events(long fromRevision, long toRevision, KeyRange range, int limit)
    {
        var events = new List<LogEvent>();
        lock (_lock)
        {
            var first = LogIds.First(fromRevision);
            var end = toRevision >= long.MaxValue >> (LogIds.SubBits + 1) ? long.MaxValue : LogIds.End(toRevision);
            int lo = 0, hi = _rows.Count;
            while (lo < hi)
            {
                var mid = (lo + hi) / 2;
                if (_rows[mid].Id < first)
                {
                    lo = mid + 1;
                }
                else
                {
                    hi = mid;
                }
            }

            for (var i = lo; i < _rows.Count && _rows[i].Id < end; i++)
            {
                var row = _rows[i];
                if (!range.Contains(row.Key))
                {
                    continue;
                }

                LogRow? prev = null;
                if (row.PrevId != 0)
                {
                    var history = _keys[row.Key];
                    var at = history.FindLastIndex(r => r.Id == row.PrevId);
                    if (at >= 0)
                    {
                        prev = history[at];
                    }
                }

                events.Add(new LogEvent(row, prev));
                if (limit > 0 && events.Count >= limit)
                {
                    break;
                }
            }
        }

        return events;
    }

    /// <summary>
    /// Removes the rows no read at or after the compacted revision sees: tombstones and rows superseded by a newer row,
    /// both below <paramref name="idEnd"/>. Unflushed rows stay queued so that their effect reaches the disk.
    /// </summary>
    public void Compact(long idEnd)
    {
        lock (_lock)
        {
            if (idEnd <= _compactedEnd)
            {
                return;
            }

            _compactedEnd = idEnd;
            var removed = new HashSet<long>();
            foreach (var (key, history) in _keys.ToList())
            {
                var newestBelow = history.FindLastIndex(r => r.Id < idEnd);
                if (newestBelow < 0)
                {
                    continue;
                }

                var keepFrom = history[newestBelow].Deleted ? newestBelow + 1 : newestBelow;
                for (var i = 0; i < keepFrom; i++)
                {
                    removed.Add(history[i].Id);
                }

                history.RemoveRange(0, keepFrom);
                if (history.Count == 0)
                {
                    _keys.Remove(key);
                }
            }

            if (removed.Count > 0)
            {
                _rows.RemoveAll(r => removed.Contains(r.Id));
            }
        }
    }

    private IEnumerable<LogRow> LiveRows(KeyRange range, long revision)
    {
        if (range.Kind == RangeKind.Empty)
        {
            yield break;
        }

        if (range.Kind == RangeKind.Single)
        {
            if (_keys.TryGetValue(range.Start, out var one) && Visible(one, revision) is { Deleted: false } row)
            {
                yield return row;
            }

            yield break;
        }

        foreach (var (key, history) in _keys)
        {
            if (key.AsSpan().SequenceCompareTo(range.Start) < 0)
            {
                continue;
            }

            if (range.Kind == RangeKind.Bounded && key.AsSpan().SequenceCompareTo(range.End) >= 0)
            {
                yield break;
            }

            if (Visible(history, revision) is { Deleted: false } row)
            {
                yield return row;
            }
        }
    }

    private static LogRow? Visible(List<LogRow> history, long revision)
    {
        // The writer sees everything (revision long.MaxValue); End() of it would overflow.
        var end = revision >= long.MaxValue >> (LogIds.SubBits + 1) ? long.MaxValue : LogIds.End(revision);
        for (var i = history.Count - 1; i >= 0; i--)
        {
            if (history[i].Id < end)
            {
                return history[i];
            }
        }

        return null;
    }

    private static byte[] PrefixEnd(byte[] prefix)
    {
        for (var i = prefix.Length - 1; i >= 0; i--)
        {
            if (prefix[i] < 0xff)
            {
                var end = prefix[..(i + 1)];
                end[i]++;
                return end;
            }
        }

        return [0];
    }

    private sealed class ByteArrayEquality : IEqualityComparer<byte[]>
    {
        public static readonly ByteArrayEquality Instance = new();

        public bool Equals(byte[]? x, byte[]? y) => x.AsSpan().SequenceEqual(y);

        public int GetHashCode(byte[] obj)
        {
            var hash = default(HashCode);
            hash.AddBytes(obj);
            return hash.ToHashCode();
        }
    }
}
