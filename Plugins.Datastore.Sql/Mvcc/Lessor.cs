using System.Collections.Concurrent;
using Coracle.Plugins.Datastore.Sql.Logging;
using Coracle.Plugins.Datastore.Sql.Protos;
using Coracle.Plugins.Datastore.Sql.Storage;
using Microsoft.Extensions.Logging;

namespace Coracle.Plugins.Datastore.Sql.Mvcc;

/// <summary>
/// Leases: grants and revocations are stored; expiry deadlines live in memory like etcd's lessor (a restart
/// renews every lease by its TTL). On a shared database deadlines are stored too, so any server can expire them.
/// Expired or revoked leases delete their keys in one revision.
/// </summary>
public sealed class Lessor
{
    /// <summary>etcd's largest lease TTL in seconds.</summary>
    public const long MaxLeaseTtl = 9_000_000_000;

    private readonly RevisionLog _log;
    private readonly KvEngine _kv;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly bool _shared;
    private readonly ConcurrentDictionary<long, LeaseState> _leases = new();

    /// <summary>Creates the lessor.</summary>
    public Lessor(KvEngine kv, TimeProvider time, ILogger logger, long minTtlSeconds = 2)
    {
        _kv = kv;
        _log = kv.Log;
        _time = time;
        _logger = logger;
        _shared = _log.Dialect.SharedWriters;
        MinTtl = minTtlSeconds;
    }

    /// <summary>The shortest TTL granted; shorter requests are raised to it.</summary>
    public long MinTtl { get; }

    /// <summary>Leases known to this server.</summary>
    public int Count => _leases.Count;

    private long NowMs => _time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>Loads stored leases; each gets a fresh deadline (unless the database is shared).</summary>
    public void Load()
    {
        var now = NowMs;
        foreach (var row in _log.Read(s => s.ListLeases()))
        {
            _leases[row.Id] = new LeaseState(row.Ttl, _shared ? row.ExpiresAtUnixMs : now + (row.Ttl * 1000));
        }
    }

    /// <summary>LeaseGrant.</summary>
    public async Task<LeaseGrantResponse> GrantAsync(LeaseGrantRequest request)
    {
        if (request.TTL > MaxLeaseTtl)
        {
            throw EtcdErrors.LeaseTtlTooLarge;
        }

        var ttl = Math.Max(request.TTL, MinTtl);
        var id = request.ID != 0 ? request.ID : NewId();
        var expires = NowMs + (ttl * 1000);
        var revision = await _log.WriteAsync((s, c) =>
        {
            if (s.GetLease(id) is not null)
            {
                throw EtcdErrors.LeaseExists;
            }

            s.InsertLease(new LeaseRow(id, ttl, expires));
            return c.Revision;
        });
        _leases[id] = new LeaseState(ttl, expires);
        return new LeaseGrantResponse { Header = _kv.Header(revision), ID = id, TTL = ttl };
    }

    /// <summary>LeaseRevoke: deletes the lease and its keys.</summary>
    public async Task<LeaseRevokeResponse> RevokeAsync(long id)
    {
        var revision = await _log.WriteAsync((s, c) =>
        {
            if (!s.DeleteLease(id))
            {
                throw EtcdErrors.LeaseNotFound;
            }

            var keys = s.KeysByLease(id);
            var rows = keys.Select(k => s.Get(k)).OfType<LogRow>().ToList();
            KvEngine.DeleteRows(s, c, rows);
            return c.VisibleRevision;
        });
        _leases.TryRemove(id, out _);
        return new LeaseRevokeResponse { Header = _kv.Header(revision) };
    }

    /// <summary>One keep-alive; TTL 0 when the lease is unknown or already expired, like etcd.</summary>
    public async Task<LeaseKeepAliveResponse> KeepAliveAsync(long id)
    {
        var now = NowMs;
        if (!_leases.TryGetValue(id, out var state) && _shared)
        {
            var row = _log.Read(s => s.GetLease(id));
            if (row is not null)
            {
                state = _leases.GetOrAdd(id, new LeaseState(row.Ttl, row.ExpiresAtUnixMs));
            }
        }

        if (state is null || state.ExpiresAtMs <= now)
        {
            return new LeaseKeepAliveResponse { Header = _kv.Header(_log.Revision), ID = id, TTL = 0 };
        }

        var expires = now + (state.Ttl * 1000);
        if (_shared)
        {
            await _log.WriteAsync((s, _) =>
            {
                s.RenewLease(id, expires);
                return 0;
            });
        }

        state.ExpiresAtMs = expires;
        return new LeaseKeepAliveResponse { Header = _kv.Header(_log.Revision), ID = id, TTL = state.Ttl };
    }

