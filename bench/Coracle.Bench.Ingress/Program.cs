using System.Diagnostics;
using System.Globalization;
using System.Net;
using Coracle.Plugins.Ingress.Yarp.Proxy;
using Coracle.Plugins.Ingress.Yarp.Routing;
using k8s.Models;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

// Ingress proxy overhead (docs/benchmarks.md): a Kestrel backend on loopback answering a small body, measured straight
// and through the yarp plugin's proxy (HTTP/1.1, keep-alive, N concurrent clients for D seconds each, one warm-up run
// first). Client, proxy and backend share this process and the machine's cores, so the figures are a lower bound.
var seconds = 10;
var concurrency = 32;
var bodyBytes = 128;
for (var i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--seconds" when i + 1 < args.Length:
            seconds = int.Parse(args[++i], CultureInfo.InvariantCulture);
            break;
        case "--concurrency" when i + 1 < args.Length:
            concurrency = int.Parse(args[++i], CultureInfo.InvariantCulture);
            break;
        case "--body" when i + 1 < args.Length:
            bodyBytes = int.Parse(args[++i], CultureInfo.InvariantCulture);
            break;
        default:
            await Console.Error.WriteLineAsync("usage: Coracle.Bench.Ingress [--seconds N] [--concurrency N] [--body BYTES]");
            return 2;
    }
}

var body = new string('x', bodyBytes);
var builder = WebApplication.CreateSlimBuilder();
builder.Logging.ClearProviders();
builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
await using var backend = builder.Build();
backend.Run(c => c.Response.WriteAsync(body));
await backend.StartAsync();
var backendPort = new Uri(backend.Urls.First()).Port;

GC.Collect();
var rssBefore = Process.GetCurrentProcess().WorkingSet64;
await using var proxy = new IngressProxy(new ProxyOptions(IPAddress.Loopback, 0, 0, TimeSpan.FromSeconds(60)), NullLoggerFactory.Instance);
await proxy.StartAsync(CancellationToken.None);
proxy.Table = RoutingTableBuilder.Build(
    new ClusterObjects(
        [new V1Ingress
        {
            Metadata = new V1ObjectMeta { Name = "bench", NamespaceProperty = "default" },
            Spec = new V1IngressSpec
            {
                IngressClassName = "yarp",
                Rules = [new V1IngressRule { Host = "bench.test", Http = new V1HTTPIngressRuleValue { Paths = [new V1HTTPIngressPath { Path = "/", PathType = "Prefix", Backend = new V1IngressBackend { Service = new V1IngressServiceBackend { Name = "web", Port = new V1ServiceBackendPort { Number = 80 } } } }] } }],
            },
        }],
        [new V1Service { Metadata = new V1ObjectMeta { Name = "web", NamespaceProperty = "default" }, Spec = new V1ServiceSpec { Ports = [new V1ServicePort { Port = 80 }] } }],
        [new V1EndpointSlice
        {
            Metadata = new V1ObjectMeta { Name = "web-1", NamespaceProperty = "default", Labels = new Dictionary<string, string> { ["kubernetes.io/service-name"] = "web" } },
            AddressType = "IPv4",
            Ports = [new Discoveryv1EndpointPort { Port = backendPort }],
            Endpoints = [new V1Endpoint { Addresses = ["127.0.0.1"], Conditions = new V1EndpointConditions { Ready = true } }],
        }],
        []),
    new ClassSelection("yarp", true));

Console.WriteLine($"ingress proxy vs direct, loopback, HTTP/1.1 keep-alive, {concurrency} clients, {seconds} s per run, {bodyBytes}-byte body, {Environment.ProcessorCount} cores");
var direct = new Uri($"http://127.0.0.1:{backendPort}/");
var proxied = new Uri($"http://127.0.0.1:{proxy.HttpPort}/");
await RunAsync(proxied, 1, 1); // one client, one second: the proxy has served, JIT'd its path and holds one backend connection
GC.Collect();
var rssServing = Process.GetCurrentProcess().WorkingSet64;
await RunAsync(proxied, 2, concurrency); // warm-up: JIT and connection pools of both paths
await RunAsync(direct, 2, concurrency);
foreach (var (name, uri) in new[] { ("direct", direct), ("through yarp", proxied) })
{
    var (rps, p50, p99, errors) = await RunAsync(uri, seconds, concurrency);
    Console.WriteLine($"{name,-14} {rps,9:F0} req/s   p50 {p50,7:F2} ms   p99 {p99,7:F2} ms   errors {errors}");
}

GC.Collect();
static string Mib(long bytes) => (bytes / (1024.0 * 1024.0)).ToString("F1", CultureInfo.InvariantCulture);
Console.WriteLine($"process RSS: +{Mib(rssServing - rssBefore)} MiB once the proxy started and served one client; +{Mib(Process.GetCurrentProcess().WorkingSet64 - rssBefore)} MiB after the runs (with the load clients' own pools)");
return 0;

static async Task<(double Rps, double P50, double P99, int Errors)> RunAsync(Uri uri, int seconds, int concurrency)
{
    using var client = new HttpClient(new SocketsHttpHandler { UseProxy = false, MaxConnectionsPerServer = concurrency });
    var stop = Stopwatch.StartNew();
    var until = TimeSpan.FromSeconds(seconds);
    var latencies = new List<double>[concurrency];
    var errors = 0;
    var workers = Enumerable.Range(0, concurrency).Select(w => Task.Run(async () =>
    {
        var mine = latencies[w] = new List<double>(100_000);
        while (stop.Elapsed < until)
        {
            var start = Stopwatch.GetTimestamp();
            using var request = new HttpRequestMessage(HttpMethod.Get, uri);
            request.Headers.Host = "bench.test";
            using var response = await client.SendAsync(request);
            await response.Content.ReadAsByteArrayAsync();
            if (response.StatusCode != HttpStatusCode.OK)
            {
                Interlocked.Increment(ref errors);
            }

            mine.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }
    })).ToArray();
    await Task.WhenAll(workers);
    var elapsed = stop.Elapsed.TotalSeconds;
    var all = latencies.SelectMany(l => l).Order().ToArray();
    return (all.Length / elapsed, all[all.Length / 2], all[(int)(all.Length * 0.99)], errors);
}
