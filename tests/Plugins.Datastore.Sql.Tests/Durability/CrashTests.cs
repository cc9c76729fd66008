using System.Collections.Concurrent;
using System.Diagnostics;
using Coracle.Plugins.Datastore.Sql.Protos;
using Coracle.Plugins.Datastore.Sql.Tests.Support;
using Grpc.Core;
using static Coracle.Plugins.Datastore.Sql.Tests.Support.E;

namespace Coracle.Plugins.Datastore.Sql.Tests.Durability;

/// <summary>kill -9 the datastore process under write load; every acknowledged write must survive.</summary>
[Trait("Category", "Integration")]
public sealed class CrashTests
{
    [Fact]
    public async Task KillNine_UnderLoad_KeepsEveryAcknowledgedWriteAndRevisionOrder()
    {
        var dir = TempDir("crash");
        var db = Path.Combine(dir, "state.db");
        var socket = Path.Combine(dir, "etcd.sock");
        var acknowledged = new ConcurrentDictionary<string, (long Revision, string Value)>();
        long highest = 0;
        for (var round = 0; round < 4; round++)
        {
            using var host = StartHost(db, socket);
            using var channel = TestServer.CreateChannel(socket);
            var kv = new KV.KVClient(channel);

            // Everything acknowledged before the previous kill is still there, with its revision.
            foreach (var (key, (revision, value)) in acknowledged)
            {
                var r = await kv.RangeAsync(new RangeRequest { Key = B(key) });
                var got = Assert.Single(r.Kvs);
                Assert.Equal(value, S(got.Value));
                Assert.Equal(revision, got.ModRevision);
            }

            var revisions = new ConcurrentBag<long>();
            using var load = new CancellationTokenSource();
            var writers = Enumerable.Range(0, 8).Select(w => Task.Run(async () =>
            {
                for (var i = 0; !load.IsCancellationRequested; i++)
                {
                    var key = $"crash/{round}/{w}/{i}";
                    var value = $"{round}-{w}-{i}";
                    try
                    {
                        var put = await kv.PutAsync(new PutRequest { Key = B(key), Value = B(value) });
                        revisions.Add(put.Header.Revision);
                        acknowledged[key] = (put.Header.Revision, value);
                    }
                    catch (RpcException)
                    {
                        return; // the server died mid-request: not acknowledged
                    }
                }
            })).ToArray();
            // Kill mid-load: after some writes were acknowledged (a gate, not a timing assertion: a busy machine is slower).
            await Task.Delay(TimeSpan.FromMilliseconds(1500));
            for (var waited = 0; revisions.Count < 50 && waited < 300 && !host.HasExited; waited++)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(100));
            }

            host.Kill(); // SIGKILL
            await load.CancelAsync();
            await Task.WhenAll(writers);
            await host.WaitForExitAsync();

            var sorted = revisions.Order().ToList();
            Assert.NotEmpty(sorted);
            Assert.Equal(sorted.Count, sorted.Distinct().Count());
            Assert.True(sorted[0] > highest, $"round {round}: revision {sorted[0]} is not above the previous round's {highest}");
            highest = sorted[^1];
        }

        using var last = StartHost(db, socket);
        using var finalChannel = TestServer.CreateChannel(socket);
        var finalKv = new KV.KVClient(finalChannel);
        var all = await finalKv.RangeAsync(new RangeRequest { Key = B("crash/"), RangeEnd = PrefixEnd("crash/") });
        foreach (var (key, (_, value)) in acknowledged)
        {
            Assert.Contains(all.Kvs, k => S(k.Key) == key && S(k.Value) == value);
        }

        Assert.True(all.Header.Revision >= highest);
        var next = await finalKv.PutAsync(new PutRequest { Key = B("after"), Value = B("x") });
        Assert.True(next.Header.Revision > highest);
        last.Kill();
        await last.WaitForExitAsync();
    }

    private static Process StartHost(string db, string socket)
    {
        var hostDll = Path.Combine(AppContext.BaseDirectory, "Coracle.Plugins.Datastore.Sql.TestHost.dll");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(hostDll);
        psi.ArgumentList.Add(db);
        psi.ArgumentList.Add(socket);
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