    /// <summary>LeaseTimeToLive; TTL -1 for an unknown lease, like etcd.</summary>
    public LeaseTimeToLiveResponse TimeToLive(LeaseTimeToLiveRequest request)
    {
        var (row, keys, revision) = _log.Read(s =>
        {
            var lease = s.GetLease(request.ID);
            return (lease, lease is not null && request.Keys ? s.KeysByLease(request.ID) : [], s.Revision);
        });
        var response = new LeaseTimeToLiveResponse { Header = _kv.Header(revision), ID = request.ID, TTL = -1 };
        if (row is null)
        {
            return response;
        }

        var expires = _leases.TryGetValue(request.ID, out var state) ? state.ExpiresAtMs : row.ExpiresAtUnixMs;
        var remaining = Math.Max(0, expires - NowMs);
        response.TTL = (remaining + 999) / 1000;
        response.GrantedTTL = row.Ttl;
        foreach (var key in keys)
        {
            response.Keys.Add(Google.Protobuf.UnsafeByteOperations.UnsafeWrap(key));
        }

        return response;
    }

    /// <summary>LeaseLeases.</summary>
    public LeaseLeasesResponse Leases()
    {
        var (rows, revision) = _log.Read(s => (s.ListLeases(), s.Revision));
        var response = new LeaseLeasesResponse { Header = _kv.Header(revision) };
        response.Leases.AddRange(rows.Select(r => new LeaseStatus { ID = r.Id }));
        return response;
    }

    /// <summary>Revokes expired leases until cancelled.</summary>
    public async Task RunExpiryAsync(TimeSpan tick, CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(tick, _time);
        var rounds = 0;
        while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
        {
            try
            {
                if (_shared && rounds++ % 10 == 0)
                {
                    foreach (var row in _log.Read(s => s.ListLeases()))
                    {
                        _leases.AddOrUpdate(row.Id, _ => new LeaseState(row.Ttl, row.ExpiresAtUnixMs), (_, st) =>
                        {
                            st.ExpiresAtMs = Math.Max(st.ExpiresAtMs, row.ExpiresAtUnixMs);
                            return st;
                        });
                    }
                }

                await ExpireDueAsync();
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                _logger.LeaseExpiryFailed(e);
            }
        }
    }

    /// <summary>Revokes every lease whose deadline passed; returns how many.</summary>
    public async Task<int> ExpireDueAsync()
    {
        var now = NowMs;
        var expired = 0;
        foreach (var (id, state) in _leases)
        {
            if (state.ExpiresAtMs > now)
            {
                continue;
            }

            if (_shared)
            {
                var row = _log.Read(s => s.GetLease(id));
                if (row is not null && row.ExpiresAtUnixMs > now)
                {
                    state.ExpiresAtMs = row.ExpiresAtUnixMs;
                    continue;
                }
            }

            try
            {
                await RevokeAsync(id);
                expired++;
            }
            catch (EtcdException)
            {
                _leases.TryRemove(id, out _);
            }
        }

        return expired;
    }

    private static long NewId()
    {
        Span<byte> bytes = stackalloc byte[8];
        System.Security.Cryptography.RandomNumberGenerator.Fill(bytes);
        var id = BitConverter.ToInt64(bytes) & 0x3fff_ffff_ffff_ffff;
        return id == 0 ? 1 : id;
    }

    private sealed class LeaseState(long ttl, long expiresAtMs)
    {
        private long _expiresAtMs = expiresAtMs;

        public long Ttl { get; } = ttl;

        public long ExpiresAtMs
        {
            get => Interlocked.Read(ref _expiresAtMs);
            set => Interlocked.Exchange(ref _expiresAtMs, value);
        }
    }
}
