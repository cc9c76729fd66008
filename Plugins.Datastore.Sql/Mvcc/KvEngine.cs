using Coracle.Plugins.Datastore.Sql.Protos;
using Coracle.Plugins.Datastore.Sql.Storage;
using Google.Protobuf;

namespace Coracle.Plugins.Datastore.Sql.Mvcc;

/// <summary>
/// etcd's KV semantics (ranges, puts, deletes, transactions with compares, compaction) over the revision log.
/// Speaks keys and revisions; every write runs inside the log's writer transaction.
/// </summary>
public sealed class KvEngine
{
    /// <summary>etcd's limit on the operations of one transaction.</summary>
    public const int MaxTxnOps = 128;

    private readonly RevisionLog _log;
    private readonly EtcdMemberIdentity _identity;

    /// <summary>Creates the engine.</summary>
    public KvEngine(RevisionLog log, EtcdMemberIdentity identity)
    {
        _log = log;
        _identity = identity;
    }

    /// <summary>The log underneath.</summary>
    public RevisionLog Log => _log;

    /// <summary>A response header at a revision.</summary>
    public ResponseHeader Header(long revision) => new()
    {
        ClusterId = _identity.ClusterId,
        MemberId = _identity.MemberId,
        Revision = revision,
        RaftTerm = 1,
    };

    /// <summary>Range (reads are served from a snapshot; serializable and linearizable reads are the same here).</summary>
    public RangeResponse Range(RangeRequest request)
    {
        CheckRange(request);
        return _log.Read(s => RangeIn(new View(s, null), request));
    }

    /// <summary>Put.</summary>
    public Task<PutResponse> PutAsync(PutRequest request)
    {
        CheckPut(request);
        return _log.WriteAsync((s, c) =>
        {
            var view = new View(s, c);
            var response = ApplyPut(view, request);
            response.Header = Header(c.VisibleRevision);
            return response;
        });
    }

    /// <summary>DeleteRange.</summary>
    public Task<DeleteRangeResponse> DeleteRangeAsync(DeleteRangeRequest request)
    {
        CheckDelete(request);
        return _log.WriteAsync((s, c) =>
        {
            var response = ApplyDelete(new View(s, c), request);
            response.Header = Header(c.VisibleRevision);
            return response;
        });
    }

    /// <summary>Txn: compares, then the success or failure operations, atomically at one revision.</summary>
    public Task<TxnResponse> TxnAsync(TxnRequest request)
    {
        CheckTxn(request);
        if (!HasWrites(request))
        {
            return Task.FromResult(_log.Read(s =>
            {
                var response = ApplyTxn(new View(s, null), request);
                response.Header = Header(s.Revision);
                return response;
            }));
        }

        return _log.WriteAsync((s, c) =>
        {
            var view = new View(s, c);
            ValidateTxn(view, request);
            var response = ApplyTxn(view, request);
            response.Header = Header(c.VisibleRevision);
            return response;
        });
    }

    /// <summary>Compact: marks history up to the revision compacted; rows are removed in the background.</summary>
    public async Task<CompactionResponse> CompactAsync(CompactionRequest request, CancellationToken cancellationToken)
    {
        var header = await _log.WriteAsync((s, c) =>
        {
            if (request.Revision <= c.CompactRevision)
            {
                throw EtcdErrors.Compacted;
            }

            if (request.Revision > c.Revision)
            {
                throw EtcdErrors.FutureRevision;
            }

            _log.SetCompacted(s, c, request.Revision);
            return Header(c.Revision);
        });
        var physical = _log.CompactPhysicallyAsync(cancellationToken);
        if (request.Physical)
        {
            await physical;
        }
        else
        {
            _ = physical.ContinueWith(t => _ = t.Exception, TaskScheduler.Default);
        }

        return new CompactionResponse { Header = header };
    }

