using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Coracle.Plugins;
using Grpc.Health.V1;
using Grpc.Net.Client;

namespace Coracle.Core.Supervision;

/// <summary>Runs one attempt of a <see cref="ReadinessProbe"/>: true when ready, false otherwise.</summary>
internal static class Probes
{
    public static async Task<bool> ProbeAsync(ReadinessProbe probe, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(probe.Timeout);
        try
        {
            return probe switch
            {
                UnixSocketProbe unix => await ConnectUnixAsync(unix.Path, timeout.Token),
                TcpProbe tcp => await ConnectTcpAsync(tcp, timeout.Token),
                HttpProbe http => await HttpAsync(http, timeout.Token),
                GrpcHealthProbe grpc => await GrpcAsync(grpc, timeout.Token),
                CustomProbe custom => await custom.Check(timeout.Token),
                _ => false,
            };
        }
        catch (Exception ex) when (ex is SocketException or IOException or HttpRequestException or OperationCanceledException
            or Grpc.Core.RpcException or System.Security.Authentication.AuthenticationException or InvalidOperationException
            or System.Security.Cryptography.CryptographicException)
        {
            cancellationToken.ThrowIfCancellationRequested();
            return false;
        }
    }

    private static async Task<bool> ConnectUnixAsync(string path, CancellationToken ct)
    {
        if (!File.Exists(path))
        {
            return false;
        }

        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), ct);
        return true;
    }

    private static async Task<bool> ConnectTcpAsync(TcpProbe probe, CancellationToken ct)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(probe.Host, probe.Port, ct);
        return true;
    }

    internal static SocketsHttpHandler UnixHandler(string path) => new()
    {
        ConnectCallback = async (_, ct) =>
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), ct);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        },
    };

    private static async Task<bool> HttpAsync(HttpProbe probe, CancellationToken ct)
    {
        using var handler = Hosting.TlsClient.Configure(
            probe.UnixSocket is null ? new SocketsHttpHandler() : UnixHandler(probe.UnixSocket), probe.CaFile, probe.ClientCertFile, probe.ClientKeyFile);
        using var client = new HttpClient(handler);
        using var response = await client.GetAsync(probe.Url, ct);
        return response.IsSuccessStatusCode;
    }

    private static async Task<bool> GrpcAsync(GrpcHealthProbe probe, CancellationToken ct)
    {
        GrpcChannel channel;
        if (probe.Address.StartsWith("unix://", StringComparison.Ordinal))
        {
            var path = probe.Address["unix://".Length..];
            if (!File.Exists(path))
            {
                return false;
            }

            channel = GrpcChannel.ForAddress("http://localhost", new GrpcChannelOptions { HttpHandler = UnixHandler(path) });
        }
        else
        {
            channel = GrpcChannel.ForAddress(probe.Address);
        }

        using (channel)
        {
            var client = new Health.HealthClient(channel);
            var reply = await client.CheckAsync(new HealthCheckRequest { Service = probe.Service }, cancellationToken: ct);
            return reply.Status == HealthCheckResponse.Types.ServingStatus.Serving;
        }
    }
}
