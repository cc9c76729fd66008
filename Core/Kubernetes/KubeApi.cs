using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Coracle.Core.Addons;
using Coracle.Core.Hosting;

namespace Coracle.Core.Kubernetes;

/// <summary>kube-apiserver did not answer (connection refused, reset, timed out): the whole pass waits and retries.</summary>
internal sealed class KubeApiUnavailableException(string message, Exception inner) : Exception(message, inner);

/// <summary>An answer of kube-apiserver: the status and the JSON body (a <c>Status</c> object for most errors).</summary>
internal sealed record KubeResponse(HttpStatusCode Status, JsonNode? Body, string Text)
{
    public bool IsSuccess => (int)Status is >= 200 and < 300;

    public bool IsNotFound => Status == HttpStatusCode.NotFound;

    public bool IsConflict => Status == HttpStatusCode.Conflict;

    /// <summary>The <c>Status</c> message, else the body's start.</summary>
    public string Message => ObjectRef.Text(Body?["message"]) ?? (Text.Length > 300 ? Text[..300] : Text);

    /// <summary><c>HTTP 422 (Invalid): MESSAGE</c>.</summary>
    public string Describe() =>
        ObjectRef.Text(Body?["reason"]) is { } reason ? $"HTTP {(int)Status} ({reason}): {Message}" : $"HTTP {(int)Status}: {Message}";
}

/// <summary>
/// The few REST calls Coracle's own controllers make to kube-apiserver — GET, server-side apply, POST, PUT, DELETE of
/// JSON — over one client that trusts the cluster CA and presents the admin client certificate
/// (<see cref="TlsClient"/>). Transport failures become <see cref="KubeApiUnavailableException"/>; every HTTP answer is
/// returned as it is.
/// </summary>
internal sealed class KubeApi : IDisposable
{
    private readonly HttpClient _client;

    public KubeApi(Uri server, string caFile, string certFile, string keyFile, TimeSpan? timeout = null)
    {
        var handler = TlsClient.Configure(new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(5) }, caFile, certFile, keyFile);
        _client = new HttpClient(handler, disposeHandler: true) { BaseAddress = server, Timeout = timeout ?? TimeSpan.FromSeconds(30) };
    }

    public Task<KubeResponse> GetAsync(string path, CancellationToken cancellationToken) =>
        SendAsync(HttpMethod.Get, path, null, null, cancellationToken);

    /// <summary>Server-side apply (<c>PATCH ?fieldManager=MANAGER&amp;force=true</c>) of <paramref name="body"/> at <paramref name="path"/> (the object's own path).</summary>
    public Task<KubeResponse> ApplyAsync(string path, JsonNode body, string fieldManager, CancellationToken cancellationToken) =>
        SendAsync(HttpMethod.Patch, $"{path}?fieldManager={Uri.EscapeDataString(fieldManager)}&force=true", body, "application/apply-patch+yaml", cancellationToken);

    /// <summary>A strategic merge patch (<c>application/strategic-merge-patch+json</c>), e.g. of a Node's status conditions (merged by type).</summary>
    public Task<KubeResponse> PatchAsync(string path, JsonNode body, CancellationToken cancellationToken) =>
        SendAsync(HttpMethod.Patch, path, body, "application/strategic-merge-patch+json", cancellationToken);

    public Task<KubeResponse> CreateAsync(string collectionPath, JsonNode body, CancellationToken cancellationToken) =>
        SendAsync(HttpMethod.Post, collectionPath, body, "application/json", cancellationToken);

    public Task<KubeResponse> ReplaceAsync(string path, JsonNode body, CancellationToken cancellationToken) =>
        SendAsync(HttpMethod.Put, path, body, "application/json", cancellationToken);

    /// <summary>Deletes with background propagation (the object's dependents go after it, as kubectl does).</summary>
    public Task<KubeResponse> DeleteAsync(string path, CancellationToken cancellationToken) =>
        SendAsync(HttpMethod.Delete, $"{path}?propagationPolicy=Background", null, null, cancellationToken);

    private async Task<KubeResponse> SendAsync(HttpMethod method, string path, JsonNode? body, string? contentType, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is not null)
        {
            request.Content = new StringContent(body.ToJsonString(), Encoding.UTF8);
            request.Content.Headers.ContentType = new MediaTypeHeaderValue(contentType!);
        }

        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        try
        {
            using var response = await _client.SendAsync(request, cancellationToken);
            var text = await response.Content.ReadAsStringAsync(cancellationToken);
            JsonNode? json = null;
            try
            {
                json = text.Length > 0 ? JsonNode.Parse(text) : null;
            }
            catch (JsonException)
            {
            }

            return new KubeResponse(response.StatusCode, json, text);
        }
        catch (HttpRequestException ex)
        {
            throw new KubeApiUnavailableException($"{method} {path}: {ex.InnerException?.Message ?? ex.Message}", ex);
        }
        catch (TaskCanceledException ex) when (!cancellationToken.IsCancellationRequested)
        {
            throw new KubeApiUnavailableException($"{method} {path}: no answer within {_client.Timeout.TotalSeconds:0} s", ex);
        }
        catch (IOException ex)
        {
            throw new KubeApiUnavailableException($"{method} {path}: {ex.Message}", ex);
        }
    }

    public void Dispose() => _client.Dispose();
}