    /// <summary>Compacts to keep <paramref name="minRetain"/> revisions of history; returns the new compacted revision or 0.</summary>
    public async Task<long> AutoCompactAsync(long minRetain, CancellationToken cancellationToken)
    {
        var target = _log.Revision - minRetain;
        if (target <= _log.CompactRevision)
        {
            if (_log.CompactedPhysically < _log.CompactRevision)
            {
                await _log.CompactPhysicallyAsync(cancellationToken);
            }

            return 0;
        }

        try
        {
            await CompactAsync(new CompactionRequest { Revision = target, Physical = true }, cancellationToken);
            return target;
        }
        catch (EtcdException)
        {
            return 0; // someone compacted further meanwhile
        }
    }

    internal static void CheckRange(RangeRequest r)
    {
        if (r.Key.IsEmpty)
        {
            throw EtcdErrors.EmptyKey;
        }
    }

    internal static void CheckPut(PutRequest r)
    {
        if (r.Key.IsEmpty)
        {
            throw EtcdErrors.EmptyKey;
        }

        if (r.IgnoreValue && !r.Value.IsEmpty)
        {
            throw EtcdErrors.ValueProvided;
        }

        if (r.IgnoreLease && r.Lease != 0)
        {
            throw EtcdErrors.LeaseProvided;
        }
    }

    internal static void CheckDelete(DeleteRangeRequest r)
    {
        if (r.Key.IsEmpty)
        {
            throw EtcdErrors.EmptyKey;
        }
    }

    internal static void CheckTxn(TxnRequest r)
    {
        if (r.Compare.Count > MaxTxnOps || r.Success.Count > MaxTxnOps || r.Failure.Count > MaxTxnOps)
        {
            throw EtcdErrors.TooManyOps;
        }

        foreach (var c in r.Compare)
        {
            if (c.Key.IsEmpty)
            {
                throw EtcdErrors.EmptyKey;
            }
        }

        foreach (var op in r.Success.Concat(r.Failure))
        {
            switch (op.RequestCase)
            {
                case RequestOp.RequestOneofCase.RequestRange:
                    CheckRange(op.RequestRange);
                    break;
                case RequestOp.RequestOneofCase.RequestPut:
                    CheckPut(op.RequestPut);
                    break;
                case RequestOp.RequestOneofCase.RequestDeleteRange:
                    CheckDelete(op.RequestDeleteRange);
                    break;
                case RequestOp.RequestOneofCase.RequestTxn:
                    CheckTxn(op.RequestTxn);
                    break;
                default:
                    throw new EtcdException(Grpc.Core.StatusCode.InvalidArgument, "etcdserver: request is empty");
            }
        }

        CheckIntervals(r.Success);
        CheckIntervals(r.Failure);
    }

    /// <summary>etcd's rule: one transaction may not change a key twice, including through nested transactions.</summary>
    private static (HashSet<ByteString> Puts, List<KeyRange> Dels) CheckIntervals(IEnumerable<RequestOp> ops)
    {
        var dels = new List<KeyRange>();
        foreach (var op in ops)
        {
            if (op.RequestCase == RequestOp.RequestOneofCase.RequestDeleteRange)
            {
                dels.Add(KeyRange.From(Kv.Bytes(op.RequestDeleteRange.Key), Kv.Bytes(op.RequestDeleteRange.RangeEnd)));
            }
        }

        var puts = new HashSet<ByteString>();
        foreach (var op in ops)
        {
            if (op.RequestCase != RequestOp.RequestOneofCase.RequestTxn)
            {
                continue;
            }

            var (putsThen, delsThen) = CheckIntervals(op.RequestTxn.Success);
            var (putsElse, delsElse) = CheckIntervals(op.RequestTxn.Failure);
            foreach (var k in putsThen)
            {
                if (puts.Contains(k) || Intersects(dels, k))
                {
                    throw EtcdErrors.DuplicateKey;
                }

                puts.Add(k);
            }

            foreach (var k in putsElse)
            {
                if ((puts.Contains(k) && !putsThen.Contains(k)) || Intersects(dels, k))
                {
                    throw EtcdErrors.DuplicateKey;
                }

                puts.Add(k);
            }

            dels.AddRange(delsThen);
            dels.AddRange(delsElse);
        }

        foreach (var op in ops)
        {
            if (op.RequestCase != RequestOp.RequestOneofCase.RequestPut)
            {
                continue;
            }

            var k = op.RequestPut.Key;
            if (puts.Contains(k) || Intersects(dels, k))
            {
                throw EtcdErrors.DuplicateKey;
            }

            puts.Add(k);
        }

        return (puts, dels);
    }

