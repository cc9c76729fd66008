using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Coracle.Plugins.Datastore.Sql.Protos;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;

namespace Coracle.Plugins.Datastore.Etcd;

/// <summary>
/// A client of running etcd members over their v3 gRPC API and <c>/health</c>, with mutual TLS: the client certificate
/// is presented and the members' certificates must chain to the given CA (no system roots). One channel per endpoint;
/// calls try the endpoints in order until one answers.
/// </summary>
internal sealed class EtcdClient : IDisposable
{
    private readonly TlsFiles _tls;
    private readonly X509Certificate2 _ca;
    private readonly X509Certificate2 _clientCertificate;
    private readonly Dictionary<string, GrpcChannel> _channels = new(StringComparer.Ordinal);

    public EtcdClient(IReadOnlyList<string> endpoints, TlsFiles tls)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        Endpoints = endpoints;
        _tls = tls ?? throw new ArgumentNullException(nameof(tls));
        _ca = X509CertificateLoader.LoadCertificateFromFile(tls.CaFile);
        using var pem = X509Certificate2.CreateFromPemFile(tls.CertFile, tls.KeyFile);

        // An ephemeral PEM key cannot be used by SslStream on every platform; a PKCS#12 round trip makes it persistent.
        _clientCertificate = X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
    }

    /// <summary>The endpoints, in the order they are tried.</summary>
    public IReadOnlyList<string> Endpoints { get; }

    /// <summary>Time one call may take per endpoint.</summary>
    public TimeSpan CallTimeout { get; init; } = TimeSpan.FromSeconds(5);

    public void Dispose()
    {
        foreach (var channel in _channels.Values)
        {
            channel.Dispose();
        }

        _ca.Dispose();
        _clientCertificate.Dispose();
    }

    /// <summary>Every member, from the first endpoint that answers.</summary>
    public Task<MemberListResponse> MemberListAsync(CancellationToken cancellationToken) =>
        CallAsync((c, o) => new Cluster.ClusterClient(c).MemberListAsync(new MemberListRequest(), o).ResponseAsync, cancellationToken);

    /// <summary>Adds a member (a learner when <paramref name="learner"/>).</summary>
    public Task<MemberAddResponse> MemberAddAsync(IEnumerable<string> peerUrls, bool learner, CancellationToken cancellationToken) =>
        CallAsync((c, o) => new Cluster.ClusterClient(c).MemberAddAsync(new MemberAddRequest { PeerURLs = { peerUrls }, IsLearner = learner }, o).ResponseAsync, cancellationToken);

    /// <summary>Removes a member.</summary>
    public Task<MemberRemoveResponse> MemberRemoveAsync(ulong id, CancellationToken cancellationToken) =>
        CallAsync((c, o) => new Cluster.ClusterClient(c).MemberRemoveAsync(new MemberRemoveRequest { ID = id }, o).ResponseAsync, cancellationToken);

    /// <summary>Promotes a learner that has caught up; etcd refuses while it has not.</summary>
    public Task<MemberPromoteResponse> MemberPromoteAsync(ulong id, CancellationToken cancellationToken) =>
        CallAsync((c, o) => new Cluster.ClusterClient(c).MemberPromoteAsync(new MemberPromoteRequest { ID = id }, o).ResponseAsync, cancellationToken);

    /// <summary>A linearizable read, which only a member of a cluster with quorum answers.</summary>
    public Task<RangeResponse> LinearizableReadAsync(string endpoint, CancellationToken cancellationToken) =>
        CallOneAsync(endpoint, (c, o) => new KV.KVClient(c).RangeAsync(new RangeRequest { Key = ByteString.CopyFromUtf8("/coracle/health"), CountOnly = true }, o).ResponseAsync, cancellationToken);

    /// <summary>A put (tests and migration).</summary>
    public Task<PutResponse> PutAsync(string key, string value, CancellationToken cancellationToken) =>
        CallAsync((c, o) => new KV.KVClient(c).PutAsync(new PutRequest { Key = ByteString.CopyFromUtf8(key), Value = ByteString.CopyFromUtf8(value) }, o).ResponseAsync, cancellationToken);

    /// <summary>
    /// etcd's <c>GET /health</c> on <paramref name="clientUrl"/> over mutual TLS: true when it answers <c>{"health":"true"}</c>
    /// (etcd 3.4 answers true only with a leader and a linearizable read done).
    /// </summary>
    public async Task<bool> HealthAsync(string clientUrl, CancellationToken cancellationToken)
    {
        using var handler = Handler();
        using var http = new HttpClient(handler) { Timeout = CallTimeout };
        try
        {
            using var response = await http.GetAsync(new Uri(clientUrl.TrimEnd('/') + "/health"), cancellationToken);
            if (!response.IsSuccessStatusCode)
            {
                return false;
            }

            using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync(cancellationToken));
            return json.RootElement.TryGetProperty("health", out var health) && health.GetString() == "true";
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or JsonException or IOException)
        {
            cancellationToken.ThrowIfCancellationRequested();
            return false;
        }
    }

    internal async Task<T> CallAsync<T>(Func<GrpcChannel, CallOptions, Task<T>> call, CancellationToken cancellationToken)
    {
        RpcException? last = null;
        foreach (var endpoint in Endpoints)
        {
            try
            {
                return await CallOneAsync(endpoint, call, cancellationToken);
            }
            catch (RpcException e) when (e.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded or StatusCode.Internal or StatusCode.Unknown
                                         && !cancellationToken.IsCancellationRequested)
            {
                last = e;
            }
        }

        throw last ?? new RpcException(new Status(StatusCode.Unavailable, "no etcd endpoint given"));
    }

    private Task<T> CallOneAsync<T>(string endpoint, Func<GrpcChannel, CallOptions, Task<T>> call, CancellationToken cancellationToken)
    {
        if (!_channels.TryGetValue(endpoint, out var channel))
        {
            channel = GrpcChannel.ForAddress(endpoint, new GrpcChannelOptions { HttpHandler = Handler(), DisposeHttpClient = true });
            _channels[endpoint] = channel;
        }

        return call(channel, new CallOptions(deadline: DateTime.UtcNow + CallTimeout, cancellationToken: cancellationToken));
    }

    private SocketsHttpHandler Handler()
    {
        var handler = new SocketsHttpHandler { ConnectTimeout = CallTimeout };
        handler.SslOptions.ClientCertificates = [_clientCertificate];
        handler.SslOptions.RemoteCertificateValidationCallback = TlsTrust.Only(_ca);
        return handler;
    }

    /// <summary>The TLS files this client uses.</summary>
    public TlsFiles Tls => _tls;
}
