using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Coracle.Plugins.Runtime.Containerd;

/// <summary>A registry mirror: the endpoints tried, in order, before the registry itself.</summary>
/// <param name="Endpoints">Absolute http(s) URLs.</param>
public sealed record RegistryMirror(IReadOnlyList<string> Endpoints);

/// <summary>Credentials for one registry host (written to containerd's CRI <c>registry.configs</c>).</summary>
public sealed record RegistryAuth
{
    /// <summary>User name.</summary>
    public string? Username { get; init; }

    /// <summary>Password.</summary>
    public string? Password { get; init; }

    /// <summary>base64 of <c>user:password</c>.</summary>
    public string? Auth { get; init; }

    /// <summary>An identity token.</summary>
    public string? IdentityToken { get; init; }
}

/// <summary>TLS settings for one registry host (written to its <c>hosts.toml</c>).</summary>
public sealed record RegistryTls
{
    /// <summary>Client certificate.</summary>
    public string? CertFile { get; init; }

    /// <summary>Client key.</summary>
    public string? KeyFile { get; init; }

    /// <summary>CA bundle.</summary>
    public string? CaFile { get; init; }

    /// <summary>Skip certificate verification.</summary>
    public bool InsecureSkipVerify { get; init; }
}

/// <summary>One <c>configs</c> entry: auth and TLS for a registry host.</summary>
public sealed record RegistryHostConfig(RegistryAuth? Auth, RegistryTls? Tls);

/// <summary>
/// K3s's registries.yaml: <c>mirrors</c> (registry name → endpoints) and <c>configs</c> (host → auth/tls).
/// </summary>
public sealed record RegistriesConfig
{
    /// <summary>No registries configured.</summary>
    public static RegistriesConfig Empty { get; } = new();

    /// <summary>Registry name (<c>docker.io</c>, <c>*</c> for every registry) → mirror.</summary>
    public IReadOnlyDictionary<string, RegistryMirror> Mirrors { get; init; } = new Dictionary<string, RegistryMirror>();

    /// <summary>Registry host (<c>host[:port]</c>) → auth and TLS.</summary>
    public IReadOnlyDictionary<string, RegistryHostConfig> Configs { get; init; } = new Dictionary<string, RegistryHostConfig>();

    /// <summary>Reads and validates a registries.yaml. Errors name the file and the field.</summary>
    /// <exception cref="PluginConfigException">The file is missing, not YAML, or has an unknown or bad field.</exception>
    public static RegistriesConfig Load(string path)
    {
        if (!File.Exists(path))
        {
            throw new PluginConfigException("registries-file", $"registries file {path}: not found");
        }

        return Parse(File.ReadAllText(path), path);
    }