    private static bool Intersects(List<KeyRange> dels, ByteString key)
    {
        foreach (var d in dels)
        {
            if (d.Contains(key.Span))
            {
                return true;
            }
        }

        return false;
    }

    internal static bool HasWrites(TxnRequest r) =>
        r.Success.Concat(r.Failure).Any(op => op.RequestCase switch
        {
            RequestOp.RequestOneofCase.RequestPut => true,
            RequestOp.RequestOneofCase.RequestDeleteRange => true,
            RequestOp.RequestOneofCase.RequestTxn => HasWrites(op.RequestTxn),
            _ => false,
        });

    private RangeResponse RangeIn(View view, RangeRequest r)
    {
        var current = view.Revision;
        if (r.Revision > current)
        {
            throw EtcdErrors.FutureRevision;
        }

        var revision = r.Revision <= 0 ? current : r.Revision;
        if (revision < view.CompactRevision)
        {
            throw EtcdErrors.Compacted;
        }

        var response = new RangeResponse { Header = Header(current) };
        var range = KeyRange.From(Kv.Bytes(r.Key), Kv.Bytes(r.RangeEnd));
        if (range.Kind == RangeKind.Empty)
        {
            return response;
        }

        var atCurrent = revision == current;
        var s = view.Session;
        if (r.CountOnly)
        {
            response.Count = s.Count(range, revision, atCurrent);
            return response;
        }

        var filtered = r.MinModRevision != 0 || r.MaxModRevision != 0 || r.MinCreateRevision != 0 || r.MaxCreateRevision != 0;
        var order = r.SortOrder;
        if (r.SortTarget != RangeRequest.Types.SortTarget.Key && order == RangeRequest.Types.SortOrder.None)
        {
            order = RangeRequest.Types.SortOrder.Ascend;
        }

        var keyOrder = r.SortTarget == RangeRequest.Types.SortTarget.Key && order != RangeRequest.Types.SortOrder.Descend;
        var fetch = !filtered && keyOrder && r.Limit > 0 ? r.Limit + 1 : 0;
        var rows = s.Range(range, revision, atCurrent, fetch);
        response.Count = fetch == 0 || rows.Count < fetch ? rows.Count : s.Count(range, revision, atCurrent);
        if (filtered)
        {
            rows = rows.Where(row =>
                (r.MinModRevision == 0 || row.Revision >= r.MinModRevision) &&
                (r.MaxModRevision == 0 || row.Revision <= r.MaxModRevision) &&
                (r.MinCreateRevision == 0 || row.CreateRevision >= r.MinCreateRevision) &&
                (r.MaxCreateRevision == 0 || row.CreateRevision <= r.MaxCreateRevision)).ToList();
        }

        if (!keyOrder || order == RangeRequest.Types.SortOrder.Descend)
        {
            Comparison<LogRow> compare = r.SortTarget switch
            {
                RangeRequest.Types.SortTarget.Version => (a, b) => a.Version.CompareTo(b.Version),
                RangeRequest.Types.SortTarget.Create => (a, b) => a.CreateRevision.CompareTo(b.CreateRevision),
                RangeRequest.Types.SortTarget.Mod => (a, b) => a.Revision.CompareTo(b.Revision),
                RangeRequest.Types.SortTarget.Value => (a, b) => a.Value.AsSpan().SequenceCompareTo(b.Value),
                _ => (a, b) => a.Key.AsSpan().SequenceCompareTo(b.Key),
            };
            var sorted = order == RangeRequest.Types.SortOrder.Descend
                ? rows.Order(Comparer<LogRow>.Create((a, b) => compare(b, a)))
                : rows.Order(Comparer<LogRow>.Create(compare));
            rows = sorted.ToList();
        }

        if (r.Limit > 0 && rows.Count > r.Limit)
        {
            rows.RemoveRange((int)r.Limit, rows.Count - (int)r.Limit);
            response.More = true;
        }

        foreach (var row in rows)
        {
            response.Kvs.Add(Kv.From(row, r.KeysOnly));
        }

        return response;
    }

