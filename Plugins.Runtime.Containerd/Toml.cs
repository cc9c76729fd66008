using System.Globalization;
using System.Text;

namespace Coracle.Plugins.Runtime.Containerd;

/// <summary>TOML literals for the few value kinds the generated files use.</summary>
internal static class Toml
{
    /// <summary>A basic string with every character TOML requires escaped.</summary>
    public static string Str(string value)
    {
        var sb = new StringBuilder(value.Length + 2).Append('"');
        foreach (var c in value)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (char.IsControl(c))
                    {
                        sb.Append("\\u").Append(((int)c).ToString("X4", CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        sb.Append(c);
                    }

                    break;
            }
        }

        return sb.Append('"').ToString();
    }

    /// <summary>A key: bare when it only has letters, digits, <c>-</c> and <c>_</c>, else quoted.</summary>
    public static string Key(string key) =>
        key.Length > 0 && key.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_') ? key : Str(key);

    public static string Bool(bool value) => value ? "true" : "false";

    public static string Array(IEnumerable<string> values) => "[" + string.Join(", ", values.Select(Str)) + "]";
}
