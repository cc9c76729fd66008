using System.Globalization;
using Coracle.Plugins.Datastore.Sql.Storage;
using MySqlConnector;
using Npgsql;

namespace Coracle.Plugins.Datastore.Sql;

/// <summary>
/// A parsed <c>--datastore-endpoint</c>: empty or <c>sqlite://PATH</c>, <c>postgres://</c> /
/// <c>postgresql://user:pass@host:port/db</c>, <c>mysql://user:pass@tcp(host:port)/db</c> (K3s/kine style) or
/// <c>mysql://user:pass@host:port/db</c>. <see cref="ToString"/> and <see cref="Location"/> never show passwords.
/// </summary>
public sealed record DatastoreLocation
{
    private DatastoreLocation(string kind, string location, string? connectionString)
    {
        Kind = kind;
        Location = location;
        ConnectionString = connectionString;
    }

    /// <summary><c>sqlite</c>, <c>postgres</c> or <c>mysql</c>: the plugin that serves it.</summary>
    public string Kind { get; }

    /// <summary>File path or <c>host:port/db</c>, safe to log.</summary>
    public string Location { get; }

    private string? ConnectionString { get; }

    /// <summary>Parses an endpoint; throws <see cref="FormatException"/> with a one-line cause and fix (no password).</summary>
    public static DatastoreLocation Parse(string endpoint, string defaultSqlitePath)
    {
        endpoint = endpoint.Trim();
        if (endpoint.Length == 0)
        {
            return new DatastoreLocation("sqlite", defaultSqlitePath, null);
        }

        var scheme = endpoint.IndexOf("://", StringComparison.Ordinal) is var i and > 0 ? endpoint[..i].ToLowerInvariant() : "";
        var rest = scheme.Length > 0 ? endpoint[(scheme.Length + 3)..] : endpoint;
        return scheme switch
        {
            "sqlite" => ParseSqlite(rest, defaultSqlitePath),
            "postgres" or "postgresql" => ParsePostgres(rest),
            "mysql" => ParseMySql(rest),
            _ => throw new FormatException(
                $"unsupported datastore endpoint scheme '{(scheme.Length > 0 ? scheme : Redact(endpoint))}'; use sqlite://PATH, postgres://user:pass@host:port/db or mysql://user:pass@tcp(host:port)/db"),
        };
    }

    /// <summary>Builds the dialect for this endpoint.</summary>
    public SqlDialect CreateDialect() => Kind switch
    {
        "sqlite" => SqlDialects.Sqlite(Location),
        "postgres" => SqlDialects.Postgres(ConnectionString!, Location),
        _ => SqlDialects.MySql(ConnectionString!, Location),
    };

    /// <inheritdoc/>
    public override string ToString() => $"{Kind}://{Location}";

    private static DatastoreLocation ParseSqlite(string rest, string defaultPath)
    {
        var path = rest.Split('?', 2)[0];
        if (path.Length == 0)
        {
            path = defaultPath;
        }
        else if (!Path.IsPathRooted(path))
        {
            path = Path.Combine(Path.GetDirectoryName(defaultPath)!, path);
        }

        return new DatastoreLocation("sqlite", Path.GetFullPath(path), null);
    }

    private static DatastoreLocation ParsePostgres(string rest)
    {
        var (user, password, hostPart, database, query) = SplitUrl(rest, "postgres");
        var builder = new NpgsqlConnectionStringBuilder
        {
            Database = database.Length > 0 ? database : "kubernetes",
            Username = user,
            Password = password,
            SslMode = SslMode.Prefer,
        };
        var (host, port) = HostPort(hostPart, 5432, "postgres");
        builder.Host = host;
        builder.Port = port;
        foreach (var (key, value) in query)
        {
            switch (key)
            {
                case "sslmode":
                    builder.SslMode = value switch
                    {
                        "disable" => SslMode.Disable,
                        "require" => SslMode.Require,
                        "verify-ca" => SslMode.VerifyCA,
                        "verify-full" => SslMode.VerifyFull,
                        "prefer" => SslMode.Prefer,
                        "allow" => SslMode.Allow,
                        _ => throw new FormatException($"unknown sslmode '{value}' in the postgres datastore endpoint; use disable, require, verify-ca or verify-full"),
                    };
                    break;
                case "host":
                    builder.Host = value;
                    break;
                case "sslrootcert":
                    builder.RootCertificate = value;
                    break;
                case "sslcert":
                    builder.SslCertificate = value;
                    break;
                case "sslkey":
                    builder.SslKey = value;
                    break;
                default:
                    throw new FormatException($"unknown parameter '{key}' in the postgres datastore endpoint; supported: sslmode, host, sslrootcert, sslcert, sslkey");
            }
        }

        return new DatastoreLocation("postgres", $"{builder.Host}:{builder.Port}/{builder.Database}", builder.ToString());
    }

