using System.Net;
using System.Net.Sockets;
using Coracle.Core.Kubernetes;
using Coracle.Plugins;

namespace Coracle.Core.Configuration;

/// <summary>
/// Builds the effective configuration: defaults &lt; appliance.toml &lt; <c>CORACLE_*</c> environment &lt; flags,
/// the precedence K3s users know. Collects every error before failing.
/// </summary>
internal static class ConfigLoader
{
    /// <summary>Where appliance.toml is read from when neither <c>--config</c> nor CORACLE_CONFIG_FILE says.</summary>
    public const string DefaultConfigFile = "/etc/coracle/appliance.toml";

    public static CoracleConfig Load(
        string role,
        string? configFile,
        IReadOnlyDictionary<string, string> environment,
        IReadOnlyDictionary<Setting, IReadOnlyList<string>> flags,
        IReadOnlyList<Setting>? pluginSettings = null)
    {
        var (config, errors) = LoadAll(role, configFile, environment, flags, pluginSettings);
        return errors.Count > 0 ? throw new ConfigException(errors) : config;
    }

    /// <summary>
    /// The configuration and every error found in it. A value that is wrong keeps its default, so the rest of the
    /// start-up plan (plugin selection, plugin options) can still be checked and all errors reported together.
    /// <paramref name="pluginSettings"/> are the settings the installed plugins declare; they are read from the same
    /// places as Coracle's own and handed to each plugin in <see cref="CoracleConfig.PluginOptions"/>.
    /// </summary>
    public static (CoracleConfig Config, IReadOnlyList<ConfigError> Errors) LoadAll(
        string role,
        string? configFile,
        IReadOnlyDictionary<string, string> environment,
        IReadOnlyDictionary<Setting, IReadOnlyList<string>> flags,
        IReadOnlyList<Setting>? pluginSettings = null)
    {
        var errors = new List<ConfigError>();
        var table = pluginSettings is { Count: > 0 } ? Settings.All.Concat(pluginSettings).ToList() : Settings.All;
        var values = table.ToDictionary(s => s, s => new SourcedValue(DefaultOf(s), "default"));
        var pluginOptions = new Dictionary<string, Dictionary<string, string>>(StringComparer.OrdinalIgnoreCase);

        var explicitFile = configFile ?? environment.GetValueOrDefault("CORACLE_CONFIG_FILE");
        var file = string.IsNullOrEmpty(explicitFile) ? DefaultConfigFile : explicitFile;
        string? usedFile = null;
        if (File.Exists(file))
        {
            usedFile = file;
            var toml = ApplianceToml.Read(file, table);
            errors.AddRange(toml.Errors);
            foreach (var (setting, value) in toml.Values)
            {
                values[setting] = value;
            }

            foreach (var (plugin, options) in toml.PluginOptions)
            {
                pluginOptions[plugin] = options;
            }
        }
        else if (!string.IsNullOrEmpty(explicitFile))
        {
            var source = configFile is not null ? "--config" : "CORACLE_CONFIG_FILE";
            errors.Add(new ConfigError(source, $"config file '{file}' does not exist; fix the path or remove the option"));
        }

        // Drop-ins, K3s's config.yaml.d: every *.toml in appliance.toml.d/ beside the file, in name order, later winning.
        foreach (var dropIn in DropIns(file))
        {
            usedFile ??= dropIn;
            var toml = ApplianceToml.Read(dropIn, table);
            errors.AddRange(toml.Errors);
            foreach (var (setting, value) in toml.Values)
            {
                values[setting] = value;
            }

            foreach (var (plugin, options) in toml.PluginOptions)
            {
                if (!pluginOptions.TryGetValue(plugin, out var merged))
                {
                    pluginOptions[plugin] = merged = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
                }

                foreach (var (key, text) in options)
                {
                    merged[key] = text;
                }
            }
        }

        foreach (var setting in table)
        {
            if (environment.TryGetValue(setting.EnvironmentVariable, out var text))
            {
                var value = SettingParser.Parse(setting, [text], out var error);
                if (error is not null)
                {
                    errors.Add(new ConfigError(setting.EnvironmentVariable, error));
                }
                else
                {
                    values[setting] = new SourcedValue(value, setting.EnvironmentVariable);
                }
            }
        }

        if (environment.TryGetValue("CORACLE_K8S_BIN", out var k8sBin) && k8sBin.Length > 0)
        {
            values[Settings.ComponentsDir] = new SourcedValue(k8sBin, "CORACLE_K8S_BIN");
        }

        foreach (var (setting, texts) in flags)
        {
            var value = SettingParser.Parse(setting, texts, out var error);
            if (error is not null)
            {
                errors.Add(new ConfigError("--" + setting.Flag, error));
            }
            else
            {
                values[setting] = new SourcedValue(value, "--" + setting.Flag);
            }
        }

        foreach (var setting in table.Where(s => s.Plugin.Length > 0))
        {
            if (!pluginOptions.TryGetValue(setting.Plugin, out var options))
            {
                pluginOptions[setting.Plugin] = options = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            }

            options[setting.Key] = Setting.PlainText(values[setting].Value);
        }

        // K3s: the pause image comes from the system default registry unless the operator named one.
        var registry = values[Settings.SystemDefaultRegistry];
        if (registry.Value is string registryName && registryName.Length > 0 && SystemRegistry.Problem(registryName) is null
            && values[Settings.PauseImage] is { Source: "default", Value: string defaultPause })
        {
            values[Settings.PauseImage] = new SourcedValue(NodeSettings.WithRegistry(registryName, defaultPause), $"default with {registry.Source}");
        }

        var config = Build(role, usedFile, values, pluginOptions, environment);
        errors.AddRange(Validate(config));
        return (config, errors);
    }

