using System.Text.Json;
using Coracle.Core.Identity;
using Coracle.Core.Logging;
using Coracle.Core.Secrets;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;

namespace Coracle.Core.Join;

/// <summary>
/// This server's datastore as a joining server needs it: the plugin's name (every server of a cluster runs the same one),
/// whether it is embedded in this server and cannot be shared (the default SQLite file), and, for a clustered datastore
/// (<see cref="Plugins.IDatastoreCluster"/>), the call that adds the joining server as a member.
/// </summary>
internal sealed record ServerJoinDatastore(
    string Name,
    bool Embedded,
    Func<string, IReadOnlyList<string>, CancellationToken, Task<IReadOnlyDictionary<string, string>>>? AddMember);

/// <summary><c>POST /v1/server-join</c>: another server joins this one's cluster (K3s's <c>--server</c> on a server).</summary>
internal sealed partial class JoinServer
{
    /// <summary>
    /// Server token only (a join token joins agents: 403). Checks the joining server's name, datastore and the settings
    /// that must be the same on every server (409 naming each flag), adds it to a clustered datastore, then answers with
    /// the cluster CAs and their keys, the service-account key, the secrets encryption configuration, the token, the
    /// cluster configuration and the datastore's join values.
    /// </summary>
    private async Task<IResult> ServerJoinAsync(HttpContext http)
    {
        var remote = http.Connection.RemoteIpAddress?.ToString() ?? "?";
        var secret = PresentedSecret(http);
        if (secret is null || !ClusterToken.SecretEquals(secret, _serverToken.Password))
        {
            if (secret is not null && _joinTokens.Check(secret, out var record) is TokenCheck.Valid or TokenCheck.Expired)
            {
                _log.ServerJoinRejected(remote, $"join token {record!.Id} is an agent token");
                return Error(StatusCodes.Status403Forbidden, $"join token {record.Id} joins agents only; a server joins with the server token (K10...::server:SECRET, 'coracle token show' on a server of the cluster)");
            }

            return Authenticate(http) ?? Error(StatusCodes.Status401Unauthorized, "invalid token");
        }

        if (http.Request.ContentLength > MaxBodyBytes)
        {
            return BodyTooLarge();
        }

        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
        {
            limit.MaxRequestBodySize = MaxBodyBytes;
        }

        ServerJoinRequest? request;
        try
        {
            request = await JsonSerializer.DeserializeAsync<ServerJoinRequest>(http.Request.Body, Json, http.RequestAborted);
        }
        catch (JsonException ex)
        {
            return Error(StatusCodes.Status400BadRequest, $"the body is not valid JSON: {ex.Message}");
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return BodyTooLarge();
        }

        if (request is null)
        {
            return Error(StatusCodes.Status400BadRequest, "the body is empty; send {nodeName, datastore, settings, peerUrls}");
        }

        var name = request.NodeName;
        if (string.IsNullOrEmpty(name) || name.Length > NodePasswords.MaxNodeName || !NodeNamePattern().IsMatch(name))
        {
            return Error(StatusCodes.Status400BadRequest, $"nodeName '{name}' is not a valid node name (lower-case letters, digits, '-' and '.', at most {NodePasswords.MaxNodeName} characters)");
        }

        if (name == _config.NodeName)
        {
            _log.ServerJoinRejected(remote, $"node name {name} is this server's own");
            return Error(StatusCodes.Status403Forbidden, $"node name {name} is this server's own node; give the joining server another --node-name");
        }

        if (Datastore is null)
        {
            return Refuse(remote, [new SettingMismatch("server", $"server {_config.NodeName} takes no servers (it runs no datastore); join a server that runs the cluster's datastore")]);
        }

        if (Datastore.Embedded)
        {
            return Refuse(remote, [new SettingMismatch("datastore-endpoint",
                $"server {_config.NodeName} keeps the cluster in its embedded {Datastore.Name} datastore, which another server cannot share; "
                + "run every server on one external datastore (the same --datastore-endpoint postgres://... or mysql://... on each) or on embedded etcd (--cluster-init on the first server)")]);
        }

        var mismatches = new List<SettingMismatch>();
        if (!string.Equals(request.Datastore, Datastore.Name, StringComparison.OrdinalIgnoreCase))
        {
            mismatches.Add(new SettingMismatch("datastore-endpoint",
                $"this server's datastore is {(string.IsNullOrEmpty(request.Datastore) ? "none" : request.Datastore)}, the cluster's (server {_config.NodeName}) is {Datastore.Name}; give the --datastore-endpoint the cluster's servers use"));
        }

        var theirs = request.Settings ?? [];
        foreach (var (flag, ours) in ServerJoin.MustMatch(_config))
        {
            if (theirs.TryGetValue(flag, out var value) && !string.Equals(value, ours, StringComparison.Ordinal))
            {
                mismatches.Add(new SettingMismatch(flag, $"this server has {value}, the cluster (server {_config.NodeName}) has {ours}; every server of a cluster needs the same value: give --{flag} {ours}"));
            }
        }

        if (mismatches.Count > 0)
        {
            return Refuse(remote, mismatches);
        }

        IReadOnlyDictionary<string, string> datastoreJoin = new Dictionary<string, string>();
        if (Datastore.AddMember is { } addMember)
        {
            try
            {
                datastoreJoin = await addMember(name, request.PeerUrls ?? [], http.RequestAborted);
            }
            catch (InvalidOperationException ex)
            {
                _log.ServerJoinRejected(remote, ex.Message);
                return Error(StatusCodes.Status503ServiceUnavailable, $"the datastore cannot add member {name}: {ex.Message}");
            }
        }

        var cas = ClusterCertificates.CaNames.ToDictionary(n => n, n => new CaPair(File.ReadAllText(_certs.CertFile(n)), File.ReadAllText(_certs.KeyFile(n))), StringComparer.Ordinal);
        var encryption = EncryptionConfig.PathFor(_config.DataDir);
        _log.ServerJoined(name, remote, Datastore.Name);
        return Results.Json(new ServerJoinResponse
        {
            Cas = cas,
            ServiceAccountKey = File.ReadAllText(_certs.ServiceAccountKeyFile),
            EncryptionConfig = File.Exists(encryption) ? File.ReadAllText(encryption) : null,
            Token = _serverToken.ToString(),
            Cluster = ClusterConfig(http),
            Datastore = Datastore.Name,
            DatastoreJoin = new Dictionary<string, string>(datastoreJoin, StringComparer.Ordinal),
        }, Json);
    }

    private IResult Refuse(string remote, IReadOnlyList<SettingMismatch> mismatches)
    {
        var line = string.Join("; ", mismatches.Select(m => $"--{m.Flag}: {m.Message}"));
        _log.ServerJoinRejected(remote, line);
        return Results.Json(new ServerJoinRefusal(line, mismatches), Json, statusCode: StatusCodes.Status409Conflict);
    }
}
