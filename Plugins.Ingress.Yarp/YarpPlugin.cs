using System.Globalization;
using System.Net;
using Coracle.Plugins.Ingress.Yarp.Kubernetes;
using Coracle.Plugins.Ingress.Yarp.Proxy;
using Coracle.Plugins.Ingress.Yarp.Routing;
using Microsoft.Extensions.Logging;

namespace Coracle.Plugins.Ingress.Yarp;

/// <summary>
/// The in-process ingress controller (<c>--ingress yarp</c>): Kubernetes Ingresses served by YARP inside the coracle
/// process, no pods and no images. See docs/ingress.md.
/// </summary>
[CoraclePlugin("yarp", ExtensionPoints.Ingress, typeof(IIngressController),
    Description = "In-process ingress controller on YARP (--ingress yarp)")]
[PluginSetting("http-port", "Port the ingress serves plain HTTP on", Type = PluginSettingType.Integer, Default = "80")]
[PluginSetting("https-port", "Port the ingress serves HTTPS on", Type = PluginSettingType.Integer, Default = "443")]
[PluginSetting("bind-address", "Address the ingress ports bind (0.0.0.0: every IPv4 address of the node; :: for IPv4 and IPv6)", Default = "0.0.0.0")]
[PluginSetting("request-timeout", "How long a backend may stay silent during a request before the answer is 504", Type = PluginSettingType.Duration, Default = "60s")]
[PluginSetting("default-class", "Make IngressClass yarp the cluster's default (Ingresses without class are served)", Type = PluginSettingType.Boolean, Default = "true")]
public sealed class YarpPlugin : IIngressController, IValidatesOptions
{
    /// <summary>The component's name in <c>coracle status</c>.</summary>
    public const string ComponentName = "yarp";

    /// <summary>The IngressClass this controller serves and creates.</summary>
    public const string ClassName = "yarp";

    /// <inheritdoc />
    public void ValidateOptions(NodeSettings node, IReadOnlyDictionary<string, string> options, string pluginDataDir) =>
        _ = YarpSettings.Parse(options);

    /// <inheritdoc />
    public void Configure(IPluginContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var settings = YarpSettings.Parse(context.Options);
        if (context.Node.ControllerKubeconfig.Length == 0)
        {
            context.Supervisor.ReportUnavailable(ComponentName, "the host provides no controller kubeconfig, so yarp cannot read Ingresses");
            return;
        }

        var logger = context.LoggerFactory.CreateLogger("yarp");
        var probeHost = settings.Address.Equals(IPAddress.Any) || settings.Address.Equals(IPAddress.IPv6Any) ? "127.0.0.1" : settings.Address.ToString();
        context.Supervisor.Add(new InProcessComponent
        {
            Name = ComponentName,
            StopsBefore = [WellKnownComponents.KubeApiServer],
            RestartOnCertificateRenewal = true,
            Readiness = new TcpProbe(probeHost, settings.HttpPort),
            Run = async ct =>
            {
                await using var proxy = new IngressProxy(
                    new ProxyOptions(settings.Address, settings.HttpPort, settings.HttpsPort, settings.RequestTimeout), context.LoggerFactory);
                await proxy.StartAsync(ct);
                try
                {
                    var controller = new IngressController(
                        new ControllerOptions(
                            context.Node.ControllerKubeconfig,
                            context.Node.NodeName,
                            context.Node.NodeIps,
                            new ClassSelection(ClassName, settings.DefaultClass),
                            context.Node.Role == "server",
                            d => context.Supervisor.ReportDetail(ComponentName, d)),
                        proxy,
                        logger);
                    await controller.RunAsync(ct);
                }
                finally
                {
                    await proxy.StopAsync(TimeSpan.FromSeconds(5));
                }
            },
        });
    }
}

/// <summary>The plugin's settings, parsed and checked.</summary>
internal sealed record YarpSettings(IPAddress Address, int HttpPort, int HttpsPort, TimeSpan RequestTimeout, bool DefaultClass)
{
    /// <summary>Parses the effective values; a bad one is a <see cref="PluginConfigException"/> naming the key and the fix.</summary>
    public static YarpSettings Parse(IReadOnlyDictionary<string, string> options)
    {
        string Get(string key, string fallback) => options.TryGetValue(key, out var v) && v.Length > 0 ? v.Trim() : fallback;

        int Port(string key, string fallback)
        {
            var text = Get(key, fallback);
            if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
            {
                throw new PluginConfigException(key, $"{key} '{text}' is not a port; set a number from 1 to 65535");
            }

            return port;
        }

        var http = Port("http-port", "80");
        var https = Port("https-port", "443");
        if (http == https)
        {
            throw new PluginConfigException("https-port", $"http-port and https-port are both {http}; give them different ports");
        }

        var addressText = Get("bind-address", "0.0.0.0");
        if (!IPAddress.TryParse(addressText, out var address))
        {
            throw new PluginConfigException("bind-address", $"bind-address '{addressText}' is not an IP address; set one of the node's addresses, 0.0.0.0 or ::");
        }

        var timeoutText = Get("request-timeout", "60s");
        if (!Durations.TryParse(timeoutText, out var timeout) || timeout <= TimeSpan.Zero)
        {
            throw new PluginConfigException("request-timeout", $"request-timeout '{timeoutText}' is not a positive duration; write it like 30s, 2m or 1h");
        }

        var defaultText = Get("default-class", "true");
        if (!bool.TryParse(defaultText, out var isDefault))
        {
            throw new PluginConfigException("default-class", $"default-class '{defaultText}' is not true or false");
        }

        return new YarpSettings(address, http, https, timeout, isDefault);
    }
}

/// <summary>Go-style durations as the host writes them: <c>500ms</c>, <c>30s</c>, <c>5m</c>, <c>1h30m</c>.</summary>
internal static class Durations
{
    public static bool TryParse(string text, out TimeSpan duration)
    {
        duration = TimeSpan.Zero;
        var i = 0;
        if (text.Length == 0)
        {
            return false;
        }

        while (i < text.Length)
        {
            var start = i;
            while (i < text.Length && (char.IsAsciiDigit(text[i]) || text[i] == '.'))
            {
                i++;
            }

            if (start == i || !double.TryParse(text[start..i], NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var value))
            {
                return false;
            }

            var unitStart = i;
            while (i < text.Length && char.IsAsciiLetter(text[i]))
            {
                i++;
            }

            TimeSpan? part = text[unitStart..i] switch
            {
                "ms" => TimeSpan.FromMilliseconds(value),
                "s" => TimeSpan.FromSeconds(value),
                "m" => TimeSpan.FromMinutes(value),
                "h" => TimeSpan.FromHours(value),
                _ => null,
            };
            if (part is not { } p)
            {
                return false;
            }

            duration += p;
        }

        return true;
    }
}