    /// <summary>The drop-in files of <paramref name="file"/>: <c>FILE.d/*.toml</c> in ordinal name order.</summary>
    public static IReadOnlyList<string> DropIns(string file)
    {
        var folder = file + ".d";
        return Directory.Exists(folder)
            ? Directory.GetFiles(folder, "*.toml").Order(StringComparer.Ordinal).ToList()
            : [];
    }

    /// <summary>The typed default of a setting (defaults are written as text, like the shipped appliance.toml).</summary>
    public static object DefaultOf(Setting setting) =>
        setting.Default is string text && setting.Kind is not SettingKind.String && !(setting.Plugin.Length > 0 && text.Length == 0)
            ? SettingParser.ParseScalar(setting, text, out _)
            : setting.Default;

    private static CoracleConfig Build(
        string role,
        string? file,
        Dictionary<Setting, SourcedValue> values,
        Dictionary<string, Dictionary<string, string>> pluginOptions,
        IReadOnlyDictionary<string, string> environment)
    {
        T Get<T>(Setting s) => (T)values[s].Value;
        string[] List(Setting s) => Get<string[]>(s);

        var dataDir = Get<string>(Settings.DataDir);
        if (dataDir.Length == 0)
        {
            dataDir = Environment.IsPrivilegedProcess
                ? "/var/lib/coracle"
                : Path.Combine(environment.GetValueOrDefault("HOME") ?? Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".coracle");
        }
        else if (dataDir.StartsWith("~/", StringComparison.Ordinal))
        {
            dataDir = Path.Combine(environment.GetValueOrDefault("HOME") ?? "/root", dataDir[2..]);
        }

        var nodeName = Get<string>(Settings.NodeName);
        if (nodeName.Length == 0)
        {
            nodeName = Dns.GetHostName().ToLowerInvariant();
        }

        var cni = Get<string>(Settings.Cni);
        return new CoracleConfig
        {
            Role = role,
            ConfigFile = file,
            DataDir = dataDir,
            NodeName = nodeName,
            NodeIps = List(Settings.NodeIp),
            NodeExternalIps = List(Settings.NodeExternalIp),
            Token = Get<string>(Settings.Token),
            Disable = List(Settings.Disable).Select(s => s.ToLowerInvariant()).Distinct().ToArray(),
            ComponentsDir = Get<string>(Settings.ComponentsDir),
            LogFormat = Get<string>(Settings.LogFormat),
            LogLevel = Get<string>(Settings.LogLevel),
            ClusterCidr = Get<IPNetwork>(Settings.ClusterCidr),
            ServiceCidr = Get<IPNetwork>(Settings.ServiceCidr),
            ClusterDns = Get<IPAddress>(Settings.ClusterDns),
            ClusterDomain = Get<string>(Settings.ClusterDomain),
            DatastoreEndpoint = Get<string>(Settings.DatastoreEndpoint),
            ClusterInit = Get<bool>(Settings.ClusterInit),
            TlsSans = List(Settings.TlsSan),
            WriteKubeconfig = Get<string>(Settings.WriteKubeconfig),
            WriteKubeconfigMode = Get<UnixFileMode>(Settings.WriteKubeconfigMode),
            HttpsListenPort = (int)Get<long>(Settings.HttpsListenPort),
            SupervisorPort = (int)Get<long>(Settings.SupervisorPort),
            LbServerPort = (int)Get<long>(Settings.LbServerPort),
            ServerUrl = Get<string>(Settings.Server),
            CertLifetime = Get<TimeSpan>(Settings.CertLifetime),
            CaCertLifetime = Get<TimeSpan>(Settings.CaCertLifetime),
            SecretsEncryption = Get<bool>(Settings.SecretsEncryption),
            SecretsEncryptionProvider = Get<string>(Settings.SecretsEncryptionProvider),
            EtcdSnapshotScheduleCron = Get<string>(Settings.EtcdSnapshotScheduleCron),
            EtcdSnapshotRetention = (int)Math.Clamp(Get<long>(Settings.EtcdSnapshotRetention), int.MinValue, int.MaxValue),
            EtcdSnapshotDir = Get<string>(Settings.EtcdSnapshotDir),
            EtcdDisableSnapshots = Get<bool>(Settings.EtcdDisableSnapshots),
            ClusterReset = Get<bool>(Settings.ClusterReset),
            ClusterResetRestorePath = Get<string>(Settings.ClusterResetRestorePath),
            KubeApiserverArgs = List(Settings.KubeApiserverArg),
            KubeControllerManagerArgs = List(Settings.KubeControllerManagerArg),
            KubeSchedulerArgs = List(Settings.KubeSchedulerArg),
            DisableCloudController = Get<bool>(Settings.DisableCloudController),
            KubeletArgs = List(Settings.KubeletArg),
            KubeProxyArgs = List(Settings.KubeProxyArg),
            NodeLabels = List(Settings.NodeLabel),
            NodeTaints = List(Settings.NodeTaint),
            ProtectKernelDefaults = Get<bool>(Settings.ProtectKernelDefaults),
            PodLogsDir = Get<string>(Settings.PodLogsDir),
            TunnelAllowedPorts = List(Settings.TunnelAllowedPorts)
                .Select(p => int.TryParse(p, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) ? n : -1)
                .ToArray(),
            PauseImage = Get<string>(Settings.PauseImage),
            SystemDefaultRegistry = Get<string>(Settings.SystemDefaultRegistry),
            PluginDirs = List(Settings.PluginDirs),
            Cni = cni.ToLowerInvariant(),
            Ingress = Get<string>(Settings.Ingress).ToLowerInvariant(),
            LoadBalancer = Get<string>(Settings.LoadBalancer).ToLowerInvariant(),
            Runtime = Get<string>(Settings.Runtime).ToLowerInvariant(),
            Enable = List(Settings.Enable).Select(s => s.ToLowerInvariant()).ToArray(),
            Restart = new RestartPolicy(
                Get<TimeSpan>(Settings.RestartBackoff),
                Get<TimeSpan>(Settings.RestartMaxBackoff),
                (int)Get<long>(Settings.CrashLoopLimit),
                Get<TimeSpan>(Settings.CrashLoopWindow)),
            StopTimeout = Get<TimeSpan>(Settings.StopTimeout),
            PluginOptions = pluginOptions,
            Sources = values,
        };
    }

