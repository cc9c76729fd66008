using System.Collections.Concurrent;
using System.Diagnostics;
using Coracle.Plugins.Datastore.Sql.Protos;
using Coracle.Plugins.Datastore.Sql.Tests.Support;
using Grpc.Core;
using static Coracle.Plugins.Datastore.Sql.Tests.Support.E;

namespace Coracle.Plugins.Datastore.Sql.Tests.Durability;

/// <summary>
/// A power cut (kill -9) of the datastore with write economy on, 50 times under load: durable keys (including those
/// written by transactions that also change volatile keys) lose nothing, volatile keys lose at most the flush interval
/// (plus a margin for a busy machine), and revisions after a restart are above every revision handed out before.
/// </summary>
[Trait("Category", "Integration")]
public sealed class WriteEconomyCrashTests
{
    private const int Cycles = 50;
    private const int FlushMs = 200;

    /// <summary>
    /// Margin on top of the flush interval before a volatile write must have reached the disk: the suite runs beside the
    /// real-Kubernetes tests on 2 shared cores, where a starved flusher ran more than 3 s late.
    /// </summary>
    private static readonly TimeSpan Margin = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task KillNine_FiftyCyclesWithWriteEconomy_DurableKeptVolatileBoundedRevisionsAboveAllHandedOut()
    {
        var dir = TempDir("economy-crash");
        var db = Path.Combine(dir, "state.db");
        var socket = Path.Combine(dir, "etcd.sock");
        var durable = new ConcurrentDictionary<string, (long Revision, string Value)>();
        var volatileAcks = new ConcurrentDictionary<string, ConcurrentBag<(long Revision, long At)>>();
        long highest = 0;
        long killedAt = 0;
        var checkedVolatile = 0;
        for (var cycle = 0; cycle < Cycles; cycle++)
        {
            using var host = StartHost(db, socket);
            using var channel = TestServer.CreateChannel(socket);
            var kv = new KV.KVClient(channel);

            // Every acknowledged durable write is there with its revision.
            var stored = (await kv.RangeAsync(new RangeRequest { Key = B("d/"), RangeEnd = PrefixEnd("d/") })).Kvs
                .Concat((await kv.RangeAsync(new RangeRequest { Key = B("/registry/events/"), RangeEnd = PrefixEnd("/registry/events/") })).Kvs)
                .ToDictionary(k => S(k.Key));
            foreach (var (key, (revision, value)) in durable)
            {
                Assert.True(stored.TryGetValue(key, out var got), $"cycle {cycle}: acknowledged durable key {key} (revision {revision}) is lost");
                Assert.Equal(value, S(got.Value));
                Assert.Equal(revision, got.ModRevision);
            }

            // A volatile key holds at least the newest version acknowledged a flush interval (plus margin) before the kill.
            var deadline = killedAt - (long)((TimeSpan.FromMilliseconds(FlushMs) + Margin).TotalSeconds * Stopwatch.Frequency);
            var leases = (await kv.RangeAsync(new RangeRequest { Key = B("/registry/leases/"), RangeEnd = PrefixEnd("/registry/leases/") })).Kvs.ToDictionary(k => S(k.Key));
            foreach (var (key, acks) in volatileAcks)
            {
                var required = acks.Where(a => a.At < deadline).Select(a => a.Revision).DefaultIfEmpty(0).Max();
                if (required == 0)
                {
                    continue;
                }

                checkedVolatile++;
                Assert.True(leases.TryGetValue(key, out var got) && got.ModRevision >= required,
                    $"cycle {cycle}: volatile key {key} lost revision {required}, acknowledged more than {FlushMs} ms + {Margin.TotalSeconds} s before the kill (has {(got is null ? "nothing" : got.ModRevision)})");
            }

            var revisions = new ConcurrentBag<long>();
            using var load = new CancellationTokenSource();
            var round = cycle;
            var writers = new List<Task>();
            for (var w = 0; w < 3; w++)
            {
                var writer = w;
                writers.Add(Writer(async i =>
                {
                    var key = $"d/{round}/{writer}/{i}";
                    var value = $"{round}-{writer}-{i}";
                    var put = await kv.PutAsync(new PutRequest { Key = B(key), Value = B(value) });
                    revisions.Add(put.Header.Revision);
                    durable[key] = (put.Header.Revision, value);
                }, load.Token));
                writers.Add(Writer(async i =>
                {
                    var key = $"/registry/leases/{writer}/{i % 4}";
                    var put = await kv.PutAsync(new PutRequest { Key = B(key), Value = B($"{round}-{i}") });
                    revisions.Add(put.Header.Revision);
                    volatileAcks.GetOrAdd(key, _ => []).Add((put.Header.Revision, Stopwatch.GetTimestamp()));
                }, load.Token));
            }

            // A transaction with a volatile and a durable key is durable as a whole.
            writers.Add(Writer(async i =>
            {
                var key = $"d/txn/{round}/{i}";
                var txn = await kv.TxnAsync(new TxnRequest { Success = { Put($"/registry/events/{round}/{i}", "event"), Put(key, "with-event") } });
                revisions.Add(txn.Header.Revision);
                durable[key] = (txn.Header.Revision, "with-event");
                durable[$"/registry/events/{round}/{i}"] = (txn.Header.Revision, "event");
            }, load.Token));

            // Kill mid-load after some writes were acknowledged (gates, not timing assertions); every tenth cycle runs
            // long enough for volatile writes to age past the flush bound.
            var minimum = Stopwatch.GetTimestamp() + (long)((cycle % 10 == 9 ? 11.0 : 0.3) * Stopwatch.Frequency);
            for (var waited = 0; (revisions.Count < 30 || Stopwatch.GetTimestamp() < minimum) && waited < 800 && !host.HasExited; waited++)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(50));
            }

