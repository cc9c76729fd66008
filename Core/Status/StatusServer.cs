using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Coracle.Core.Logging;
using Microsoft.Extensions.Logging;

namespace Coracle.Core.Status;

/// <summary>
/// Answers <c>coracle status</c> on a unix socket (mode 0600) under the data dir: the client connects, the
/// server writes one JSON document and closes. No TCP port is opened.
/// </summary>
internal sealed class StatusServer : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly Func<NodeStatus> _snapshot;
    private readonly ILogger _log;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private readonly string _path;

    public StatusServer(string path, Func<NodeStatus> snapshot, ILogger log)
    {
        _path = path;
        _snapshot = snapshot;
        _log = log;
        Directory.CreateDirectory(Path.GetDirectoryName(path)!, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        if (File.Exists(path))
        {
            if (StatusClient.TryConnect(path))
            {
                throw new InvalidOperationException($"another coracle is already running with this data dir ({path} answers); stop it first");
            }

            File.Delete(path);
        }

        _socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _socket.Bind(new UnixDomainSocketEndPoint(path));
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        _socket.Listen(128);
        _log.StatusListening(path);
        _loop = Task.Run(AcceptLoopAsync);
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _socket.AcceptAsync(_stop.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            _ = Task.Run(async () =>
            {
                using (client)
                {
                    try
                    {
                        var json = JsonSerializer.Serialize(_snapshot(), StatusJson.Default.NodeStatus);
                        await client.SendAsync(Encoding.UTF8.GetBytes(json), SocketFlags.None);
                        client.Shutdown(SocketShutdown.Both);
                    }
                    catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
                    {
                        _log.StatusFailed(ex.Message);
                    }
                }
            });
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _socket.Dispose();
        await _loop;
        _stop.Dispose();
        try
        {
            File.Delete(_path);
        }
        catch (IOException)
        {
        }
    }
}