    private static DatastoreLocation ParseMySql(string rest)
    {
        var (user, password, hostPart, database, query) = SplitUrl(rest, "mysql");
        var builder = new MySqlConnectionStringBuilder
        {
            Database = database.Length > 0 ? database : "kubernetes",
            UserID = user,
            Password = password,
        };
        string location;
        if (hostPart.StartsWith("unix(", StringComparison.Ordinal) && hostPart.EndsWith(')'))
        {
            builder.Server = hostPart[5..^1];
            builder.ConnectionProtocol = MySqlConnectionProtocol.UnixSocket;
            location = $"{builder.Server}/{builder.Database}";
        }
        else
        {
            if (hostPart.StartsWith("tcp(", StringComparison.Ordinal) && hostPart.EndsWith(')'))
            {
                hostPart = hostPart[4..^1];
            }

            var (host, port) = HostPort(hostPart, 3306, "mysql");
            builder.Server = host;
            builder.Port = (uint)port;
            location = $"{host}:{port}/{builder.Database}";
        }

        foreach (var (key, value) in query)
        {
            switch (key)
            {
                case "tls":
                    builder.SslMode = value is "true" or "skip-verify" or "preferred" ? MySqlSslMode.Required : MySqlSslMode.None;
                    break;
                default:
                    // kine ignores driver parameters it does not know; so do we, except the TLS switch.
                    break;
            }
        }

        return new DatastoreLocation("mysql", location, builder.ToString());
    }

    private static (string User, string Password, string Host, string Database, List<(string, string)> Query) SplitUrl(string rest, string kind)
    {
        var query = new List<(string, string)>();
        var q = rest.IndexOf('?', StringComparison.Ordinal);
        if (q >= 0)
        {
            foreach (var pair in rest[(q + 1)..].Split('&', StringSplitOptions.RemoveEmptyEntries))
            {
                var kv = pair.Split('=', 2);
                query.Add((Uri.UnescapeDataString(kv[0]), kv.Length > 1 ? Uri.UnescapeDataString(kv[1]) : ""));
            }

            rest = rest[..q];
        }

        var at = rest.LastIndexOf('@');
        var credentials = at >= 0 ? rest[..at] : "";
        var address = at >= 0 ? rest[(at + 1)..] : rest;
        var colon = credentials.IndexOf(':', StringComparison.Ordinal);
        var user = Uri.UnescapeDataString(colon >= 0 ? credentials[..colon] : credentials);
        var password = colon >= 0 ? Uri.UnescapeDataString(credentials[(colon + 1)..]) : "";
        var slash = address.EndsWith(')') ? -1 : address.IndexOf('/', StringComparison.Ordinal);
        if (address.Contains(")/", StringComparison.Ordinal))
        {
            slash = address.IndexOf(")/", StringComparison.Ordinal) + 1;
        }

        var host = slash >= 0 ? address[..slash] : address;
        var database = slash >= 0 ? address[(slash + 1)..] : "";
        if (host.Length == 0 && !query.Exists(p => p.Item1 == "host"))
        {
            throw new FormatException($"the {kind} datastore endpoint has no host; write {kind}://user:password@host:port/database");
        }

        return (user, password, host, database, query);
    }

    private static (string Host, int Port) HostPort(string hostPart, int defaultPort, string kind)
    {
        if (hostPart.Length == 0)
        {
            return ("localhost", defaultPort);
        }

        var colon = hostPart.LastIndexOf(':');
        if (colon < 0 || hostPart.EndsWith(']'))
        {
            return (hostPart.Trim('[', ']'), defaultPort);
        }

        if (!int.TryParse(hostPart[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is <= 0 or > 65535)
        {
            throw new FormatException($"the {kind} datastore endpoint has a bad port '{hostPart[(colon + 1)..]}'; use a number from 1 to 65535");
        }

        return (hostPart[..colon].Trim('[', ']'), port);
    }

    private static string Redact(string endpoint)
    {
        var at = endpoint.LastIndexOf('@');
        return at >= 0 ? "***@" + endpoint[(at + 1)..] : endpoint;
    }
}
