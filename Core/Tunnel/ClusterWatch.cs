using System.Globalization;
using System.Net;
using System.Text.Json;
using Coracle.Core.Logging;
using Microsoft.Extensions.Logging;

namespace Coracle.Core.Tunnel;

/// <summary>
/// A list-and-watch of one Kubernetes resource over plain HTTP(S), as client-go's reflector does: list, then
/// <c>?watch=1&amp;resourceVersion=RV&amp;allowWatchBookmarks=true</c>, newline-delimited JSON events; when the watch ends
/// it resumes from the last resource version, and lists again after <c>410 Gone</c> or an error. Keeps every object
/// (parsed to <typeparamref name="T"/>) by <c>namespace/name</c> and calls <see cref="Changed"/> with all of them after
/// the list and after each event.
/// </summary>
internal sealed class ClusterWatch<T>
    where T : class
{
    private readonly HttpClient _client;
    private readonly string _path;
    private readonly string? _fieldSelector;
    private readonly Func<JsonElement, T?> _parse;
    private readonly ILogger _log;
    private readonly TimeProvider _time;
    private readonly Dictionary<string, T> _objects = new(StringComparer.Ordinal);

    /// <param name="client">An HTTP client whose base address is kube-apiserver and whose handler presents credentials.</param>
    /// <param name="path">The collection, e.g. <c>/api/v1/nodes</c>.</param>
    /// <param name="fieldSelector">An optional field selector, e.g. <c>metadata.name=node1</c>.</param>
    /// <param name="parse">Reads one object; null ignores it.</param>
    /// <param name="log">Where list/watch failures are logged.</param>
    /// <param name="time">The clock of the retry delays.</param>
    public ClusterWatch(HttpClient client, string path, string? fieldSelector, Func<JsonElement, T?> parse, ILogger log, TimeProvider? time = null)
    {
        _client = client;
        _path = path;
        _fieldSelector = fieldSelector;
        _parse = parse;
        _log = log;
        _time = time ?? TimeProvider.System;
    }

    /// <summary>Called on the watch's task with every object, after each list and each event.</summary>
    public Action<IReadOnlyCollection<T>>? Changed { get; init; }

    /// <summary>How long a watch request may stay open before the server ends it (then it resumes).</summary>
    public TimeSpan WatchTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>True once the first list succeeded.</summary>
    public bool Synced { get; private set; }

    /// <summary>The resource, for log lines.</summary>
    public string Resource => _path[(_path.LastIndexOf('/') + 1)..];

    /// <summary>Lists and watches until <paramref name="ct"/> is cancelled, retrying (0.5 s doubling to 30 s) after failures.</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        var failures = 0;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                var version = await ListAsync(ct);
                failures = 0;
                while (version is not null)
                {
                    version = await WatchAsync(version, ct);
                }

                // The watch said 410 Gone (or sent an error): list again, after a breath so a broken watch cannot spin.
                await Task.Delay(TimeSpan.FromSeconds(1), _time, ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (ex is HttpRequestException or IOException or JsonException or OperationCanceledException or InvalidDataException)
            {
                var delay = TimeSpan.FromMilliseconds(Math.Min(30_000, 500 * Math.Pow(2, Math.Min(failures++, 6))));
                var reason = ex.InnerException?.Message ?? ex.Message;

                // A restart of kube-apiserver (or the node's stop) costs a few quiet retries; only a lasting failure warns.
                if (Synced && failures > 4)
                {
                    _log.ClusterWatchFailed(Resource, reason, delay.TotalSeconds);
                }
                else
                {
                    _log.ClusterWatchWaiting(Resource, reason, delay.TotalSeconds);
                }

                try
                {
                    await Task.Delay(delay, _time, ct);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    private string Url(string query) =>
        _path + "?" + query + (_fieldSelector is null ? "" : "&fieldSelector=" + Uri.EscapeDataString(_fieldSelector));

    /// <summary>Lists the collection, replaces every object and returns the list's resource version.</summary>
    private async Task<string> ListAsync(CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(30));
        using var response = await _client.GetAsync(Url("limit=0"), HttpCompletionOption.ResponseHeadersRead, timeout.Token);
        await EnsureOkAsync(response, timeout.Token);
        await using var body = await response.Content.ReadAsStreamAsync(timeout.Token);
        using var list = await JsonDocument.ParseAsync(body, cancellationToken: timeout.Token);
        _objects.Clear();
        foreach (var item in KubeJson.Array(list.RootElement, "items"))
        {
            if (_parse(item) is { } parsed)
            {
                _objects[Key(item)] = parsed;
            }
        }

        Synced = true;
        Changed?.Invoke(_objects.Values.ToList());
        return KubeJson.String(list.RootElement, "metadata", "resourceVersion")
            ?? throw new InvalidDataException($"the list of {Resource} has no metadata.resourceVersion");
    }

    /// <summary>Watches from <paramref name="version"/>; returns the version to resume from, or null to list again.</summary>
    private async Task<string?> WatchAsync(string version, CancellationToken ct)
    {
        var seconds = (int)WatchTimeout.TotalSeconds;
        using var watchLimit = CancellationTokenSource.CreateLinkedTokenSource(ct);

        // The server ends the watch after timeoutSeconds; a connection that goes silent past that is cut here.
        watchLimit.CancelAfter(WatchTimeout + TimeSpan.FromSeconds(30));
        var query = string.Create(CultureInfo.InvariantCulture, $"watch=1&allowWatchBookmarks=true&timeoutSeconds={seconds}&resourceVersion={Uri.EscapeDataString(version)}");
        using var response = await _client.GetAsync(Url(query), HttpCompletionOption.ResponseHeadersRead, watchLimit.Token);
        if (response.StatusCode == HttpStatusCode.Gone)
        {
            return null;
        }

        await EnsureOkAsync(response, watchLimit.Token);
        await using var body = await response.Content.ReadAsStreamAsync(watchLimit.Token);
        using var reader = new StreamReader(body);
        try
        {
            while (await reader.ReadLineAsync(watchLimit.Token) is { } line)
            {
                if (line.Length == 0)
                {
                    continue;
                }

                using var change = JsonDocument.Parse(line);
                var type = KubeJson.String(change.RootElement, "type");
                if (KubeJson.Element(change.RootElement, "object") is not { ValueKind: JsonValueKind.Object } item)
                {
                    continue;
                }

                if (type == "ERROR")
                {
                    // A Status; 410 Gone means the version is too old. Either way: list again.
                    return null;
                }

                version = KubeJson.String(item, "metadata", "resourceVersion") ?? version;
                switch (type)
                {
                    case "ADDED" or "MODIFIED" when _parse(item) is { } parsed:
                        _objects[Key(item)] = parsed;
                        break;
                    case "ADDED" or "MODIFIED" or "DELETED":
                        _objects.Remove(Key(item));
                        break;
                    default:
                        // BOOKMARK: only the resource version moves.
                        continue;
                }

                Changed?.Invoke(_objects.Values.ToList());
            }
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            // The silent-connection limit: resume from the last version.
        }

        return version;
    }

    private static string Key(JsonElement item) =>
        (KubeJson.String(item, "metadata", "namespace") ?? "") + "/" + KubeJson.String(item, "metadata", "name");

    private async Task EnsureOkAsync(HttpResponseMessage response, CancellationToken ct)
    {
        if (!response.IsSuccessStatusCode)
        {
            var text = await response.Content.ReadAsStringAsync(ct);
            throw new HttpRequestException($"GET {_path} answered {(int)response.StatusCode}: {(text.Length > 200 ? text[..200] : text).Trim()}");
        }
    }
}
