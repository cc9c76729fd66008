using Tomlyn.Parsing;
using Tomlyn.Syntax;

namespace Coracle.Core.Configuration;

/// <summary>
/// Reads appliance.toml through Tomlyn's syntax tree so that every error carries file:line:column.
/// Unknown sections and keys, wrong types and invalid values are all reported, not just the first.
/// </summary>
internal static class ApplianceToml
{
    public sealed record Result(
        Dictionary<Setting, SourcedValue> Values,
        Dictionary<string, Dictionary<string, string>> PluginOptions,
        List<ConfigError> Errors);

    public static Result Read(string path, IReadOnlyList<Setting>? settings = null)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return new Result([], [], [new ConfigError(path, $"cannot read the config file: {ex.Message}")]);
        }

        return Parse(text, path, settings);
    }

    /// <summary>
    /// Parses appliance.toml against <paramref name="settings"/> (Coracle's own when null; plugin settings included when
    /// the plugins are known). A <c>[plugins.NAME]</c> table of a plugin that declares settings takes those keys only;
    /// other plugins' tables are passed on as text.
    /// </summary>
    public static Result Parse(string text, string fileName, IReadOnlyList<Setting>? settings = null)
    {
        var known = settings ?? Settings.All;
        var result = new Result([], new(StringComparer.OrdinalIgnoreCase), []);
        var doc = SyntaxParser.Parse(text, fileName, validate: true);
        if (doc.HasErrors)
        {
            foreach (var d in doc.Diagnostics)
            {
                if (d.Kind == DiagnosticMessageKind.Error)
                {
                    result.Errors.Add(new ConfigError(Where(fileName, d.Span), $"{d.Message}; fix the TOML syntax"));
                }
            }

            return result;
        }

        foreach (var kv in doc.KeyValues)
        {
            Assign(result, known, fileName, [], kv);
        }

        foreach (var table in doc.Tables)
        {
            var tablePath = KeyPath(table.Name);
            if (table is TableArraySyntax)
            {
                result.Errors.Add(new ConfigError(Where(fileName, table.Span),
                    $"[[{string.Join('.', tablePath)}]] is an array of tables; appliance.toml uses plain [tables] only"));
                continue;
            }

            if (!IsKnownTable(tablePath))
            {
                result.Errors.Add(new ConfigError(Where(fileName, table.Name!.Span),
                    $"unknown section [{string.Join('.', tablePath)}]{Suggest(tablePath[0], Settings.Sections)}; known sections: {string.Join(", ", Settings.Sections.Select(s => $"[{s}]"))} and [plugins.NAME]"));
                continue;
            }

            foreach (var item in table.Items)
            {
                if (item is KeyValueSyntax kv)
                {
                    Assign(result, known, fileName, tablePath, kv);
                }
            }
        }

        return result;
    }

    private static bool IsKnownTable(IReadOnlyList<string> path) =>
        (path.Count == 1 && Settings.Sections.Contains(path[0])) ||
        (path.Count == 2 && path[0] == "plugins");

    private static void Assign(Result result, IReadOnlyList<Setting> table, string file, IReadOnlyList<string> tablePath, KeyValueSyntax kv)
    {
        var path = tablePath.Concat(KeyPath(kv.Key)).ToList();
        var where = Where(file, kv.Key!.Span);
        var dotted = string.Join('.', path);

        if (path.Count == 3 && path[0] == "plugins")
        {
            AssignPluginOption(result, table, file, path[1], path[2], kv.Key.Span, kv.Value!);
            return;
        }

        if (path.Count == 2 && path[0] == "plugins" && kv.Value is InlineTableSyntax inline)
        {
            foreach (var item in inline.Items)
            {
                if (item.KeyValue is { } inner)
                {
                    AssignPluginOption(result, table, file, path[1], string.Join('.', KeyPath(inner.Key)), inner.Key!.Span, inner.Value!);
                }
            }

            return;
        }

        var section = path.Count == 2 ? path[0] : "";
        var key = path[^1];
        var setting = path.Count <= 2
            ? table.FirstOrDefault(s => s.Plugin.Length == 0 && s.Section == section && s.Key == key)
            : null;
        if (setting is null)
        {
            var elsewhere = table.FirstOrDefault(s => s.Plugin.Length == 0 && s.Key == key)
                ?? table.FirstOrDefault(s => s.Plugin.Length > 0 && (s.Flag == key || s.Aliases.Contains(key)));
            var hint = elsewhere is null
                ? Suggest(key, table.Where(s => s.Plugin.Length == 0 && s.Section == section).Select(s => s.Key))
                : elsewhere.Plugin.Length > 0
                    ? $"; '{key}' is the {elsewhere.Plugin} plugin's: write it as {elsewhere.Key} under [{elsewhere.Section}]"
                    : $"; '{key}' belongs in {(elsewhere.Section.Length == 0 ? "the top level" : $"[{elsewhere.Section}]")}";
            result.Errors.Add(new ConfigError(where,
                $"unknown key '{dotted}'{hint} (the shipped appliance.toml lists every key)"));
            return;
        }

        Store(result, file, setting, dotted, kv.Key.Span, kv.Value!);
    }

    private static void Store(Result result, string file, Setting setting, string dotted, SourceSpan keySpan, ValueSyntax valueSyntax)
    {
        var where = Where(file, keySpan);

        if (result.Values.ContainsKey(setting))
        {
            result.Errors.Add(new ConfigError(where, $"'{dotted}' is set twice; keep one"));
            return;
        }

        var value = Convert(setting, valueSyntax, out var error);
        if (error is not null)
        {
            result.Errors.Add(new ConfigError(Where(file, valueSyntax.Span), $"{dotted}: {error}"));
            return;
        }

        result.Values[setting] = new SourcedValue(value!, where);
    }

    private static void AssignPluginOption(Result result, IReadOnlyList<Setting> table, string file, string plugin, string key, SourceSpan keySpan, ValueSyntax value)
    {
        var section = "plugins." + plugin.ToLowerInvariant();
        var declared = table.Where(s => s.Section == section).ToList();
        if (declared.Count > 0)
        {
            var setting = declared.FirstOrDefault(s => s.Key == key);
            if (setting is null)
            {
                result.Errors.Add(new ConfigError(Where(file, keySpan),
                    $"unknown key '{key}' in [{section}]{Suggest(key, declared.Select(s => s.Key))}; the {plugin} plugin's keys: {string.Join(", ", declared.Select(s => s.Key))}"));
                return;
            }

            Store(result, file, setting, $"{section}.{key}", keySpan, value);
            return;
        }

        if (!result.PluginOptions.TryGetValue(plugin, out var options))
        {
            options = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            result.PluginOptions[plugin] = options;
        }

        var text = value switch
        {
            StringValueSyntax s => s.Value,
            IntegerValueSyntax i => i.Value.ToString(System.Globalization.CultureInfo.InvariantCulture),
            BooleanValueSyntax b => b.Value ? "true" : "false",
            ArraySyntax a when a.Items.All(x => x.Value is StringValueSyntax) =>
                string.Join(',', a.Items.Select(x => ((StringValueSyntax)x.Value!).Value)),
            _ => null,
        };
        if (text is null)
        {
            result.Errors.Add(new ConfigError(Where(file, value.Span),
                $"plugins.{plugin}.{key}: plugin options are strings, numbers, booleans or lists of strings"));
            return;
        }

        options[key] = text;
    }

    private static object? Convert(Setting setting, ValueSyntax value, out string? error)
    {
        error = null;
        switch (setting.Kind)
        {
            case SettingKind.StringList:
            case SettingKind.IpList:
            case SettingKind.ArgList:
                if (value is ArraySyntax array)
                {
                    var strings = new List<string>();
                    foreach (var item in array.Items)
                    {
                        if (item.Value is StringValueSyntax s)
                        {
                            strings.Add(s.Value!);
                        }
                        else
                        {
                            error = "expected a list of strings, like [\"a\", \"b\"]";
                            return null;
                        }
                    }

                    return SettingParser.Parse(setting, strings, out error);
                }

                if (value is StringValueSyntax single)
                {
                    return SettingParser.Parse(setting, [single.Value!], out error);
                }

                error = "expected a list of strings, like [\"a\", \"b\"]";
                return null;
            case SettingKind.Integer:
                if (value is IntegerValueSyntax integer)
                {
                    return integer.Value;
                }

                error = $"expected a whole number, found {Describe(value)}";
                return null;
            case SettingKind.Boolean:
                if (value is BooleanValueSyntax boolean)
                {
                    return boolean.Value;
                }

                error = $"expected true or false, found {Describe(value)}";
                return null;
            default:
                if (value is StringValueSyntax str)
                {
                    var parsed = SettingParser.ParseScalar(setting, str.Value!, out error);
                    return parsed;
                }

                error = $"expected a string in quotes, found {Describe(value)}";
                return null;
        }
    }

    private static string Describe(ValueSyntax value) => value switch
    {
        StringValueSyntax => "a string",
        IntegerValueSyntax => "a number",
        FloatValueSyntax => "a number",
        BooleanValueSyntax => "a boolean",
        ArraySyntax => "a list",
        InlineTableSyntax => "a table",
        _ => "a date",
    };

    private static List<string> KeyPath(KeySyntax? key)
    {
        var parts = new List<string>();
        if (key is null)
        {
            return parts;
        }

        parts.Add(KeyText(key.Key));
        foreach (var dot in key.DotKeys)
        {
            parts.Add(KeyText(dot.Key));
        }

        return parts;
    }

    private static string KeyText(BareKeyOrStringValueSyntax? key) => key switch
    {
        BareKeySyntax bare => bare.Key?.Text ?? "",
        StringValueSyntax quoted => quoted.Value ?? "",
        _ => "",
    };

    internal static string Where(string file, SourceSpan span) =>
        $"{file}:{span.Start.Line + 1}:{span.Start.Column + 1}";

    internal static string Suggest(string typed, IEnumerable<string> known)
    {
        var best = known
            .Select(k => (k, d: Distance(typed, k)))
            .Where(x => x.d <= Math.Max(2, typed.Length / 3))
            .OrderBy(x => x.d)
            .FirstOrDefault();
        return best.k is null ? "" : $"; did you mean '{best.k}'?";
    }

    private static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (var i = 0; i <= a.Length; i++)
        {
            d[i, 0] = i;
        }

        for (var j = 0; j <= b.Length; j++)
        {
            d[0, j] = j;
        }

        for (var i = 1; i <= a.Length; i++)
        {
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
            }
        }

        return d[a.Length, b.Length];
    }
}
