using System.Net;
using System.Net.WebSockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Coracle.Plugins.Ingress.Tests.Support;

/// <summary>
/// A real Kestrel backend on a loopback port: answers with its name and what it received (Host, X-Forwarded-*), echoes
/// WebSocket messages on <c>/ws</c>, holds <c>/slow</c> until <see cref="Release"/>, and never answers <c>/hang</c>.
/// </summary>
internal sealed class TestBackend : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly TaskCompletionSource _slowArrived = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _slowRelease = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private TestBackend(string name, WebApplication app)
    {
        Name = name;
        _app = app;
    }

    public string Name { get; }

    public int Port { get; private set; }

    /// <summary>Completes when a request to /slow arrived.</summary>
    public Task SlowArrived => _slowArrived.Task;

    public void Release() => _slowRelease.TrySetResult();

    public static async Task<TestBackend> StartAsync(string name)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        var backend = new TestBackend(name, app);
        app.UseWebSockets();
        app.Run(backend.HandleAsync);
        await app.StartAsync();
        backend.Port = new Uri(app.Urls.First()).Port;
        return backend;
    }

    public async ValueTask DisposeAsync()
    {
        Release();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private async Task HandleAsync(HttpContext context)
    {
        var path = context.Request.Path.Value ?? "/";
        if (path == "/ws" && context.WebSockets.IsWebSocketRequest)
        {
            using var ws = await context.WebSockets.AcceptWebSocketAsync();
            var buffer = new byte[4096];
            while (true)
            {
                var r = await ws.ReceiveAsync(buffer, context.RequestAborted);
                if (r.MessageType == WebSocketMessageType.Close)
                {
                    await ws.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", CancellationToken.None);
                    return;
                }

                var reply = System.Text.Encoding.UTF8.GetBytes($"{Name} echo: " + System.Text.Encoding.UTF8.GetString(buffer, 0, r.Count));
                await ws.SendAsync(reply, WebSocketMessageType.Text, true, context.RequestAborted);
            }
        }

        if (path == "/slow")
        {
            _slowArrived.TrySetResult();
            await _slowRelease.Task.WaitAsync(context.RequestAborted);
            await context.Response.WriteAsync($"{Name} slow done");
            return;
        }

        if (path == "/hang")
        {
            await Task.Delay(Timeout.Infinite, context.RequestAborted);
            return;
        }

        var h = context.Request.Headers;
        await context.Response.WriteAsync(
            $"backend={Name}\npath={path}\nhost={h.Host}\nxff={h["X-Forwarded-For"]}\nxfp={h["X-Forwarded-Proto"]}\nxfh={h["X-Forwarded-Host"]}\n");
    }
}
