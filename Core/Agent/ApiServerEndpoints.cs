using System.Text.Json;
using Coracle.Core.Hosting;
using Coracle.Core.Tunnel;
using Microsoft.Extensions.Logging;

namespace Coracle.Core.Agent;

/// <summary>
/// Keeps <see cref="ServerList"/> up to date from the <c>default/kubernetes</c> Endpoints, where every kube-apiserver of
/// the cluster publishes its advertise address (the server's node IP) and port while it runs (as K3s's agents learn
/// their servers). An empty list is ignored: the servers known so far stay.
/// </summary>
internal sealed class ApiServerEndpoints(Uri apiServer, string caFile, string certFile, string keyFile, ServerList servers, ILogger log)
{
    /// <summary>True once the Endpoints were read.</summary>
    public bool Synced { get; private set; }

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        using var handler = TlsClient.Configure(new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(5) }, caFile, certFile, keyFile);
        using var client = new HttpClient(handler) { BaseAddress = apiServer, Timeout = Timeout.InfiniteTimeSpan };
        var watch = new ClusterWatch<IReadOnlyList<string>>(client, "/api/v1/namespaces/default/endpoints", "metadata.name=kubernetes", Addresses, log)
        {
            Changed = lists =>
            {
                Synced = true;
                var all = lists.SelectMany(l => l).ToList();
                if (all.Count > 0)
                {
                    servers.Update(all);
                }
            },
        };
        await watch.RunAsync(cancellationToken);
    }

    /// <summary>Every <c>ADDRESS:PORT</c> of an Endpoints object (its ready addresses with its <c>https</c> port).</summary>
    public static IReadOnlyList<string> Addresses(JsonElement endpoints)
    {
        var result = new List<string>();
        foreach (var subset in KubeJson.Array(endpoints, "subsets"))
        {
            var ports = KubeJson.Array(subset, "ports").ToList();
            var port = ports.FirstOrDefault(p => KubeJson.String(p, "name") == "https") is { ValueKind: JsonValueKind.Object } https
                ? KubeJson.Int(https, "port")
                : ports.Count == 1 ? KubeJson.Int(ports[0], "port") : null;
            if (port is null)
            {
                continue;
            }

            foreach (var address in KubeJson.Array(subset, "addresses"))
            {
                if (KubeJson.String(address, "ip") is { Length: > 0 } ip)
                {
                    result.Add(ServerList.Format(ip, port.Value));
                }
            }
        }

        return result;
    }
}
