using System.Net.Sockets;
using Coracle.Plugins.Runtime.Containerd.Cri;
using Grpc.Core;
using Grpc.Net.Client;

namespace Coracle.Plugins.Runtime.Containerd;

/// <summary>A CRI v1 client over a unix socket (h2c, as kubelet and crictl talk to containerd).</summary>
public sealed class CriClient : IDisposable
{
    private readonly GrpcChannel _channel;

    /// <summary>Connects lazily to <paramref name="socketPath"/>; every new connection dials the socket again.</summary>
    public CriClient(string socketPath)
    {
        SocketPath = socketPath;
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, cancellationToken) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellationToken);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        _channel = GrpcChannel.ForAddress("http://localhost", new GrpcChannelOptions
        {
            HttpHandler = handler,
            DisposeHttpClient = true,
            MaxReceiveMessageSize = 16 * 1024 * 1024,
        });
        Runtime = new RuntimeService.RuntimeServiceClient(_channel);
        Images = new ImageService.ImageServiceClient(_channel);
    }

    /// <summary>The socket this client dials.</summary>
    public string SocketPath { get; }

    /// <summary>runtime.v1.RuntimeService.</summary>
    public RuntimeService.RuntimeServiceClient Runtime { get; }

    /// <summary>runtime.v1.ImageService.</summary>
    public ImageService.ImageServiceClient Images { get; }

    /// <summary>
    /// True when the CRI API answers: Version succeeds and Status reports the RuntimeReady condition true
    /// (NetworkReady is the CNI plugin's business and is not required).
    /// </summary>
    public async Task<bool> IsReadyAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (!File.Exists(SocketPath))
        {
            return false;
        }

        try
        {
            var deadline = DateTime.UtcNow + timeout;
            var version = await Runtime.VersionAsync(new VersionRequest { Version = "v1" }, deadline: deadline, cancellationToken: cancellationToken);
            if (string.IsNullOrEmpty(version.RuntimeApiVersion))
            {
                return false;
            }

            var status = await Runtime.StatusAsync(new StatusRequest(), deadline: deadline, cancellationToken: cancellationToken);
            return status.Status?.Conditions.Any(c => c.Type == "RuntimeReady" && c.Status) == true;
        }
        catch (RpcException)
        {
            return false;
        }
        catch (HttpRequestException)
        {
            return false;
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <inheritdoc />
    public void Dispose() => _channel.Dispose();
}
