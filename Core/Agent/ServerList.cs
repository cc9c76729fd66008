using System.Globalization;
using System.Net;
using System.Text.Json;
using Coracle.Core.Hosting;
using Coracle.Core.Logging;
using Microsoft.Extensions.Logging;

namespace Coracle.Core.Agent;

/// <summary>
/// The API servers an agent knows (<c>HOST:PORT</c> of each kube-apiserver), as K3s's agent load balancer keeps them:
/// the server it joined (always kept, as the fallback) plus every address of the <c>default/kubernetes</c> Endpoints, in
/// <c>DATA/agent/load-balancer.json</c> (0600) so a restart knows the other servers while the one it joined is down.
/// </summary>
internal sealed class ServerList
{
    private readonly Lock _lock = new();
    private readonly string? _file;
    private readonly ILogger _log;
    private IReadOnlyList<string> _servers;

    private ServerList(string? file, string defaultServer, IReadOnlyList<string> servers, ILogger log)
    {
        _file = file;
        Default = defaultServer;
        _servers = servers;
        _log = log;
    }

    /// <summary>The API server of the server the agent joined (<c>HOST:PORT</c>).</summary>
    public string Default { get; }

    /// <summary>Every known API server, the default first; never empty.</summary>
    public IReadOnlyList<string> Servers
    {
        get
        {
            lock (_lock)
            {
                return _servers;
            }
        }
    }

    /// <summary>Raised (on the caller's thread) with the new list after <see cref="Update"/> changed it.</summary>
    public event Action<IReadOnlyList<string>>? Changed;

    /// <summary>A list held in memory only (tests).</summary>
    public static ServerList InMemory(string defaultServer, ILogger log, params string[] others) =>
        new(null, defaultServer, Normalize(defaultServer, others), log);

    /// <summary>
    /// The list in <paramref name="file"/> with <paramref name="defaultServer"/> first; a missing file is an empty list and
    /// an unreadable one is logged and ignored (the default server alone still works).
    /// </summary>
    public static ServerList Load(string file, string defaultServer, ILogger log)
    {
        var saved = Array.Empty<string>();
        if (File.Exists(file))
        {
            try
            {
                var state = JsonSerializer.Deserialize<Saved>(File.ReadAllText(file), SavedJson);
                saved = state?.Servers?.Where(s => Parse(s) is not null).ToArray() ?? [];
            }
            catch (Exception ex) when (ex is JsonException or IOException or UnauthorizedAccessException)
            {
                log.ServerListUnreadable(file, ex.Message);
            }
        }

        return new ServerList(file, defaultServer, Normalize(defaultServer, saved), log);
    }

    /// <summary>
    /// Replaces the learned servers with <paramref name="servers"/> (the default stays); saves and raises
    /// <see cref="Changed"/> when the list changed. Returns true then.
    /// </summary>
    public bool Update(IEnumerable<string> servers)
    {
        var next = Normalize(Default, servers);
        IReadOnlyList<string> before;
        lock (_lock)
        {
            before = _servers;
            if (before.SequenceEqual(next, StringComparer.Ordinal))
            {
                return false;
            }

            _servers = next;
            if (_file is not null)
            {
                FileUtil.WriteAtomic(_file, JsonSerializer.Serialize(new Saved { Servers = [.. next] }, SavedJson) + "\n",
                    UnixFileMode.UserRead | UnixFileMode.UserWrite);
            }
        }

        _log.ServerListChanged(string.Join(", ", before), string.Join(", ", next));
        Changed?.Invoke(next);
        return true;
    }

    /// <summary><c>HOST:PORT</c> (an IPv6 host in brackets) as an endpoint to dial; null when it is not one.</summary>
    public static DnsEndPoint? Parse(string server)
    {
        var colon = server.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(server[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
        {
            return null;
        }

        var host = server[..colon].Trim('[', ']');
        return host.Length == 0 ? null : new DnsEndPoint(host, port);
    }

    /// <summary><c>HOST:PORT</c> of <paramref name="address"/> and <paramref name="port"/>, an IPv6 address in brackets.</summary>
    public static string Format(string address, int port) =>
        (IPAddress.TryParse(address, out var ip) && ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{address}]" : address)
        + ":" + port.ToString(CultureInfo.InvariantCulture);

    private static List<string> Normalize(string defaultServer, IEnumerable<string> servers) =>
        new[] { defaultServer }.Concat(servers.Where(s => Parse(s) is not null).Order(StringComparer.Ordinal)).Distinct(StringComparer.Ordinal).ToList();

    private static readonly JsonSerializerOptions SavedJson = new() { PropertyNamingPolicy = JsonNamingPolicy.KebabCaseLower, WriteIndented = true };

    private sealed class Saved
    {
        public List<string>? Servers { get; set; }
    }
}