    private static void ValidatePut(View view, PutRequest r)
    {
        if (r.IgnoreValue || r.IgnoreLease || r.Lease != 0)
        {
            var prev = view.Session.Get(Kv.Bytes(r.Key));
            if ((r.IgnoreValue || r.IgnoreLease) && prev is null)
            {
                throw EtcdErrors.KeyNotFound;
            }

            var lease = r.IgnoreLease ? prev!.Lease : r.Lease;
            if (lease != 0 && view.Session.GetLease(lease) is null)
            {
                throw EtcdErrors.LeaseNotFound;
            }
        }
    }

    private void ValidateTxn(View view, TxnRequest r)
    {
        var ok = r.Compare.All(c => Compare(view, c));
        foreach (var op in ok ? r.Success : r.Failure)
        {
            if (op.RequestCase == RequestOp.RequestOneofCase.RequestPut)
            {
                ValidatePut(view, op.RequestPut);
            }
            else if (op.RequestCase == RequestOp.RequestOneofCase.RequestTxn)
            {
                ValidateTxn(view, op.RequestTxn);
            }
            else if (op.RequestCase == RequestOp.RequestOneofCase.RequestRange)
            {
                var rr = op.RequestRange;
                if (rr.Revision > view.Revision)
                {
                    throw EtcdErrors.FutureRevision;
                }

                if (rr.Revision > 0 && rr.Revision < view.CompactRevision)
                {
                    throw EtcdErrors.Compacted;
                }
            }
        }
    }

    private PutResponse ApplyPut(View view, PutRequest r)
    {
        var s = view.Session;
        var key = Kv.Bytes(r.Key);
        var prev = s.Get(key);
        if ((r.IgnoreValue || r.IgnoreLease) && prev is null)
        {
            throw EtcdErrors.KeyNotFound;
        }

        var lease = r.IgnoreLease ? prev!.Lease : r.Lease;
        if (lease != 0 && s.GetLease(lease) is null)
        {
            throw EtcdErrors.LeaseNotFound;
        }

        var value = r.IgnoreValue ? prev!.Value : Kv.Bytes(r.Value);
        var c = view.Context!;
        var id = c.NextId();
        var revision = c.PendingRevision;
        var row = new LogRow(id, key, prev?.CreateRevision ?? revision, (prev?.Version ?? 0) + 1, lease, value, false, prev?.Id ?? 0);
        s.Insert(row);
        c.Emit(new LogEvent(row, prev));
        var response = new PutResponse();
        if (r.PrevKv && prev is not null)
        {
            response.PrevKv = Kv.From(prev);
        }

        return response;
    }

    private static DeleteRangeResponse ApplyDelete(View view, DeleteRangeRequest r)
    {
        var range = KeyRange.From(Kv.Bytes(r.Key), Kv.Bytes(r.RangeEnd));
        var rows = view.Session.Range(range, 0, current: true, 0);
        DeleteRows(view.Session, view.Context!, rows);
        var response = new DeleteRangeResponse { Deleted = rows.Count };
        if (r.PrevKv)
        {
            foreach (var row in rows)
            {
                response.PrevKvs.Add(Kv.From(row));
            }
        }

        return response;
    }

