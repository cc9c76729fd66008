using System.Net;
using System.Security.Cryptography.X509Certificates;
using Coracle.Plugins.Datastore.Sql.Api;
using Coracle.Plugins.Datastore.Sql.Logging;
using Coracle.Plugins.Datastore.Sql.Mvcc;
using Coracle.Plugins.Datastore.Sql.Storage;
using Coracle.Plugins.Datastore.Sql.Transport;
using Grpc.Health.V1;
using Grpc.HealthCheck;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Coracle.Plugins.Datastore.Sql;

/// <summary>
/// The etcd v3 server over SQL. Composition in one place: dialect → revision log → KV engine, watch hub and
/// lessor → gRPC services on Kestrel. <see cref="RunAsync"/> opens the store, serves until cancelled, then
/// drains in-flight requests and closes the store.
/// </summary>
public sealed class EtcdServer
{
    private readonly EtcdServerOptions _options;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Creates the server; nothing starts until <see cref="RunAsync"/>.</summary>
    public EtcdServer(EtcdServerOptions options, ILoggerFactory loggerFactory)
    {
        _options = options;
        _loggerFactory = loggerFactory;
        _logger = loggerFactory.CreateLogger("datastore");
    }

    /// <summary>Completes when clients can connect; faults when start-up failed.</summary>
    public Task Ready => _ready.Task;

    /// <summary>The revision log of the current run (null before it starts); tests and benchmarks read its counters.</summary>
    public RevisionLog? Log { get; private set; }

    /// <summary>The client URLs this server answers on.</summary>
    public IReadOnlyList<string> ClientUrls
    {
        get
        {
            var urls = new List<string>();
            if (_options.UnixSocket is { } socket)
            {
                urls.Add("unix://" + socket);
            }

            if (_options.ListenAddress is { } tls)
            {
                urls.Add("https://" + tls);
            }

            if (_options.InsecureListenAddress is { } plain)
            {
                urls.Add("http://" + plain);
            }

            return urls;
        }
    }

