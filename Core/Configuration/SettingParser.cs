using System.Globalization;
using System.Net;

namespace Coracle.Core.Configuration;

/// <summary>Parses a setting's text (from the environment or a flag) into its typed value.</summary>
internal static class SettingParser
{
    /// <summary>Parses <paramref name="values"/>; list settings take every value, comma lists split.</summary>
    public static object Parse(Setting setting, IReadOnlyList<string> values, out string? error)
    {
        error = null;
        switch (setting.Kind)
        {
            case SettingKind.Boolean when values.Count == 0:
                // A bare boolean flag (--secrets-encryption) means true, as in K3s.
                return true;
            case SettingKind.ArgList:
                return values.Select(v => v.Trim()).Where(v => v.Length > 0).ToArray();
            case SettingKind.StringList:
            case SettingKind.IpList:
                var items = SplitList(values);
                if (setting.Kind == SettingKind.IpList)
                {
                    foreach (var item in items)
                    {
                        if (!IPAddress.TryParse(item, out _))
                        {
                            error = $"'{item}' is not an IP address; give addresses like 192.168.1.10 or fd00::10";
                            break;
                        }
                    }
                }

                return items;
            default:
                var text = values.Count == 0 ? "" : values[^1];
                return ParseScalar(setting, text, out error);
        }
    }

    public static string[] SplitList(IEnumerable<string> values) =>
        values.SelectMany(v => v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            .ToArray();

    public static object ParseScalar(Setting setting, string text, out string? error)
    {
        error = null;
        switch (setting.Kind)
        {
            case SettingKind.Integer:
                if (long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var number))
                {
                    return number;
                }

                error = $"'{text}' is not a whole number";
                return setting.Default;
            case SettingKind.Boolean:
                if (bool.TryParse(text, out var flag))
                {
                    return flag;
                }

                error = $"'{text}' is not true or false";
                return setting.Default;
            case SettingKind.Duration:
                if (TryParseDuration(text, out var duration, out var why))
                {
                    return duration;
                }

                error = why;
                return setting.Default;
            case SettingKind.Cidr:
                if (IPNetwork.TryParse(text, out var network) && text.Contains('/', StringComparison.Ordinal))
                {
                    return network;
                }

                error = $"'{text}' is not a valid CIDR; use a network like 10.42.0.0/16";
                return setting.Default;
            case SettingKind.IpAddress:
                if (IPAddress.TryParse(text, out var address))
                {
                    return address;
                }

                error = $"'{text}' is not an IP address; use an address like 10.43.0.10";
                return setting.Default;
            case SettingKind.FileMode:
                try
                {
                    var mode = Convert.ToInt32(text, 8);
                    if (mode is >= 0 and <= 0x1FF && text.Length is >= 3 and <= 4)
                    {
                        return (UnixFileMode)mode;
                    }
                }
                catch (FormatException)
                {
                }

                error = $"'{text}' is not an octal file mode; use a mode like 0600 or 0644";
                return setting.Default;
            default:
                if (setting.Choices.Count > 0 && !setting.Choices.Contains(text, StringComparer.OrdinalIgnoreCase))
                {
                    error = $"'{text}' is not one of {string.Join(", ", setting.Choices)}";
                    return setting.Default;
                }

                return setting.Choices.Count > 0 ? text.ToLowerInvariant() : text;
        }
    }

    /// <summary>Parses durations like Go's: <c>250ms</c>, <c>10s</c>, <c>5m</c>, <c>1h30m</c>.</summary>
    public static bool TryParseDuration(string text, out TimeSpan value, out string? error)
    {
        value = TimeSpan.Zero;
        error = null;
        var s = text.Trim();
        if (s.StartsWith('-'))
        {
            error = $"'{text}' is negative; durations must be zero or more, like 10s or 5m";
            return false;
        }

        if (s == "0")
        {
            return true;
        }

        var i = 0;
        var any = false;
        while (i < s.Length)
        {
            var start = i;
            while (i < s.Length && (char.IsAsciiDigit(s[i]) || s[i] == '.'))
            {
                i++;
            }

            var unitStart = i;
            while (i < s.Length && char.IsAsciiLetter(s[i]))
            {
                i++;
            }

            if (start == unitStart || unitStart == i ||
                !double.TryParse(s.AsSpan(start, unitStart - start), NumberStyles.Float, CultureInfo.InvariantCulture, out var n))
            {
                error = $"'{text}' is not a duration; use a number with a unit (ms, s, m, h), like 10s or 5m";
                return false;
            }

            var unit = s[unitStart..i];
            TimeSpan part;
            switch (unit)
            {
                case "ms": part = TimeSpan.FromMilliseconds(n); break;
                case "s": part = TimeSpan.FromSeconds(n); break;
                case "m": part = TimeSpan.FromMinutes(n); break;
                case "h": part = TimeSpan.FromHours(n); break;
                default:
                    error = $"'{text}' has an unknown unit '{unit}'; use ms, s, m or h";
                    return false;
            }

            value += part;
            any = true;
        }

        if (!any)
        {
            error = $"'{text}' is not a duration; use a number with a unit (ms, s, m, h), like 10s or 5m";
        }

        return any;
    }

    /// <summary>Formats a typed value back as text (for <c>config check</c>).</summary>
    public static string Format(object value) => value switch
    {
        string[] list => "[" + string.Join(", ", list.Select(v => $"\"{v}\"")) + "]",
        string s => $"\"{s}\"",
        TimeSpan t => $"\"{FormatDuration(t)}\"",
        UnixFileMode m => $"\"0{Convert.ToString((int)m, 8)}\"",
        bool b => b ? "true" : "false",
        IPNetwork n => $"\"{n}\"",
        IPAddress a => $"\"{a}\"",
        _ => Convert.ToString(value, CultureInfo.InvariantCulture) ?? "",
    };

    public static string FormatDuration(TimeSpan t)
    {
        if (t == TimeSpan.Zero)
        {
            return "0s";
        }

        if (t.TotalMilliseconds < 1000 || t.Milliseconds != 0)
        {
            return $"{(long)t.TotalMilliseconds}ms";
        }

        if (t.TotalSeconds % 3600 == 0)
        {
            return $"{(long)t.TotalHours}h";
        }

        return t.TotalSeconds % 60 == 0 ? $"{(long)t.TotalMinutes}m" : $"{(long)t.TotalSeconds}s";
    }
}