    /// <summary>Writes tombstones for live rows (delete, lease revoke and expiry).</summary>
    internal static void DeleteRows(LogSession session, WriteScope context, IEnumerable<LogRow> rows)
    {
        foreach (var row in rows)
        {
            var tombstone = new LogRow(context.NextId(), row.Key, 0, 0, 0, [], true, row.Id);
            session.Insert(tombstone);
            context.Emit(new LogEvent(tombstone, row));
        }
    }

    private TxnResponse ApplyTxn(View view, TxnRequest r)
    {
        var ok = r.Compare.All(c => Compare(view, c));
        var response = new TxnResponse { Succeeded = ok };
        foreach (var op in ok ? r.Success : r.Failure)
        {
            switch (op.RequestCase)
            {
                case RequestOp.RequestOneofCase.RequestRange:
                    response.Responses.Add(new ResponseOp { ResponseRange = RangeIn(view, op.RequestRange) });
                    break;
                case RequestOp.RequestOneofCase.RequestPut:
                    var put = ApplyPut(view, op.RequestPut);
                    put.Header = Header(view.Revision);
                    response.Responses.Add(new ResponseOp { ResponsePut = put });
                    break;
                case RequestOp.RequestOneofCase.RequestDeleteRange:
                    var delete = ApplyDelete(view, op.RequestDeleteRange);
                    delete.Header = Header(view.Revision);
                    response.Responses.Add(new ResponseOp { ResponseDeleteRange = delete });
                    break;
                case RequestOp.RequestOneofCase.RequestTxn:
                    var txn = ApplyTxn(view, op.RequestTxn);
                    txn.Header = Header(view.Revision);
                    response.Responses.Add(new ResponseOp { ResponseTxn = txn });
                    break;
            }
        }

        return response;
    }

    private static bool Compare(View view, Compare c)
    {
        var range = KeyRange.From(Kv.Bytes(c.Key), Kv.Bytes(c.RangeEnd));
        var rows = view.Session.Range(range, 0, current: true, 0);
        if (rows.Count == 0)
        {
            // A missing key has no value to compare; every other target compares as zero.
            return c.Target != Protos.Compare.Types.CompareTarget.Value && CompareOne(c, null);
        }

        foreach (var row in rows)
        {
            if (!CompareOne(c, row))
            {
                return false;
            }
        }

        return true;
    }

    private static bool CompareOne(Compare c, LogRow? row)
    {
        var result = c.Target switch
        {
            Protos.Compare.Types.CompareTarget.Version => (row?.Version ?? 0).CompareTo(c.Version),
            Protos.Compare.Types.CompareTarget.Create => (row?.CreateRevision ?? 0).CompareTo(c.CreateRevision),
            Protos.Compare.Types.CompareTarget.Mod => (row?.Revision ?? 0).CompareTo(c.ModRevision),
            Protos.Compare.Types.CompareTarget.Lease => (row?.Lease ?? 0).CompareTo(c.Lease),
            Protos.Compare.Types.CompareTarget.Value => (row?.Value ?? []).AsSpan().SequenceCompareTo(c.Value.Span),
            _ => 0,
        };
        return c.Result switch
        {
            Protos.Compare.Types.CompareResult.Equal => result == 0,
            Protos.Compare.Types.CompareResult.NotEqual => result != 0,
            Protos.Compare.Types.CompareResult.Greater => result > 0,
            Protos.Compare.Types.CompareResult.Less => result < 0,
            _ => false,
        };
    }

    private readonly record struct View(LogSession Session, WriteScope? Context)
    {
        public long Revision => Context?.VisibleRevision ?? Session.Revision;

        public long CompactRevision => Context?.CompactRevision ?? Session.CompactRevision;
    }
}
