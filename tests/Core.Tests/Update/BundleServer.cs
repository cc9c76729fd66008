using System.Net;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Coracle.Core.Tests.Update;

/// <summary>
/// A loopback HTTPS server for bundles (Kestrel, a certificate of the test CA) that honours <c>Range: bytes=N-</c>;
/// with <see cref="Truncate"/> it announces the full length, sends half and drops the connection.
/// </summary>
internal sealed class BundleServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly Dictionary<string, string> _files = new(StringComparer.Ordinal);

    private BundleServer(WebApplication app, int port)
    {
        _app = app;
        Port = port;
    }

    public int Port { get; }

    public bool Truncate { get; set; }

    /// <summary>Range requests seen (their start offsets).</summary>
    public List<long> RangeStarts { get; } = [];

    public string Url(string name) => $"https://127.0.0.1:{Port}/{name}";

    public void Serve(string name, string file) => _files[name] = file;

    public static async Task<BundleServer> StartAsync(UpdatePki pki)
    {
        var port = FreePorts.Next();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        var cert = X509Certificate2.CreateFromPemFile(pki.Cert("server"), pki.Key("server"));
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, port, l => l.UseHttps(cert)));
        var app = builder.Build();
        var server = new BundleServer(app, port);
        app.Run(server.HandleAsync);
        await app.StartAsync();
        return server;
    }

    private async Task HandleAsync(HttpContext context)
    {
        if (!_files.TryGetValue(context.Request.Path.Value!.TrimStart('/'), out var file))
        {
            context.Response.StatusCode = 404;
            return;
        }

        var bytes = await File.ReadAllBytesAsync(file);
        long start = 0;
        if (context.Request.Headers.Range.ToString() is { Length: > 0 } range && range.StartsWith("bytes=", StringComparison.Ordinal) && range.EndsWith('-'))
        {
            start = long.Parse(range["bytes=".Length..^1], System.Globalization.CultureInfo.InvariantCulture);
            lock (RangeStarts)
            {
                RangeStarts.Add(start);
            }

            if (start >= bytes.Length)
            {
                context.Response.StatusCode = 416;
                return;
            }

            context.Response.StatusCode = 206;
            context.Response.Headers.ContentRange = $"bytes {start}-{bytes.Length - 1}/{bytes.Length}";
        }

        var length = bytes.Length - start;
        context.Response.ContentLength = length;
        if (Truncate)
        {
            await context.Response.Body.WriteAsync(bytes.AsMemory((int)start, (int)(length / 2)));
            await context.Response.Body.FlushAsync();
            context.Abort();
            return;
        }

        await context.Response.Body.WriteAsync(bytes.AsMemory((int)start, (int)length));
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
