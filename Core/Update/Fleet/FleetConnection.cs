using Coracle.Core.Hosting;
using Coracle.Core.Kubernetes;

namespace Coracle.Core.Update.Fleet;

/// <summary>
/// Where the fleet controller reaches kube-apiserver and as whom: a <see cref="KubeApi"/> for its reads and writes, and
/// an <see cref="HttpClient"/> without a request timeout for its long-running watches.
/// </summary>
internal sealed record FleetConnection(Uri Server, string CaFile, string CertFile, string KeyFile)
{
    /// <summary>Requests time out after this (a watch does not).</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(30);

    public KubeApi Api() => new(Server, CaFile, CertFile, KeyFile, RequestTimeout);

    public HttpClient WatchClient()
    {
        var handler = TlsClient.Configure(new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(5) }, CaFile, CertFile, KeyFile);
        return new HttpClient(handler, disposeHandler: true) { BaseAddress = Server, Timeout = Timeout.InfiniteTimeSpan };
    }
}