    /// <summary>Opens the store, serves until <paramref name="cancellationToken"/> is cancelled, then drains and closes.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        try
        {
            await RunCoreAsync(cancellationToken);
        }
        catch (Exception e)
        {
            _ready.TrySetException(e);
            throw;
        }
        finally
        {
            _ready.TrySetCanceled(CancellationToken.None);
        }
    }

    private async Task RunCoreAsync(CancellationToken cancellationToken)
    {
        var identity = EtcdMemberIdentity.For(_options.MemberName);
        var log = new RevisionLog(_options.Dialect, _loggerFactory.CreateLogger("datastore.log"), _options.Log);
        Log = log;
        var kv = new KvEngine(log, identity);
        var hub = new WatchHub(kv, _loggerFactory.CreateLogger("datastore.watch"), _options.MaxRequestBytes, _options.MaxWatchStreamBufferBytes);
        var lessor = new Lessor(kv, _options.Time, _loggerFactory.CreateLogger("datastore.lease"), _options.MinLeaseTtl);
        var metrics = new DatastoreMetrics();
        using var stopping = new CancellationTokenSource();
        var background = new List<Task>();
        WebApplication? app = null;
        try
        {
            _logger.Opening(_options.Dialect.Name, _options.Dialect.Location);
            await log.OpenAsync(cancellationToken);
            lessor.Load();
            var lifetime = new ServerLifetime { Stopping = stopping.Token, ClientUrls = ClientUrls, MaxRequestBytes = _options.MaxRequestBytes };
            var health = new HealthServiceImpl();
            app = Build(kv, hub, lessor, identity, metrics, lifetime, health, log);
            PrepareSocket(_options.UnixSocket);
            PrepareSocket(MetricsSocket);
            await app.StartAsync(cancellationToken);
            RestrictSocket(_options.UnixSocket);
            RestrictSocket(MetricsSocket);
            health.SetStatus("", HealthCheckResponse.Types.ServingStatus.Serving);
            background.Add(RunLoop(ct => lessor.RunExpiryAsync(_options.LeaseCheckInterval, ct), stopping.Token));
            background.Add(RunLoop(ct => hub.RunProgressAsync(_options.ProgressNotifyInterval, ct), stopping.Token));
            background.Add(RunLoop(ct => CompactLoopAsync(kv, ct), stopping.Token));
            if (log.WriteEconomy)
            {
                _logger.WriteEconomyOn(string.Join(", ", _options.Log.VolatilePrefixes), _options.Log.VolatileFlushInterval);
            }

            _logger.Serving(log.Revision, string.Join(", ", ClientUrls));
            _ready.TrySetResult();
            try
            {
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }
            catch (OperationCanceledException)
            {
            }

            _logger.Draining();
            health.SetStatus("", HealthCheckResponse.Types.ServingStatus.NotServing);
        }
        finally
        {
            await stopping.CancelAsync();
            if (app is not null)
            {
                using var drain = new CancellationTokenSource(_options.ShutdownTimeout);
                try
                {
                    await app.StopAsync(drain.Token);
                }
                catch (OperationCanceledException)
                {
                }

                await app.DisposeAsync();
            }

            foreach (var task in background)
            {
                try
                {
                    await task;
                }
                catch (OperationCanceledException)
                {
                }
            }

            await log.DisposeAsync();
            DeleteSocket(_options.UnixSocket);
            DeleteSocket(MetricsSocket);
            _logger.Closed(log.Revision);
        }
    }

    private string? MetricsSocket =>
        _options.MetricsAddress is { } m && m.StartsWith("unix://", StringComparison.Ordinal) ? m["unix://".Length..] : null;

    private async Task CompactLoopAsync(KvEngine kv, CancellationToken cancellationToken)
    {
        if (kv.Log.CompactedPhysically < kv.Log.CompactRevision)
        {
            await kv.Log.CompactPhysicallyAsync(cancellationToken);
        }

        if (_options.CompactInterval <= TimeSpan.Zero)
        {
            return;
        }

        using var timer = new PeriodicTimer(_options.CompactInterval);
        while (await timer.WaitForNextTickAsync(cancellationToken))
        {
            var compacted = await kv.AutoCompactAsync(_options.CompactMinRetain, cancellationToken);
            if (compacted > 0)
            {
                _logger.Compacted(compacted);
            }
        }
    }

    private async Task RunLoop(Func<CancellationToken, Task> loop, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await loop(cancellationToken);
                return;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (ObjectDisposedException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                _logger.BackgroundTaskFailed(e);
                await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken).ContinueWith(_ => { }, TaskScheduler.Default);
            }
        }
    }

    private WebApplication Build(KvEngine kv, WatchHub hub, Lessor lessor, EtcdMemberIdentity identity, DatastoreMetrics metrics, ServerLifetime lifetime, HealthServiceImpl health, RevisionLog log)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.ClearProviders();
        builder.Services.Replace(ServiceDescriptor.Singleton(_loggerFactory));
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = _options.ShutdownTimeout);

        // The embedding process owns SIGTERM/SIGINT and stops this server through RunAsync's token, in its own order;
        // the default console lifetime would stop Kestrel on its own at the signal and leave the store open.
        builder.Services.Replace(ServiceDescriptor.Singleton<IHostLifetime, EmbeddedLifetime>());
        builder.WebHost.UseKestrelHttpsConfiguration();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.Http2.MaxStreamsPerConnection = _options.MaxConcurrentStreams;
            k.Limits.MaxRequestBodySize = null;
            if (_options.UnixSocket is { } socket)
            {
                k.ListenUnixSocket(socket, l =>
                {
                    l.Protocols = HttpProtocols.Http2;
                    l.Use(Http2AuthorityFilter.Middleware);
                });
            }

            if (_options.ListenAddress is { } address)
            {
                var tls = _options.Tls ?? throw new InvalidOperationException("a TLS listen address needs certificate, key and CA files");
                k.Listen(IPEndPoint.Parse(address), l =>
                {
                    l.Protocols = HttpProtocols.Http2;
                    l.UseHttps(TlsOptions(tls));
                    l.Use(Http2AuthorityFilter.Middleware);
                });
            }

            if (_options.InsecureListenAddress is { } plain)
            {
                k.Listen(IPEndPoint.Parse(plain), l =>
                {
                    l.Protocols = HttpProtocols.Http2;
                    l.Use(Http2AuthorityFilter.Middleware);
                });
            }

            if (_options.MetricsAddress is { } metricsAddress)
            {
                if (MetricsSocket is { } metricsSocket)
                {
                    k.ListenUnixSocket(metricsSocket, l => l.Protocols = HttpProtocols.Http1);
                }
                else
                {
                    k.Listen(IPEndPoint.Parse(metricsAddress), l => l.Protocols = HttpProtocols.Http1);
                }
            }
        });
        builder.Services.AddGrpc(o =>
        {
            // etcd accepts requests up to the limit plus gRPC overhead and answers "request is too large" above the limit.
            o.MaxReceiveMessageSize = _options.MaxRequestBytes + (512 * 1024);
            o.MaxSendMessageSize = null;
            o.Interceptors.Add<EtcdInterceptor>();
        });
        builder.Services.AddSingleton(kv);
        builder.Services.AddSingleton(hub);
        builder.Services.AddSingleton(lessor);
        builder.Services.AddSingleton(identity);
        builder.Services.AddSingleton(metrics);
        builder.Services.AddSingleton(lifetime);
        builder.Services.AddSingleton(health);
        var app = builder.Build();
        app.MapGrpcService<KvService>();
        app.MapGrpcService<WatchService>();
        app.MapGrpcService<LeaseService>();
        app.MapGrpcService<ClusterService>();
        app.MapGrpcService<MaintenanceService>();
        app.MapGrpcService<HealthServiceImpl>();
        app.MapGet("/metrics", () => Results.Text(metrics.Render(log, hub, lessor), "text/plain; version=0.0.4"));
        return app;
    }

    private static HttpsConnectionAdapterOptions TlsOptions(TlsSettings tls)
    {
        var ca = new X509Certificate2Collection();
        ca.ImportFromPemFile(tls.CaFile);
        return new HttpsConnectionAdapterOptions
        {
            ServerCertificate = X509Certificate2.CreateFromPemFile(tls.CertFile, tls.KeyFile),
            ClientCertificateMode = ClientCertificateMode.RequireCertificate,
            ClientCertificateValidation = (certificate, _, _) =>
            {
                using var chain = new X509Chain();
                chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                chain.ChainPolicy.CustomTrustStore.AddRange(ca);
                chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                return chain.Build(certificate);
            },
        };
    }

    private static void PrepareSocket(string? socket)
    {
        if (socket is null)
        {
            return;
        }

        var dir = Path.GetDirectoryName(Path.GetFullPath(socket))!;
        if (!Directory.Exists(dir) && !OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        DeleteSocket(socket);
    }

    private static void RestrictSocket(string? socket)
    {
        if (socket is not null && !OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(socket, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
    }

    private static void DeleteSocket(string? socket)
    {
        if (socket is not null && File.Exists(socket) && (File.GetAttributes(socket) & FileAttributes.Directory) == 0)
        {
            File.Delete(socket);
        }
    }
}

/// <summary>A host lifetime that ignores process signals: the embedding process decides when the server stops.</summary>
internal sealed class EmbeddedLifetime : IHostLifetime
{
    public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