    /// <summary>Parses registries.yaml text; <paramref name="source"/> names it in errors.</summary>
    /// <exception cref="PluginConfigException">The text is not YAML or has an unknown or bad field.</exception>
    public static RegistriesConfig Parse(string yaml, string source)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(yaml));
        }
        catch (YamlException e)
        {
            throw Error(source, "(document)", $"not valid YAML at line {e.Start.Line}, column {e.Start.Column}: {e.Message}");
        }

        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is YamlScalarNode { Value: null or "" })
        {
            return Empty;
        }

        var root = AsMapping(stream.Documents[0].RootNode, source, "(document)");
        var mirrors = new Dictionary<string, RegistryMirror>(StringComparer.Ordinal);
        var configs = new Dictionary<string, RegistryHostConfig>(StringComparer.Ordinal);
        foreach (var (keyNode, value) in root.Children)
        {
            var key = Scalar(keyNode, source, "(document)");
            switch (key)
            {
                case "mirrors":
                    foreach (var (nameNode, mirrorNode) in AsMapping(value, source, "mirrors").Children)
                    {
                        var name = Scalar(nameNode, source, "mirrors");
                        mirrors[name] = ParseMirror(mirrorNode, source, $"mirrors.\"{name}\"");
                    }

                    break;
                case "configs":
                    foreach (var (hostNode, configNode) in AsMapping(value, source, "configs").Children)
                    {
                        var host = Scalar(hostNode, source, "configs");
                        configs[host] = ParseHostConfig(configNode, source, $"configs.\"{host}\"");
                    }

                    break;
                default:
                    throw Error(source, key, $"unknown field (line {keyNode.Start.Line}); expected mirrors, configs");
            }
        }

        return new RegistriesConfig { Mirrors = mirrors, Configs = configs };
    }

    /// <summary>The URL scheme and host[:port] of an endpoint; a bare host gets <c>https://</c>.</summary>
    public static string NormalizeEndpoint(string endpoint) =>
        endpoint.Contains("://", StringComparison.Ordinal) ? endpoint.TrimEnd('/') : "https://" + endpoint.TrimEnd('/');

    private static RegistryMirror ParseMirror(YamlNode node, string source, string field)
    {
        var endpoints = new List<string>();
        foreach (var (keyNode, value) in AsMapping(node, source, field).Children)
        {
            var key = Scalar(keyNode, source, field);
            switch (key)
            {
                case "endpoint":
                    if (value is not YamlSequenceNode list)
                    {
                        throw Error(source, $"{field}.endpoint", $"expected a list of URLs (line {value.Start.Line})");
                    }

                    for (var i = 0; i < list.Children.Count; i++)
                    {
                        var raw = Scalar(list.Children[i], source, $"{field}.endpoint[{i}]");
                        var url = NormalizeEndpoint(raw);
                        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri)
                            || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps)
                            || string.IsNullOrEmpty(uri.Host))
                        {
                            throw Error(source, $"{field}.endpoint[{i}]", $"\"{raw}\" is not an http(s) URL");
                        }

                        endpoints.Add(url);
                    }

                    break;
                case "rewrite":
                    throw Error(source, $"{field}.rewrite", "rewrites are not supported by containerd 1.6; remove the field");
                default:
                    throw Error(source, $"{field}.{key}", $"unknown field (line {keyNode.Start.Line}); expected endpoint");
            }
        }

        return new RegistryMirror(endpoints);
    }

    private static RegistryHostConfig ParseHostConfig(YamlNode node, string source, string field)
    {
        RegistryAuth? auth = null;
        RegistryTls? tls = null;
        foreach (var (keyNode, value) in AsMapping(node, source, field).Children)
        {
            var key = Scalar(keyNode, source, field);
            var sub = $"{field}.{key}";
            switch (key)
            {
                case "auth":
                    var a = new RegistryAuth();
                    foreach (var (k, v) in AsMapping(value, source, sub).Children)
                    {
                        var name = Scalar(k, source, sub);
                        var text = Scalar(v, source, $"{sub}.{name}");
                        a = name switch
                        {
                            "username" => a with { Username = text },
                            "password" => a with { Password = text },
                            "auth" => a with { Auth = text },
                            "identitytoken" => a with { IdentityToken = text },
                            _ => throw Error(source, $"{sub}.{name}",
                                $"unknown field (line {k.Start.Line}); expected username, password, auth, identitytoken"),
                        };
                    }

                    auth = a;
                    break;
                case "tls":
                    var t = new RegistryTls();
                    foreach (var (k, v) in AsMapping(value, source, sub).Children)
                    {
                        var name = Scalar(k, source, sub);
                        var text = Scalar(v, source, $"{sub}.{name}");
                        t = name switch
                        {
                            "cert_file" => t with { CertFile = text },
                            "key_file" => t with { KeyFile = text },
                            "ca_file" => t with { CaFile = text },
                            "insecure_skip_verify" => t with { InsecureSkipVerify = ParseBool(text, source, $"{sub}.{name}") },
                            _ => throw Error(source, $"{sub}.{name}",
                                $"unknown field (line {k.Start.Line}); expected cert_file, key_file, ca_file, insecure_skip_verify"),
                        };
                    }

                    if ((t.CertFile is null) != (t.KeyFile is null))
                    {
                        throw Error(source, sub, "cert_file and key_file must be given together");
                    }

                    tls = t;
                    break;
                default:
                    throw Error(source, sub, $"unknown field (line {keyNode.Start.Line}); expected auth, tls");
            }
        }

        return new RegistryHostConfig(auth, tls);
    }

    private static bool ParseBool(string text, string source, string field) => text switch
    {
        "true" or "True" or "TRUE" => true,
        "false" or "False" or "FALSE" => false,
        _ => throw Error(source, field, $"expected true or false, got \"{text}\""),
    };

    private static YamlMappingNode AsMapping(YamlNode node, string source, string field) =>
        node as YamlMappingNode ?? throw Error(source, field, $"expected a mapping (line {node.Start.Line})");

    private static string Scalar(YamlNode node, string source, string field) =>
        node is YamlScalarNode { Value: { } value }
            ? value
            : throw Error(source, field, $"expected a single value (line {node.Start.Line})");

    private static PluginConfigException Error(string source, string field, string message) =>
        new("registries-file", $"registries file {source}: {field}: {message}");
}