            host.Kill(); // SIGKILL
            killedAt = Stopwatch.GetTimestamp();
            await load.CancelAsync();
            await Task.WhenAll(writers);
            await host.WaitForExitAsync();

            var sorted = revisions.Order().ToList();
            Assert.NotEmpty(sorted);
            Assert.Equal(sorted.Count, sorted.Distinct().Count());
            Assert.True(sorted[0] > highest, $"cycle {cycle}: revision {sorted[0]} is not above {highest}, handed out before the kill");
            highest = sorted[^1];
        }

        Assert.True(checkedVolatile > 0, "no volatile write aged past the flush bound; the bound was not checked");
        using var last = StartHost(db, socket);
        using var finalChannel = TestServer.CreateChannel(socket);
        var finalKv = new KV.KVClient(finalChannel);
        var events = (await finalKv.RangeAsync(new RangeRequest { Key = B("/registry/events/"), RangeEnd = PrefixEnd("/registry/events/") })).Kvs.ToDictionary(k => S(k.Key));
        foreach (var (key, (revision, _)) in durable.Where(d => d.Key.StartsWith("/registry/events/", StringComparison.Ordinal)))
        {
            Assert.True(events.TryGetValue(key, out var got) && got.ModRevision == revision, $"volatile key {key} written with a durable key (revision {revision}) is lost");
        }

        var next = await finalKv.PutAsync(new PutRequest { Key = B("after"), Value = B("x") });
        Assert.True(next.Header.Revision > highest);
        last.Kill();
        await last.WaitForExitAsync();
    }

    private static Task Writer(Func<int, Task> write, CancellationToken stop) => Task.Run(async () =>
    {
        for (var i = 0; !stop.IsCancellationRequested; i++)
        {
            try
            {
                await write(i);
            }
            catch (RpcException)
            {
                return; // the server died mid-request: not acknowledged
            }
        }
    }, CancellationToken.None);

    private static Process StartHost(string db, string socket)
    {
        var hostDll = Path.Combine(AppContext.BaseDirectory, "Coracle.Plugins.Datastore.Sql.TestHost.dll");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { hostDll, db, socket, "/registry/leases/,/registry/events/", FlushMs.ToString(System.Globalization.CultureInfo.InvariantCulture) })
        {
            psi.ArgumentList.Add(a);
        }

        var p = Process.Start(psi)!;
        var line = p.StandardOutput.ReadLineAsync();
        if (!line.Wait(TimeSpan.FromSeconds(60)) || line.Result is null || !line.Result.StartsWith("READY", StringComparison.Ordinal))
        {
            p.Kill();
            throw new InvalidOperationException("the test host did not start: " + p.StandardError.ReadToEnd());
        }

        return p;
    }
}
