using Microsoft.Extensions.Logging;
using NLog.Config;
using NLog.Extensions.Logging;
using NLog.Layouts;
using NLog.Targets;

namespace Coracle.Core.Logging;

/// <summary>NLog to stderr: a human line format by default, one JSON object per line with <c>--log-format json</c>.</summary>
internal static class LoggingSetup
{
    public static ILoggerFactory Create(string format, string level)
    {
        Layout layout = format == "json"
            ? new JsonLayout
            {
                Attributes =
                {
                    new JsonAttribute("time", "${date:universalTime=true:format=o}"),
                    new JsonAttribute("level", "${level:lowercase=true}"),
                    new JsonAttribute("component", "${logger}"),
                    new JsonAttribute("msg", "${message}"),
                    new JsonAttribute("error", "${exception:format=message}"),
                },
            }
            : Layout.FromString(
                "${date:universalTime=true:format=yyyy-MM-ddTHH\\:mm\\:ss.fffZ} ${level:uppercase=true:padding=-5} [${logger}] ${message}${onexception: ${exception:format=message}}");
        var target = new ConsoleTarget("console") { StdErr = true, Layout = layout, AutoFlush = true };
        var config = new LoggingConfiguration();
        if (level is not ("debug" or "trace"))
        {
            // Rules without a target that cap these loggers for every rule after them (NLog's FinalMinLevel).
            foreach (var category in QuietCategories)
            {
                config.LoggingRules.Add(new LoggingRule { LoggerNamePattern = category + ".*", FinalMinLevel = NLog.LogLevel.Warn });
            }
        }

        config.AddRule(ToNLog(level), NLog.LogLevel.Fatal, target);
        return LoggerFactory.Create(builder =>
        {
            builder.ClearProviders();
            builder.SetMinimumLevel(Microsoft.Extensions.Logging.LogLevel.Trace);
            builder.AddNLog(config);
        });
    }

    /// <summary>
    /// Framework categories that speak at information level about their own business (a line per HTTP request,
    /// "Application started. Press Ctrl+C to shut down", hosting environment, HttpClient requests): warnings and
    /// errors only, unless <c>--log-level</c> is debug or trace. They reach this factory through hosts that use it,
    /// like the datastore plugin's Kestrel server.
    /// </summary>
    public static IReadOnlyList<string> QuietCategories { get; } =
        ["Microsoft.AspNetCore", "Microsoft.Hosting", "Microsoft.Extensions.Hosting", "System.Net.Http", "Grpc"];

    private static NLog.LogLevel ToNLog(string level) => level switch
    {
        "trace" => NLog.LogLevel.Trace,
        "debug" => NLog.LogLevel.Debug,
        "warn" => NLog.LogLevel.Warn,
        "error" => NLog.LogLevel.Error,
        _ => NLog.LogLevel.Info,
    };
}
