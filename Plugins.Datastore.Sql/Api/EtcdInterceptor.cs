using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Coracle.Plugins.Datastore.Sql.Mvcc;
using Coracle.Plugins.Datastore.Sql.Storage;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Core.Interceptors;

namespace Coracle.Plugins.Datastore.Sql.Api;

/// <summary>Turns etcd errors into gRPC statuses, enforces the request size limit and records metrics.</summary>
internal sealed class EtcdInterceptor(DatastoreMetrics metrics, ServerLifetime lifetime) : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        var started = Stopwatch.GetTimestamp();
        var failed = true;
        try
        {
            if (request is IMessage message && message.CalculateSize() > lifetime.MaxRequestBytes)
            {
                throw EtcdErrors.RequestTooLarge;
            }

            var response = await continuation(request, context);
            failed = false;
            return response;
        }
        catch (Exception e) when (Translate(e) is { } rpc)
        {
            throw rpc;
        }
        finally
        {
            metrics.Observe(context.Method, Stopwatch.GetElapsedTime(started), failed);
        }
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        var started = Stopwatch.GetTimestamp();
        var failed = true;
        try
        {
            await continuation(request, responseStream, context);
            failed = false;
        }
        catch (Exception e) when (Translate(e) is { } rpc)
        {
            throw rpc;
        }
        finally
        {
            metrics.Observe(context.Method, Stopwatch.GetElapsedTime(started), failed);
        }
    }

    public override async Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        var failed = true;
        var started = Stopwatch.GetTimestamp();
        try
        {
            await continuation(requestStream, responseStream, context);
            failed = false;
        }
        catch (Exception e) when (Translate(e) is { } rpc)
        {
            throw rpc;
        }
        finally
        {
            metrics.Observe(context.Method, Stopwatch.GetElapsedTime(started), failed);
        }
    }

    private static RpcException? Translate(Exception e) => e switch
    {
        EtcdException etcd => etcd.ToRpc(),
        ObjectDisposedException => EtcdErrors.Stopped.ToRpc(),
        DatastoreUnavailableException => EtcdErrors.Timeout.ToRpc(),
        _ => null,
    };
}