    private static IEnumerable<ConfigError> Validate(CoracleConfig c)
    {
        string From(Setting s) => c.Sources[s].Source == "default" ? s.Path : c.Sources[s].Source;

        if (!Path.IsPathRooted(c.DataDir))
        {
            yield return new ConfigError(From(Settings.DataDir), $"'{c.DataDir}' is not an absolute path; use a path like /var/lib/coracle");
        }

        if (!Path.IsPathRooted(c.PodLogsDir) || c.PodLogsDir.Contains('"', StringComparison.Ordinal))
        {
            yield return new ConfigError(From(Settings.PodLogsDir), $"'{c.PodLogsDir}' is not an absolute path; use a path like /var/log/pods");
        }

        if (Snapshots.SnapshotSchedule.Problem(c.EtcdSnapshotScheduleCron) is { } cronProblem)
        {
            yield return new ConfigError(From(Settings.EtcdSnapshotScheduleCron), cronProblem);
        }

        if (c.EtcdSnapshotRetention < 1)
        {
            yield return new ConfigError(From(Settings.EtcdSnapshotRetention), $"{c.EtcdSnapshotRetention} snapshots would keep none; keep at least 1 (default 5)");
        }

        if (c.EtcdSnapshotDir.Length > 0 && !Path.IsPathRooted(c.EtcdSnapshotDir))
        {
            yield return new ConfigError(From(Settings.EtcdSnapshotDir), $"'{c.EtcdSnapshotDir}' is not an absolute path; use a path like /var/lib/coracle/server/db/snapshots");
        }

        if (c.ClusterInit && c.DatastoreEndpoint.Length > 0)
        {
            yield return new ConfigError(From(Settings.ClusterInit), "an embedded etcd cannot run beside datastore-endpoint's datastore; remove one of them");
        }

        if (c.ClusterResetRestorePath.Length > 0 && !c.ClusterReset)
        {
            yield return new ConfigError(From(Settings.ClusterResetRestorePath), "a restore path needs --cluster-reset; add --cluster-reset or remove the restore path");
        }

        if (SystemRegistry.Problem(c.SystemDefaultRegistry) is { } registryProblem)
        {
            yield return new ConfigError(From(Settings.SystemDefaultRegistry), registryProblem);
        }

        var cluster = c.ClusterCidr;
        if (cluster.BaseAddress.AddressFamily == AddressFamily.InterNetwork && cluster.PrefixLength > 24)
        {
            yield return new ConfigError(From(Settings.ClusterCidr),
                $"{cluster} cannot hold a /24 per node; use a prefix of /24 or shorter, like 10.42.0.0/16");
        }
        else if (cluster.BaseAddress.AddressFamily == AddressFamily.InterNetworkV6 && cluster.PrefixLength > 64)
        {
            yield return new ConfigError(From(Settings.ClusterCidr),
                $"{cluster} cannot hold a /64 per node; use a prefix of /64 or shorter, like fd42::/56");
        }

        if (Overlaps(c.ClusterCidr, c.ServiceCidr))
        {
            yield return new ConfigError(From(Settings.ServiceCidr),
                $"service-cidr {c.ServiceCidr} overlaps cluster-cidr {c.ClusterCidr}; give them separate ranges");
        }

        if (!c.ServiceCidr.Contains(c.ClusterDns))
        {
            yield return new ConfigError(From(Settings.ClusterDns),
                $"{c.ClusterDns} is outside service-cidr {c.ServiceCidr}; pick an address inside it, like the 10th");
        }

        foreach (var port in new[] { (Settings.HttpsListenPort, c.HttpsListenPort), (Settings.SupervisorPort, c.SupervisorPort), (Settings.LbServerPort, c.LbServerPort) })
        {
            if (port.Item2 is < 1 or > 65535)
            {
                yield return new ConfigError(From(port.Item1), $"{port.Item2} is not a TCP port; use 1-65535");
            }
        }

        foreach (var (port, index) in c.TunnelAllowedPorts.Select((p, i) => (p, i)))
        {
            if (port is < 1 or > 65535)
            {
                yield return new ConfigError(From(Settings.TunnelAllowedPorts),
                    $"'{(c.Sources[Settings.TunnelAllowedPorts].Value is string[] texts && index < texts.Length ? texts[index] : port.ToString(System.Globalization.CultureInfo.InvariantCulture))}' is not a TCP port; use 1-65535, like 10250");
            }
        }

        if (c.CertLifetime < TimeSpan.FromDays(1))
        {
            yield return new ConfigError(From(Settings.CertLifetime), "certificates must live at least 24h; use a value like 8760h");
        }

        if (c.CaCertLifetime < c.CertLifetime)
        {
            yield return new ConfigError(From(Settings.CaCertLifetime), "ca-cert-lifetime is shorter than cert-lifetime; make it longer, like 87600h");
        }

        foreach (var (setting, args) in new[]
        {
            (Settings.KubeApiserverArg, c.KubeApiserverArgs), (Settings.KubeControllerManagerArg, c.KubeControllerManagerArgs),
            (Settings.KubeSchedulerArg, c.KubeSchedulerArgs), (Settings.KubeletArg, c.KubeletArgs), (Settings.KubeProxyArg, c.KubeProxyArgs),
        })
        {
            foreach (var arg in args)
            {
                if (arg.TrimStart('-').Length == 0 || arg.TrimStart('-').StartsWith('='))
                {
                    yield return new ConfigError(From(setting), $"'{arg}' is not a flag; give NAME=VALUE, like v=2");
                }
            }
        }

        foreach (var label in c.NodeLabels)
        {
            if (NodeRegistration.ParseLabel(label) is null)
            {
                yield return new ConfigError(From(Settings.NodeLabel), $"'{label}' is not a label; give KEY=VALUE, like topology.kubernetes.io/zone=shop-3");
            }
        }

        foreach (var taint in c.NodeTaints)
        {
            if (NodeRegistration.ParseTaint(taint) is null)
            {
                yield return new ConfigError(From(Settings.NodeTaint), $"'{taint}' is not a taint; give KEY=VALUE:EFFECT or KEY:EFFECT with EFFECT NoSchedule, PreferNoSchedule or NoExecute, like dedicated=edge:NoSchedule");
            }
        }

        if (c.Restart.CrashLoopLimit < 0)
        {
            yield return new ConfigError(From(Settings.CrashLoopLimit), $"{c.Restart.CrashLoopLimit} is negative; use 0 or more");
        }

        if (c.Restart.InitialBackoff > c.Restart.MaxBackoff)
        {
            yield return new ConfigError(From(Settings.RestartBackoff),
                "restart-backoff is longer than restart-max-backoff; make it shorter or equal");
        }

        if (c.Role == "server" && c.ServerUrl.Length > 0)
        {
            // A server that joins another (docs/ha.md): the server's supervisor URL and the full server token.
            if (!Uri.TryCreate(c.ServerUrl, UriKind.Absolute, out var joinUri) || joinUri.Scheme != "https")
            {
                yield return new ConfigError(From(Settings.Server), $"'{c.ServerUrl}' is not an https:// URL; use https://SERVER:9345 (a server of the cluster to join)");
            }

            if (c.Token.Length == 0)
            {
                yield return new ConfigError("--token", "a server that joins another needs the cluster's server token; give --token (see 'coracle token show' on a server of the cluster)");
            }
        }

        if (c.Role == "agent")
        {
            if (c.ServerUrl.Length == 0)
            {
                yield return new ConfigError("--server", "an agent needs the server to join; give --server https://SERVER:9345");
            }
            else if (!Uri.TryCreate(c.ServerUrl, UriKind.Absolute, out var uri) || uri.Scheme != "https")
            {
                yield return new ConfigError(From(Settings.Server), $"'{c.ServerUrl}' is not an https:// URL; use https://SERVER:9345");
            }

            if (c.Token.Length == 0)
            {
                yield return new ConfigError("--token", "an agent needs the server's token; give --token (see 'coracle token show' on the server)");
            }
        }
    }

    private static bool Overlaps(IPNetwork a, IPNetwork b) =>
        a.BaseAddress.AddressFamily == b.BaseAddress.AddressFamily &&
        (a.Contains(b.BaseAddress) || b.Contains(a.BaseAddress));
}
